"""Verification as evidence (verify_status rows → per-tier verified-pass rates in the review, the CLI
and every digest format), and the shadow sampler following the review's open decision."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from typer.testing import CliRunner

from bot.adapters import cli
from bot.adapters.slack import digest as digest_blocks
from bot.core.stats import wilson
from bot.economics import digest, tier_review
from bot.economics.context import EconomicsContext
from bot.ledger.models import ShadowPair, utcnow
from tests.integration.test_shadow import LABEL, inline_shadow, label, pairs
from tests.ledger_builder import LedgerBuilder, at, dyadic_tiers, priced_tiers

END = at(2026, 11, 16, 0)
WEEK = "2026-W46"


def verified_ledger(engine: Any) -> None:
    """label-email on medium: 100 checked answers (95 pass) plus 20 without verifiers (NULL) and 5
    not run; 40 shadow answers on small (28 pass). ask has no verifiers at all."""
    b = LedgerBuilder(engine.ledger)
    start = at(2026, 11, 9, 1)
    rows = b.requests(100, start, skill="label-email", tier="medium", cost=0.0625, user="U1")
    b.requests(20, start, skill="label-email", tier="medium", cost=0.0625, user="U2")
    b.requests(5, start, skill="label-email", tier="medium", cost=0.0625, user="U2", verify_status="not_run")
    shadow = b.requests(
        40, start, skill="label-email", tier="small", cost=0.015625, user=None, purpose="shadow"
    )
    b.requests(10, start, skill="ask", tier="small", cost=0.015625, user="U3")
    with engine.ledger.session() as s:
        for i, row in enumerate(rows):
            row.verify_status = "passed" if i < 95 else "failed"
            s.add(row)
        for i, row in enumerate(shadow):
            row.verify_status = "passed" if i < 28 else "failed"
            s.add(row)
        s.commit()


def test_verified_pass_rates_per_tier_reach_the_review_and_every_digest_format(make_engine: Any) -> None:
    engine = make_engine(tiers=priced_tiers(), skills={"label-email": {"tier": "medium"}})
    verified_ledger(engine)
    inputs = {i.skill: i for i in tier_review.gather(EconomicsContext.of(engine), END)}
    label_input = inputs["label-email"]
    assert {t: (v.passed, v.failed) for t, v in label_input.verify.items()} == {
        "medium": (95, 5),
        "small": (28, 12),
    }
    assert inputs["ask"].verify == {}  # NULL: the skill has no verifiers, so no evidence

    recs = {r.skill: r for r in tier_review.review(EconomicsContext.of(engine), END)}
    verify = recs["label-email"].evidence["verify"]
    assert verify["medium"] == {
        "passed": 95,
        "failed": 5,
        "rate": 0.95,
        "ci": [round(x, 6) for x in wilson(95, 100)],
    }
    assert verify["small"] == {
        "passed": 28,
        "failed": 12,
        "rate": 0.7,
        "ci": [round(x, 6) for x in wilson(28, 40)],
    }
    line = "verified: medium 95% [89%–98%] of 100 · small 70% [55%–82%] of 40"
    assert digest.verify_line(recs["label-email"]) == line
    assert digest.verify_line(recs["ask"]) is None

    d = digest.build_digest(EconomicsContext.of(engine), WEEK)
    assert f"            {line}" in digest.to_text(d).splitlines()
    assert f"  - {line}" in digest.to_markdown(d).splitlines()
    as_json = json.loads(digest.to_json(d))
    by_skill = {r["skill"]: r for r in as_json["recommendations"]}
    assert by_skill["label-email"]["evidence"]["verify"]["small"]["rate"] == 0.7
    texts = [b.get("text", {}).get("text", "") for b in digest_blocks.to_blocks(d)]
    assert any(t.endswith(f"\n_{line}_") for t in texts)


def test_a_cheaper_tier_verified_credibly_worse_is_vetoed_and_the_review_says_so(make_engine: Any) -> None:
    engine = make_engine(tiers=priced_tiers(), skills={"label-email": {"tier": "medium"}})
    verified_ledger(engine)
    LedgerBuilder(engine.ledger).shadow_pairs(
        at(2026, 11, 9, 2), "label-email", "medium", "small", ties=300, candidate_cost=0.015625
    )
    rec = next(r for r in tier_review.review(EconomicsContext.of(engine), END) if r.skill == "label-email")
    small = next(c for c in rec.evidence["comparisons"] if c["tier"] == "small")
    assert "verify_worse" in small["blocked_by"] and rec.action == "keep"
    assert "verified-pass rate on small 70% credibly below 95% on medium" in rec.reason


def test_the_review_command_prints_the_verified_rates(isolated: Any, make_engine: Any) -> None:
    engine = make_engine()
    now = utcnow()
    LedgerBuilder(engine.ledger).requests(
        10, now - timedelta(days=1), skill="ask", tier="small", cost=0.01, user="U1", verify_status="failed"
    )
    result = CliRunner().invoke(cli.app, ["review"])
    assert result.exit_code == 0, result.output
    assert "  verified: small 0% [0%–28%] of 10" in result.stdout.splitlines()


def test_failing_verifiers_send_the_shadow_budget_up(make_engine: Any, script: Any) -> None:
    """label-email on medium would test small first; its verifiers fail 40% of answers: test large."""
    skills = {"label-email": {"tier": "medium", "shadow_rate": 1.0}}
    engine = make_engine(tiers=dyadic_tiers(), skills=skills)
    inline_shadow(engine)
    script.default = json.dumps(LABEL)
    now = utcnow()
    assert tier_review.next_test_for(EconomicsContext.of(engine), "label-email", now).tier == "small"
    LedgerBuilder(engine.ledger).requests(
        60,
        now - timedelta(days=2),
        skill="label-email",
        tier="medium",
        cost=0.01,
        user="U1",
        verify_status="passed",
    )
    LedgerBuilder(engine.ledger).requests(
        40,
        now - timedelta(days=2),
        skill="label-email",
        tier="medium",
        cost=0.01,
        user="U1",
        verify_status="failed",
    )
    plan = tier_review.next_test_for(EconomicsContext.of(engine), "label-email", now)
    assert (plan.tier, plan.direction) == ("large", "up")
    assert plan.reason == "verifiers fail 40% of 100 answers on medium, credibly above 10%"
    label(engine)
    assert [(p.primary_tier, p.candidate_tier) for p in pairs(engine)] == [("medium", "large")]


def test_auto_sampling_stops_when_every_decision_is_closed(make_engine: Any, script: Any) -> None:
    """small credibly worse (down closed) and large credibly no better (up closed): nothing to sample."""
    skills = {"label-email": {"tier": "medium", "shadow_rate": 1.0}}
    engine = make_engine(tiers=dyadic_tiers(), skills=skills)
    inline_shadow(engine)
    script.default = json.dumps(LABEL)
    b = LedgerBuilder(engine.ledger)
    since = utcnow() - timedelta(days=3)
    b.shadow_pairs(since, "label-email", "medium", "small", ties=100, losses=60, step=timedelta(minutes=1))
    b.shadow_pairs(
        since, "label-email", "medium", "large", ties=300, wins=2, losses=2, step=timedelta(minutes=1)
    )
    plan = tier_review.next_test_for(EconomicsContext.of(engine), "label-email", utcnow())
    assert plan.tier is None and plan.reason.startswith("every neighbouring decision is closed")
    before = len(pairs(engine))
    label(engine)
    assert len(pairs(engine)) == before  # the request was answered; no shadow call was spent
    with engine.ledger.session() as s:
        assert s.query(ShadowPair).count() == before
