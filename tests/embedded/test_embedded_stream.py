"""The embedded SmolLM2 model streams through litellm's custom-provider path, for real (slow: one call)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bot.app import build_engine
from bot.config import load_settings
from bot.core.types import Request
from bot.models import embedded
from tests.embedded.test_embedded import TINY  # the folder of the tiny handbook skill

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(not embedded.available(), reason=embedded.INSTALL_HINT),
]


def test_embedded_model_streams_tokens_and_records_ttft(tmp_path: Path) -> None:
    engine = build_engine(load_settings(skill_dirs=[TINY]))
    deltas: list[str] = []

    reply = engine.handle(Request(text="How do I get VPN access?", skill="tiny-ask", on_delta=deltas.append))

    assert reply.ok, reply.text
    assert len(deltas) > 1  # token by token, not one block at the end
    assert "".join(deltas).strip() == reply.text
    row = engine.ledger.get_request(reply.request_id)
    assert row is not None and row.ttft_ms is not None
    assert 0 < row.ttft_ms < row.latency_ms
    # One delta per token, except tokens the kept answer cuts (a loop, a tail broken off at the token
    # limit): generated and counted, never shown (bot.models.embedded.chat_stream).
    assert row.completion_tokens >= len(deltas) and row.prompt_tokens > 0
    assert all(len(d) <= 16 for d in deltas)  # tokens, not sentences


def test_embedded_stream_stops_when_asked(tmp_path: Path) -> None:
    engine = build_engine(load_settings(skill_dirs=[TINY]))
    stop = threading.Event()
    deltas: list[str] = []

    def take(text: str) -> None:
        deltas.append(text)
        if len(deltas) == 3:
            stop.set()

    reply = engine.handle(
        Request(text="How do I get VPN access?", skill="tiny-ask", on_delta=take, stop=stop)
    )

    assert reply.status == "stopped" and len(deltas) == 3
    row = engine.ledger.get_request(reply.request_id)
    assert row is not None and row.status == "stopped" and row.completion_tokens > 0
