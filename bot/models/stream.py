"""Streamed model calls: hand each text delta to a sink as it arrives, stop when asked.

`LLM.complete(..., sink=StreamSink(...))` streams through litellm (`stream=True`) for every tier,
the embedded one included (its custom provider implements `streaming`). The result is one response
shaped like an unstreamed one, so text, usage and cost are read the same way: the provider's own usage
chunk when it sends one (`stream_options.include_usage`), else `litellm.stream_chunk_builder`, which
estimates usage from the chunks (also for a stream the user stopped). No litellm import here: the
caller passes the module in.

litellm's wrapper is read up to the chunk with the finish reason: the text is then complete. The rest
(the provider's usage chunk and `[DONE]`) is read from the provider's own iterator, because litellm
holds the usage chunk back until it has run its end-of-stream bookkeeping for callbacks we do not
register (two `stream_chunk_builder` passes over every chunk, ~25 ms of CPU per answer, taken under
the GIL exactly when the answer should be closed, while other answers are still streaming). Reading
the tail also returns the connection to the pool, and lets a local model's generator finish.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class StreamSink:
    """Where streamed text goes. `on_delta` runs on the model thread: keep it quick (buffer, print)."""

    on_delta: Callable[[str], None] = lambda _text: None
    stop: threading.Event = field(default_factory=threading.Event)
    delivered: int = 0  # characters handed to on_delta so far

    def feed(self, text: str) -> None:
        self.delivered += len(text)
        self.on_delta(text)


@dataclass
class Streamed:
    response: Any  # a litellm ModelResponse rebuilt from the chunks
    ttft_s: float | None
    stopped: bool


def collect_stream(
    litellm: Any,
    stream: Any,
    messages: list[dict[str, Any]],
    sink: StreamSink,
    started: float,
) -> Streamed:
    """Read a litellm stream to its last chunk (or until `sink.stop` is set), feeding text deltas to the sink."""
    chunks: list[Any] = []
    parts: list[str] = []
    usage: Any = None
    ttft: float | None = None
    stopped = finished = False
    try:
        for chunk in stream:
            chunks.append(chunk)
            choices = getattr(chunk, "choices", None) or []
            delta = getattr(choices[0], "delta", None) if choices else None
            text = getattr(delta, "content", None) or ""
            usage = getattr(chunk, "usage", None) or chunk._hidden_params.get("usage") or usage
            finished = finished or bool(choices and getattr(choices[0], "finish_reason", None))
            if text:
                if ttft is None:
                    ttft = time.perf_counter() - started
                parts.append(text)
                sink.feed(text)
            if sink.stop.is_set():
                stopped = True
                break
            if finished:
                usage = _usage(litellm, _drain(stream)) or usage
                break
    finally:
        if stopped:
            _close(stream)
    # Zero output tokens for a non-empty answer is litellm's sum over chunks that carried no usage.
    counted = usage is not None and bool(getattr(usage, "completion_tokens", 0) or not parts)
    if counted and not stopped:  # the provider counted: no need to rebuild and estimate
        model = next((c.model for c in reversed(chunks) if getattr(c, "model", None)), None)
        response = litellm.ModelResponse(model=model, usage=usage)
        response.choices[0].message.content = "".join(parts)
    elif chunks:
        response = litellm.stream_chunk_builder(chunks, messages=messages)
    else:  # an empty stream: an empty answer, not a crash
        response = litellm.ModelResponse()
        response.choices[0].message.content = ""
    return Streamed(response, ttft, stopped)


def _drain(stream: Any) -> Any:
    """Read what the provider sends after the finish reason, past litellm's wrapper; its usage, if any."""
    raw = getattr(stream, "completion_stream", None)
    usage = None
    if not isinstance(raw, Iterator):
        return None
    try:
        for item in raw:
            found = item.get("usage") if isinstance(item, dict) else getattr(item, "usage", None)
            usage = found or usage
    except Exception:  # the text is complete; a broken tail costs only the usage figures
        log.debug("could not read the end of a finished stream", exc_info=True)
        _close(stream)
    return usage


def _usage(litellm: Any, raw: Any) -> Any:
    """The provider's usage (a dict, or its SDK's object) as litellm's Usage."""
    if raw is None or isinstance(raw, litellm.Usage):
        return raw
    fields = raw if isinstance(raw, dict) else raw.model_dump() if hasattr(raw, "model_dump") else vars(raw)
    return litellm.Usage(**{k: v for k, v in fields.items() if v is not None})


def _close(stream: Any) -> None:
    """Stop the provider from generating further (closes the HTTP response where there is one)."""
    for target in (stream, getattr(stream, "completion_stream", None)):
        close = getattr(target, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # closing is best effort: the tokens are no longer read either way
                log.debug("could not close a stopped stream", exc_info=True)
            return
