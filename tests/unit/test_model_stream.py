"""Streamed model calls end at the stream's last chunk, with the provider's usage and connection intact."""

from __future__ import annotations

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
