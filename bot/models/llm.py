"""The model edge: the only module that imports litellm (lazily: it takes seconds to import).

A tier name goes in with messages; text, the model that answered, token buckets, cost (with where
the price came from) and latency come out. Errors become `ModelCallError` with a short message.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from bot.config import EMBEDDED_MODEL, TierConfig, env_value
from bot.models import structured
from bot.models.stream import Streamed, StreamSink, collect_stream

log = logging.getLogger(__name__)

_setup_lock = threading.Lock()
_litellm: Any = None


def litellm_module() -> Any:
    """Import and configure litellm once: local price map, no telemetry, embedded provider."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _setup_lock:
        if _litellm is None:
            # Must be set before the import, or litellm fetches its price map from the network.
            os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
            os.environ.setdefault("LITELLM_TELEMETRY", "False")
            import litellm

            from bot.models import embedded

            litellm.telemetry = False
            litellm.suppress_debug_info = True
            litellm.drop_params = True  # a provider that lacks an optional param should not fail the call
            # No callbacks are registered: per-chunk logging tasks would only cost streams CPU.
            litellm.disable_streaming_logging = True
            litellm.custom_provider_map = [
                *[p for p in litellm.custom_provider_map if p.get("provider") != embedded.PROVIDER],
                {"provider": embedded.PROVIDER, "custom_handler": embedded.make_handler()},
            ]
            litellm.register_model(
                {
                    EMBEDDED_MODEL: {
                        "input_cost_per_token": 0.0,
                        "output_cost_per_token": 0.0,
                        "cache_read_input_token_cost": 0.0,
                        "cache_creation_input_token_cost": 0.0,
                        "litellm_provider": embedded.PROVIDER,
                        "mode": "chat",
                        "max_input_tokens": embedded.N_CTX,
                        "max_tokens": embedded.N_CTX,
                    }
                }
            )
            logging.getLogger("LiteLLM").setLevel(logging.WARNING)
            _litellm = litellm
    return _litellm


def warm_up_models() -> None:
    """What the first model call would otherwise import: litellm, and the OpenAI SDK's resource
    classes, which a client imports on its first `.chat` (about a second of CPU, under the GIL)."""
    litellm_module()
    import openai.resources  # noqa: F401


@dataclass(frozen=True)
class CallResult:
    text: str
    model_used: str
    prompt_tokens: int
    completion_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    cost_known: bool
    price_source: str
    latency_s: float
    output_mode: str = "text"  # grammar | schema | prompt | text (bot.models.structured)
    ttft_s: float | None = None  # first streamed token, from the call's start (streamed calls only)
    stopped: bool = False  # the caller stopped the stream: text and usage are partial


class ModelCallError(Exception):
    def __init__(self, kind: str, message: str, latency_s: float, model: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.latency_s = latency_s
        self.model = model


MockResponse = str | Callable[[str, list[dict[str, Any]]], str | Exception]


def _classify(exc: Exception) -> str:
    name = type(exc).__name__
    text = str(exc).lower()
    status = getattr(exc, "status_code", None) or 0
    if "Timeout" in name:
        return "timeout"
    if "RateLimit" in name or status == 429:
        return "rate_limited"
    if "Authentication" in name or "PermissionDenied" in name or status in (401, 403):
        return "auth"
    if "NotFound" in name or status == 404:
        return "model_not_found"
    # litellm often wraps a refused connection as an InternalServerError: look at the message too.
    if (
        "Connection" in name
        or "ServiceUnavailable" in name
        or "connection error" in text
        or "refused" in text
    ):
        return "unreachable"
    if "InternalServerError" in name or status >= 500:
        return "server_error"
    return "error"


RETRYABLE = frozenset({"timeout", "rate_limited", "unreachable", "server_error"})

_KIND_TEXT = {
    "timeout": "the model did not answer in time",
    "rate_limited": "the model provider is rate-limiting us",
    "auth": "the model provider rejected our credentials",
    "model_not_found": "the model provider does not know this model",
    "server_error": "the model provider had an internal error",
    "unreachable": "the model could not be reached",
    "error": "the model call failed",
}


def short_error(kind: str) -> str:
    return _KIND_TEXT.get(kind, _KIND_TEXT["error"])


def token_buckets(usage: Any) -> tuple[int, int, int, int]:
    """(input, output, cache read, cache write) from a litellm Usage, tolerant of missing parts."""
    if usage is None:
        return 0, 0, 0, 0
    prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion = int(getattr(usage, "completion_tokens", 0) or 0)
    details = getattr(usage, "prompt_tokens_details", None)
    cache_read = int(getattr(details, "cached_tokens", 0) or 0) if details else 0
    cache_read = cache_read or int(getattr(usage, "cache_read_input_tokens", 0) or 0)
    cache_write = int(getattr(usage, "cache_creation_input_tokens", 0) or 0)
    return prompt, completion, cache_read, cache_write


def price_tokens(
    tier: TierConfig, model: str, prompt: int, completion: int, cache_read: int = 0, cache_write: int = 0
) -> tuple[float, bool, str]:
    """Cost of token buckets: the tier's override, else litellm's local price map.

    Returns (usd, known, source). Used at call time and by `tierwise cost recompute`.
    """
    litellm = litellm_module()
    if tier.embedded:
        return 0.0, True, "embedded"
    if tier.priced:
        custom: dict[str, float] = {
            "input_cost_per_token": tier.input_cost_per_token or 0.0,
            "output_cost_per_token": tier.output_cost_per_token or 0.0,
        }
        uncached = prompt - cache_read
        usd = uncached * custom["input_cost_per_token"] + completion * custom["output_cost_per_token"]
        usd += cache_read * (
            tier.cache_read_cost_per_token
            if tier.cache_read_cost_per_token is not None
            else custom["input_cost_per_token"]
        )
        usd += cache_write * (tier.cache_write_cost_per_token or 0.0)
        return usd, True, "tier-config"
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cache_read_input_tokens=cache_read,
            cache_creation_input_tokens=cache_write,
        )
    except Exception:
        try:  # the response may name a model the price map lacks; the tier's model may be known
            prompt_cost, completion_cost = litellm.cost_per_token(
                model=tier.model, prompt_tokens=prompt, completion_tokens=completion
            )
        except Exception:
            return 0.0, False, "unknown"
    return float(prompt_cost + completion_cost), True, "litellm-price-map"


class LLM:
    """Calls tiers through litellm. `mock_response` (tests, benchmarks) still runs litellm's path."""

    def __init__(self, tiers: dict[str, TierConfig], mock_response: MockResponse | None = None) -> None:
        self.tiers = tiers
        self.mock_response = mock_response

    def complete(
        self,
        tier_name: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        metadata: dict[str, Any] | None = None,
        response_schema: type[BaseModel] | None = None,
        sink: StreamSink | None = None,
    ) -> CallResult:
        """One completion; with a `sink` it is streamed, each text delta handed over as it arrives."""
        litellm = litellm_module()
        tier = self.tiers[tier_name]
        mode = structured.output_mode(tier, response_schema, litellm)
        kwargs: dict[str, Any] = {
            "model": tier.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": tier.temperature,
            "timeout": tier.timeout,
            # Retries are ours (below): litellm's num_retries stacks on the SDK's own and makes 2N+1 calls.
            "num_retries": 0,
            "max_retries": 0,
        }
        if tier.api_base:
            kwargs["api_base"] = tier.api_base
        if tier.api_key_env:
            key = env_value(tier.api_key_env)
            if key:
                kwargs["api_key"] = key
        elif tier.api_base and tier.model.startswith("openai/"):
            kwargs["api_key"] = "not-needed"  # self-hosted OpenAI-compatible servers ignore it
        if tier.fallbacks:
            kwargs["fallbacks"] = list(tier.fallbacks)
        if mode in ("grammar", "schema") and response_schema is not None:
            # The embedded provider turns it into a llama.cpp grammar; others get it natively.
            kwargs["response_format"] = structured.response_format(response_schema)
        if self.mock_response is not None:
            # A string, or an exception instance that litellm raises as if the provider had failed.
            mock = self.mock_response
            kwargs["mock_response"] = mock(tier_name, messages) if callable(mock) else mock
        if sink is not None:
            kwargs.update(stream=True, stream_options={"include_usage": True})
        started = time.perf_counter()
        streamed: Streamed | None = None
        for attempt in range(tier.max_retries + 1):
            try:
                response = litellm.completion(**kwargs)
                if sink is not None:
                    streamed = collect_stream(litellm, response, messages, sink, started)
                    response = streamed.response
                break
            except Exception as exc:
                kind = _classify(exc)
                # A retry after text reached the user would show it twice.
                if kind in RETRYABLE and attempt < tier.max_retries and not (sink and sink.delivered):
                    log.info("retrying tier %s after %s (attempt %d)", tier_name, kind, attempt + 1)
                    time.sleep(min(8.0, 0.5 * 2**attempt))
                    continue
                latency = time.perf_counter() - started
                log.warning("model call failed on tier %s (%s): %s", tier_name, tier.model, exc)
                raise ModelCallError(
                    kind, f"{type(exc).__name__}: {exc}"[:2000], latency, tier.model
                ) from exc
        latency = time.perf_counter() - started
        text = response.choices[0].message.content or ""
        model_used = str(getattr(response, "model", None) or tier.model)
        prompt, completion, cache_read, cache_write = token_buckets(getattr(response, "usage", None))
        usd, known, source = price_tokens(tier, model_used, prompt, completion, cache_read, cache_write)
        return CallResult(
            text=text,
            model_used=model_used,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cost_usd=usd,
            cost_known=known,
            price_source=source,
            latency_s=latency,
            output_mode=mode,
            ttft_s=streamed.ttft_s if streamed else None,
            stopped=streamed.stopped if streamed else False,
        )

    def counter(self, tier_name: str) -> Callable[[str], int]:
        return token_counter(self.tiers[tier_name].model)


@lru_cache(maxsize=64)
def token_counter(model: str) -> Callable[[str], int]:
    """A cached token counter for a model, via litellm (falls back to its bundled tokenizer)."""
    litellm = litellm_module()

    @lru_cache(maxsize=8192)
    def count(text: str) -> int:
        if not text:
            return 0
        try:
            return int(litellm.token_counter(model=model, text=text))
        except Exception:  # unknown tokenizer: a conservative estimate beats failing the request
            return max(1, len(text) // 3)

    return count
