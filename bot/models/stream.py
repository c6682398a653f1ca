"""Streamed model calls: hand each text delta to a sink as it arrives, stop when asked.

`LLM.complete(..., sink=StreamSink(...))` streams through litellm (`stream=True`) for every tier,
the embedded one included (its custom provider implements `streaming`). The result is one response
shaped like an unstreamed one, so text, usage and cost are read the same way: the provider's own usage
chunk when it sends one (`stream_options.include_usage`), else `litellm.stream_chunk_builder`, which
estimates usage from the chunks (also for a stream the user stopped). No litellm import here: the
caller passes the module in.

A stream litellm gets through the OpenAI SDK (OpenAI, Azure, `openai/…` models with an `api_base`:
vLLM, llama.cpp's server, Ollama's /v1) is read from the SDK's stream under litellm's wrapper: the
SDK has parsed each chunk already, and the wrapper's per-chunk rebuild was half of a streaming
answer's CPU (`_collect_openai`). Other providers, the embedded model and `mock_response` go through
litellm's wrapper as below.

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
class _Reading:
    """The text read so far, handed to the sink as it comes; whether the caller asked to stop."""

    sink: StreamSink
    started: float
    parts: list[str] = field(default_factory=list)
    ttft: float | None = None
    stopped: bool = False

    def take(self, text: str) -> bool:
        """One delta; True when the reading should stop."""
        if text:
            if self.ttft is None:
                self.ttft = time.perf_counter() - self.started
            self.parts.append(text)
            self.sink.feed(text)
        self.stopped = self.sink.stop.is_set()
        return self.stopped


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
    raw = _openai_stream(stream)
    if raw is not None:
        return _collect_openai(litellm, stream, raw, messages, sink, started)
    chunks: list[Any] = []
    reading = _Reading(sink, started)
    usage: Any = None
    finished = False
    try:
        for chunk in stream:
            chunks.append(chunk)
            choices = getattr(chunk, "choices", None) or []
            delta = getattr(choices[0], "delta", None) if choices else None
            usage = getattr(chunk, "usage", None) or chunk._hidden_params.get("usage") or usage
            finished = finished or bool(choices and getattr(choices[0], "finish_reason", None))
            if reading.take(getattr(delta, "content", None) or ""):
                break
            if finished:
                usage = _usage(litellm, _drain(stream)) or usage
                break
    finally:
        if reading.stopped:
            _close(stream)
    text = "".join(reading.parts)
    if _provider_counted(usage, text, reading.stopped):  # no need to rebuild and estimate
        model = next((c.model for c in reversed(chunks) if getattr(c, "model", None)), None)
        response = _answer(litellm, model, usage, text)
    elif chunks:
        response = litellm.stream_chunk_builder(chunks, messages=messages)
    else:  # an empty stream: an empty answer, not a crash
        response = _answer(litellm, None, None, "")
    return Streamed(response, reading.ttft, reading.stopped)


def _provider_counted(usage: Any, text: str, stopped: bool) -> bool:
    """The provider's usage can be taken as it is: it was sent, the stream was read to its end, and
    it is not litellm's zero sum over chunks that carried none (zero output tokens for a text)."""
    return usage is not None and not stopped and bool(getattr(usage, "completion_tokens", 0) or not text)


def _answer(litellm: Any, model: str | None, usage: Any, text: str) -> Any:
    """A response shaped like an unstreamed one: the text, the model and the usage."""
    response = (
        litellm.ModelResponse(model=model, usage=usage) if usage is not None else litellm.ModelResponse()
    )
    response.choices[0].message.content = text
    return response


def _openai_stream(stream: Any) -> Any:
    """The OpenAI SDK's own stream under litellm's wrapper (OpenAI, Azure and every OpenAI-compatible
    server), or None for other providers, the embedded model and `mock_response`."""
    raw = getattr(stream, "completion_stream", None)
    try:
        from openai import Stream
    except ImportError:  # litellm depends on openai; without it no stream can be one of its
        return None
    return raw if isinstance(raw, Stream) else None


def _collect_openai(
    litellm: Any,
    stream: Any,
    raw: Any,
    messages: list[dict[str, Any]],
    sink: StreamSink,
    started: float,
) -> Streamed:
    """Read OpenAI chat-completion chunks straight from the SDK's stream.

    litellm's wrapper re-creates every chunk as its own object and formats two debug strings of it
    (its `print_verbose` f-strings run even when nothing is printed): about half of a streaming
    answer's CPU, under the GIL that every other answer in flight needs. For a chunk the SDK has
    already parsed, the text delta and usage are all we read (the finish reason needs no reading: the
    SDK's stream ends after `[DONE]`). Errors are still raised as litellm's typed exceptions.
    Its guard against a model repeating one chunk (`REPEATED_STREAMING_CHUNK_LIMIT` times) is kept."""
    reading = _Reading(sink, started)
    usage: Any = None
    model: str | None = None
    previous, repeats = "", 1
    try:
        for chunk in raw:
            # litellm's loop guard, kept: the same chunk again and again is a model stuck in a loop.
            if repeats >= litellm.REPEATED_STREAMING_CHUNK_LIMIT:
                raise litellm.InternalServerError(
                    message=f"The model is repeating the same chunk = {previous}.", model="", llm_provider=""
                )
            model = chunk.model or model
            usage = chunk.usage or usage
            if not chunk.choices:  # the usage chunk: nothing to compare for loops
                continue
            delta = chunk.choices[0].delta
            text = (delta.content if delta is not None else None) or ""
            repeats = repeats + 1 if len(text) > 2 and text == previous else 1
            previous = text
            if reading.take(text):
                break
    except Exception as exc:  # raised as litellm's wrapper raises it: typed, the text so far attached
        handle = getattr(stream, "_handle_stream_fallback_error", None)
        if callable(handle):
            stream.response_uptil_now, stream.sent_first_chunk = "".join(reading.parts), bool(reading.parts)
            handle(exc)
        litellm.exception_type(
            model=stream.model,
            custom_llm_provider=stream.custom_llm_provider,
            original_exception=exc,
            completion_kwargs={},
            extra_kwargs={},
        )
        raise
    finally:
        if reading.stopped:
            _close(stream)
    text = "".join(reading.parts)
    if _provider_counted(usage, text, reading.stopped):
        usage = _usage(litellm, usage)
    else:  # no usage from the provider (or a stream cut short): count as litellm's chunk builder does
        prompt = litellm.token_counter(model=stream.model, messages=messages)
        completion = litellm.token_counter(model=stream.model, text=text, count_response_tokens=True)
        usage = litellm.Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )
    return Streamed(_answer(litellm, model or stream.model, usage, text), reading.ttft, reading.stopped)


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
