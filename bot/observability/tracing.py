"""Optional OpenTelemetry spans for one request end to end: Slack event → request → route →
context → model call (GenAI semantic-convention attributes) → delivery.

Off by default, and then free: `traced` wrappers check one module global and call straight
through; OpenTelemetry is imported only by `configure` when `tracing.enabled` is set (it comes
with the `otel` extra). Spans carry figures and names, never message text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from bot.config import ConfigError

if TYPE_CHECKING:
    from bot.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

_tracer: Any = None
_provider: Any = None


def enabled() -> bool:
    return _tracer is not None


def configure(settings: Settings, exporter: Any = None) -> bool:
    """Start tracing when `tracing.enabled` (or when a test passes an exporter); True if on.
    Exported over OTLP/HTTP to `tracing.otlp_endpoint`, else where the OTEL_* variables say."""
    global _tracer, _provider
    shutdown()
    if not settings.tracing.enabled and exporter is None:
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise ConfigError("tracing.enabled = true needs OpenTelemetry: pip install 'tierwise[otel]'") from exc
    provider = TracerProvider(resource=Resource.create({"service.name": settings.tracing.service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = settings.tracing.otlp_endpoint
        otlp = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(otlp))
    # A provider of our own, not the global one: configuring twice (tests) needs no global reset.
    _provider, _tracer = provider, provider.get_tracer("tierwise")
    return True


def shutdown() -> None:
    """Flush and stop (on exit, or before reconfiguring)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def traced(
    name: str | Callable[..., str],
    attributes: Callable[..., dict[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Run the function in a span. `name` may be a function of the call's arguments;
    `attributes(result, *args, **kwargs)` adds attributes once the call returns."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            tracer = _tracer
            if tracer is None:
                return fn(*args, **kwargs)
            try:
                span_name = name(*args, **kwargs) if callable(name) else name
            except Exception:  # a name is a nicety too: a changed signature must not break the call
                span_name = fn.__qualname__
            with tracer.start_as_current_span(span_name) as span:
                result = fn(*args, **kwargs)  # an exception is recorded by the span's context manager
                if attributes is not None:
                    try:
                        values = attributes(result, *args, **kwargs)
                    except Exception:  # attributes are a nicety: never fail the traced call
                        values = {}
                    for key, value in values.items():
                        if value is not None:
                            span.set_attribute(key, value)
                return result

        return wrapper  # type: ignore[return-value]

    return decorate


# Attribute builders for the hooks in the engine and the Slack adapter --------------------------


def provider_of(model: str | None) -> str | None:
    """litellm's provider prefix (`anthropic/claude-…` → anthropic), the GenAI `provider.name`."""
    return model.split("/", 1)[0] if model and "/" in model else model


def model_call_name(engine: Any, row: Any, tier: str, *_: Any, **__: Any) -> str:
    return f"chat {engine.settings.tiers[tier].model}"


def model_call_attributes(
    out: Any, engine: Any, row: Any, tier: str, *rest: Any, **kwargs: Any
) -> dict[str, Any]:
    result, failure = out
    max_tokens = kwargs.get("max_tokens", rest[1] if len(rest) > 1 else None)
    conf = engine.settings.tiers[tier]
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider_of(conf.model),
        "gen_ai.system": provider_of(conf.model),  # the older name, still read by many backends
        "gen_ai.request.model": conf.model,
        "gen_ai.request.max_tokens": max_tokens,
        "gen_ai.request.temperature": conf.temperature,
        "gen_ai.response.model": row.model_used,
        "gen_ai.usage.input_tokens": row.prompt_tokens if result is not None else None,
        "gen_ai.usage.output_tokens": row.completion_tokens if result is not None else None,
        "error.type": failure,
        "tierwise.tier": tier,
        "tierwise.skill": row.skill,
        "tierwise.purpose": row.purpose,
        "tierwise.cost_usd": row.cost_usd if row.cost_known else None,
        "tierwise.redactions": row.redactions,
    }


def request_attributes(reply: Any, engine: Any, req: Any) -> dict[str, Any]:
    return {
        "tierwise.skill": reply.skill,
        "tierwise.status": reply.status,
        "tierwise.tier": reply.tier,
        "tierwise.request_id": reply.request_id,
        "tierwise.source": req.source,
        "tierwise.escalated": reply.escalated,
        "tierwise.cost_usd": reply.cost_usd if reply.cost_known else None,
    }


def route_attributes(routed: Any, engine: Any, req: Any) -> dict[str, Any]:
    return {"tierwise.skill": getattr(routed, "skill", None), "tierwise.route.explicit": bool(req.skill)}


def context_attributes(out: Any, engine: Any, skill: Any, tier: str, *_: Any, **__: Any) -> dict[str, Any]:
    _parts, selection, pack_hash = out
    return {
        "tierwise.skill": skill.name,
        "tierwise.tier": tier,
        "tierwise.context.sources": len(selection.sources) if selection is not None else 0,
        "tierwise.packs": pack_hash,
    }
