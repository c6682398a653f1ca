"""Streamed model calls: hand each text delta to a sink as it arrives, stop when asked.

`LLM.complete(..., sink=StreamSink(...))` streams through litellm (`stream=True`) for every tier,
the embedded one included (its custom provider implements `streaming`). The result is one response
shaped like an unstreamed one, so text, usage and cost are read the same way: the provider's own usage
chunk when it sends one (`stream_options.include_usage`), else `litellm.stream_chunk_builder`, which
estimates usage from the chunks (also for a stream the user stopped). No litellm import here: the
caller passes the module in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
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
    litellm: Any, stream: Any, messages: list[dict[str, Any]], sink: StreamSink, started: float
) -> Streamed:
    """Read a litellm stream to the end (or until `sink.stop` is set), feeding text deltas to the sink."""
    chunks: list[Any] = []
    parts: list[str] = []
    usage: Any = None
    ttft: float | None = None
    stopped = False
    try:
        for chunk in stream:
            chunks.append(chunk)
            choices = getattr(chunk, "choices", None) or []
            delta = getattr(choices[0], "delta", None) if choices else None
            text = getattr(delta, "content", None) or ""
            usage = getattr(chunk, "usage", None) or chunk._hidden_params.get("usage") or usage
            if text:
                if ttft is None:
                    ttft = time.perf_counter() - started
                parts.append(text)
                sink.feed(text)
            if sink.stop.is_set():
                stopped = True
                break
    finally:
        if stopped:
            _close(stream)
    if usage is not None and not stopped:  # the provider counted: no need to rebuild and estimate
        model = next((c.model for c in reversed(chunks) if getattr(c, "model", None)), None)
        response = litellm.ModelResponse(model=model, usage=usage)
        response.choices[0].message.content = "".join(parts)
    elif chunks:
        response = litellm.stream_chunk_builder(chunks, messages=messages)
    else:  # an empty stream: an empty answer, not a crash
        response = litellm.ModelResponse()
        response.choices[0].message.content = ""
    return Streamed(response, ttft, stopped)


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
