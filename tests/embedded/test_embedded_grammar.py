"""The grammar path on the real embedded model: on every golden label-email case the answer is JSON
that validates against the output model (slow: one full model call per case; marked `embedded`).

Run a few with `-k`, e.g. `pytest tests/embedded/test_embedded_grammar.py -m embedded -k "le-001 or le-002"`.
"""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from bot.app import build_engine
from bot.config import load_settings
from bot.core.types import Request
from bot.ledger.models import RequestRow
from bot.models import embedded
from bot.pipeline.engine import Engine
from skills.label_email import EmailLabel
from tests.paths import ROOT

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(not embedded.available(), reason=embedded.INSTALL_HINT),
]

CASES = [json.loads(line) for line in (ROOT / "evals" / "label-email.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return build_engine(load_settings(), with_economics=False)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_grammar_output_is_schema_valid(engine: Engine, case: dict) -> None:
    reply = engine.handle(
        Request(text=case["input"], skill="label-email", tier="small", allow_escalation=False, source="eval")
    )
    assert reply.status == "ok", reply.text
    EmailLabel.model_validate(reply.structured)
    with engine.ledger.session() as s:
        row = s.exec(select(RequestRow).where(RequestRow.id == reply.request_id)).one()
    assert row.output_mode == "grammar"
    assert row.verify_status in ("passed", "failed")  # the pack's routing rules ran on the answer
