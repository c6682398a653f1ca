"""`run_eval` on the embedded SmolLM2 model for real: two label-email cases from the real golden set.

Any score is fine (a 135M model labels poorly); what matters is that the model really ran through
litellm's path and the run was stored. Skipped only when the embedded model is not installed.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.app import build_engine
from bot.config import EMBEDDED_MODEL, load_settings
from bot.evals.runner import evals_dir, load_cases, run_eval
from bot.ledger.models import EvalResult, EvalRun, RequestRow
from bot.models import embedded

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(
        not embedded.available(),
        reason=f"embedded model unavailable: {embedded.INSTALL_HINT}",
    ),
]


def test_label_email_eval_on_the_embedded_model() -> None:
    settings = load_settings()
    assert settings.tiers["small"].model == EMBEDDED_MODEL  # the defaults, nothing configured
    engine = build_engine(settings)  # the real model edge, no mock
    cases, problems = load_cases(evals_dir() / "label-email.jsonl")
    assert problems == []
    two = sorted(cases, key=lambda c: len(c.input))[:2]  # the shortest, to keep the test fast

    [summary] = run_eval(engine, "label-email", ["small"], two)

    assert summary.cases == 2
    assert summary.model == "tierwise-local/smollm2"
    assert 0 <= summary.passed <= 2
    assert summary.errors == 0  # the model answered (an invalid label is a failure, not an error)
    assert summary.mean_cost_usd == 0.0
    with engine.ledger.session() as s:
        [run] = s.exec(select(EvalRun)).all()
        results = s.exec(select(EvalResult).where(EvalResult.run_id == run.id)).all()
        calls = s.exec(select(RequestRow)).all()
    assert (run.skill, run.tier, run.model, run.cases) == (
        "label-email",
        "small",
        "tierwise-local/smollm2",
        2,
    )
    assert run.passed == summary.passed
    assert sorted(r.case_id for r in results) == sorted(c.id for c in two)
    assert len(calls) == 2
    for call in calls:
        assert call.purpose == "eval"
        assert call.model_requested == EMBEDDED_MODEL
        assert call.price_source == "embedded"
        assert call.prompt_tokens > 500  # the taxonomy context really went in
        assert call.completion_tokens > 0
        assert call.response
