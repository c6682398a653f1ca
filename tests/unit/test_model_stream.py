"""Streamed model calls end at the stream's last chunk, with the provider's usage and connection intact."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.config import TierConfig
from bot.models.llm import LLM, litellm_module
from bot.models.stream import StreamSink, collect_stream
from tests.fakes.fake_openai import FakeOpenAI


def _llm(url: str) -> LLM:
    return LLM({"small": TierConfig(model="openai/stream-model", api_base=url, max_retries=0)})


def test_a_finished_stream_skips_litellms_end_of_stream_rebuild(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.default = {"content": "one two three four five", "completion_tokens": 5}
    litellm = litellm_module()
    rebuilt: list[int] = []
    original = litellm.stream_chunk_builder

    def counting(*args: Any, **kwargs: Any) -> Any:
        rebuilt.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(litellm, "stream_chunk_builder", counting)
    deltas: list[str] = []

    result = _llm(fake_openai.url).complete(
        "small", [{"role": "user", "content": "count"}], 50, sink=StreamSink(on_delta=deltas.append)
    )

    assert "".join(deltas) == result.text == "one two three four five"
    assert result.completion_tokens == 5  # the provider's usage chunk, not an estimate
    assert rebuilt == []  # litellm's end-of-stream pass over every chunk was not run
    assert fake_openai.disconnected == []  # the tail ([DONE]) was read, not cut off


def test_a_stream_without_usage_is_estimated(fake_openai: FakeOpenAI) -> None:
    """No usage chunk (a server that ignores `stream_options`): usage is estimated from the chunks."""
    fake_openai.default = "alpha beta gamma"
    litellm = litellm_module()
    messages = [{"role": "user", "content": "x"}]
    stream = litellm.completion(
        model="openai/stream-model", api_base=fake_openai.url, api_key="k", messages=messages, stream=True
    )
    deltas: list[str] = []

    streamed = collect_stream(litellm, stream, messages, StreamSink(on_delta=deltas.append), 0.0)

    assert streamed.response.choices[0].message.content == "alpha beta gamma" == "".join(deltas)
    assert streamed.response.usage.completion_tokens > 0
    assert not streamed.stopped and fake_openai.disconnected == []


def _counting_chunk_creator(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

    made: list[int] = []
    original = CustomStreamWrapper.chunk_creator

    def counting(self: Any, chunk: Any) -> Any:
        made.append(1)
        return original(self, chunk)

    monkeypatch.setattr(CustomStreamWrapper, "chunk_creator", counting)
    return made


def test_openai_chunks_are_read_from_the_sdk_not_rebuilt_by_litellm(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenAI-compatible stream is read from the SDK's parsed chunks: litellm's per-chunk rebuild
    (half of a streaming answer's CPU) does not run, and text, usage and model are all there."""
    fake_openai.default = {"content": "one two three four five", "prompt_tokens": 7, "completion_tokens": 5}
    made = _counting_chunk_creator(monkeypatch)
    deltas: list[str] = []

    result = _llm(fake_openai.url).complete(
        "small", [{"role": "user", "content": "count"}], 50, sink=StreamSink(on_delta=deltas.append)
    )

    assert made == []
    assert "".join(deltas) == result.text == "one two three four five"
    assert len(deltas) > 1  # streamed in pieces, not handed over at the end
    assert (result.prompt_tokens, result.completion_tokens) == (7, 5)
    assert result.model_used == "stream-model"
    assert result.ttft_s is not None and result.ttft_s <= result.latency_s
    assert fake_openai.disconnected == []


def test_other_streams_still_go_through_litellms_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Providers whose chunks are not the OpenAI SDK's (here litellm's mock) keep litellm's reading."""
    made = _counting_chunk_creator(monkeypatch)
    llm = LLM({"small": TierConfig(model="openai/m", max_retries=0)}, mock_response="alpha beta gamma")
    deltas: list[str] = []

    result = llm.complete(
        "small", [{"role": "user", "content": "x"}], 20, sink=StreamSink(on_delta=deltas.append)
    )

    assert made != []
    assert result.text == "".join(deltas) == "alpha beta gamma"


def test_an_openai_stream_without_usage_is_counted(fake_openai: FakeOpenAI) -> None:
    litellm = litellm_module()
    fake_openai.default = "alpha beta gamma delta"
    messages = [{"role": "user", "content": "tell me four words please"}]
    stream = litellm.completion(
        model="openai/stream-model", api_base=fake_openai.url, api_key="k", messages=messages, stream=True
    )

    streamed = collect_stream(litellm, stream, messages, StreamSink(), 0.0)

    usage = streamed.response.usage
    assert streamed.response.choices[0].message.content == "alpha beta gamma delta"
    assert usage.prompt_tokens == litellm.token_counter(model="stream-model", messages=messages)
    assert usage.completion_tokens == litellm.token_counter(
        model="stream-model", text="alpha beta gamma delta", count_response_tokens=True
    )
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_a_stopped_openai_stream_closes_the_connection_and_counts_what_was_read(
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.default = {"content": " ".join(f"w{i:03d}" for i in range(200)), "completion_tokens": 200}
    fake_openai.token_interval = 0.002
    sink = StreamSink()
    sink.on_delta = lambda _text: sink.stop.set() if sink.delivered >= 40 else None

    result = _llm(fake_openai.url).complete("small", [{"role": "user", "content": "go"}], 500, sink=sink)

    assert result.stopped
    assert 40 <= len(result.text) < 100
    assert 0 < result.completion_tokens < 200  # what was read, not the provider's full figure
    for _ in range(100):  # the server notices the closed socket on its next write
        if fake_openai.disconnected:
            break
        time.sleep(0.02)
    assert fake_openai.disconnected


@pytest.mark.parametrize(
    ("reply", "message", "before"),
    [
        ({"content": "one two three four five six", "fail_after": 3}, "the model broke down", "one two thre"),
        ({"content": "loop" * 150}, "repeating the same chunk", "loop" * 100),
    ],
    ids=["provider error event", "one chunk repeated"],
)
def test_a_stream_that_breaks_is_raised_as_litellms_wrapper_raises_it(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, reply: dict[str, Any], message: str, before: str
) -> None:
    """OpenAI's in-stream error event, or a model stuck on one chunk: the same litellm exception type
    (so the same retry and escalation decision) as when litellm's wrapper reads the chunks, after the
    text that had already arrived went to the sink."""
    import bot.models.stream as stream_module
    from bot.models.llm import ModelCallError

    def fail() -> tuple[ModelCallError, list[str]]:
        fake_openai.default = reply
        deltas: list[str] = []
        with pytest.raises(ModelCallError) as caught:
            _llm(fake_openai.url).complete(
                "small", [{"role": "user", "content": "x"}], 500, sink=StreamSink(on_delta=deltas.append)
            )
        return caught.value, deltas

    direct, direct_deltas = fail()
    monkeypatch.setattr(stream_module, "_openai_stream", lambda _stream: None)
    wrapped, wrapped_deltas = fail()

    assert type(direct.__cause__) is type(wrapped.__cause__)
    assert type(direct.__cause__).__module__.startswith("litellm")
    assert direct.kind == wrapped.kind
    assert message in str(direct)
    assert "".join(direct_deltas) == "".join(wrapped_deltas) == before
