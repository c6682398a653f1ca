"""The tier review at its edges: evidence gathered from a ledger with known rows, the grouped SQL
behind it (nearest-rank percentiles, shadow tallies), and storing / applying / dismissing.

The pure rules are unit-tested in tests/unit/test_review.py; here every figure comes from real rows.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.core.evidence import EvalStats, ShadowStats, TierWindowStats
from bot.core.types import Request
from bot.economics import tier_review
from bot.economics.context import EconomicsContext
from bot.economics.tier_review import RecommendationError
from bot.economics.tiers import set_tier
from bot.ledger import queries
from bot.ledger.models import Recommendation, TierAssignment
from tests.ledger_builder import (
    ASK_REASON,
    LABEL_REASON,
    SUMMARIZE_REASON,
    W46,
    W46_END,
    LedgerBuilder,
    at,
    scenario_engine,
    seeded_engine,
)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return scenario_engine(tmp_path_factory.mktemp("review"))


@pytest.fixture
def fresh(make_engine: Any) -> Any:
    """A seeded engine of its own, for tests that change tiers or recommendations."""
    return seeded_engine(make_engine)


def skill(engine: Any, name: str) -> Any:
    return engine.registry.get(name)


def assignments(engine: Any) -> int:
    with engine.ledger.session() as s:
        return s.execute(select(func.count()).select_from(TierAssignment)).scalar_one()


# The review from the ledger ----------------------------------------------------------------------


def test_review_recommends_from_the_ledger(scenario: Any) -> None:
    recs = {r.skill: r for r in tier_review.review(EconomicsContext.of(scenario), W46_END)}
    assert list(recs) == ["ask", "hunt", "label-email", "summarize", "triage-alert", "write-report"]

    down = recs["label-email"]
    assert (down.action, down.current_tier, down.target_tier) == ("downgrade", "medium", "small")
    assert down.reason == LABEL_REASON
    assert down.monthly_delta_usd == -11.25  # (0.0625 − 0.015625) × 224 × 30/28
    assert down.evidence["requests"] == 224 and down.evidence["cost_sum"] == 14.0
    assert down.evidence["monthly_cost_usd"] == 15.0
    small = next(c for c in down.evidence["comparisons"] if c["tier"] == "small")
    assert (small["pairs"], small["state"], small["blocked_by"]) == (240, "noninferior", [])
    assert small["advantage_points"] == pytest.approx(-100 * 2 / 240)
    assert small["monthly_cost_change_usd"] == -11.25
    assert down.evidence["margin_points"] == 5.0

    up = recs["ask"]
    assert (up.action, up.current_tier, up.target_tier) == ("upgrade", "small", "medium")
    assert up.reason == ASK_REASON
    assert up.monthly_delta_usd == 0.9375  # (0.03125 − 0.015625) × 56 × 30/28
    assert up.evidence["feedback"] == 12 and up.evidence["thumbs_up"] == 3
    assert up.evidence["comparisons"][0]["state"] == "better"

    keep = recs["summarize"]
    assert (keep.action, keep.target_tier, keep.reason) == ("keep", None, SUMMARIZE_REASON)
    assert keep.evidence["unknown_cost"] == 1
    assert keep.evidence["comparisons"][0]["blocked_by"] == ["eval_missing", "saving"]
    assert keep.evidence["next_test"]["tier"] == "small"

    assert (recs["triage-alert"].action, recs["triage-alert"].reason) == (
        "keep",
        "no 👍/👎 ratings; no other tier this skill may use: nothing to sample",
    )
    assert (recs["hunt"].action, recs["hunt"].reason) == (
        "keep",
        "no traffic in the window (28 days); no other tier this skill may use: nothing to sample",
    )
    assert (recs["write-report"].action, recs["write-report"].reason) == (
        "keep",
        "no traffic in the window (28 days); next: shadow-test large (a stronger tier may pay off)",
    )


def test_gather_builds_each_skills_evidence_from_the_window(scenario: Any) -> None:
    inputs = {i.skill: i for i in tier_review.gather(EconomicsContext.of(scenario), W46_END)}
    label = inputs["label-email"]
    assert (label.current_tier, label.tiers, label.window_days) == (
        "medium",
        ("small", "medium", "large"),
        28,
    )
    assert label.stats == {
        "medium": TierWindowStats(
            "label-email", "medium", 224, 14.0, 0.0625, 0.0625, 0.0, 0.0, 0, 0, 0, 0, unknown_cost=0
        )
    }
    # August's ten losses are outside the 28-day window, and outside the 91-day evidence horizon
    assert label.shadows == (ShadowStats("label-email", "medium", "small", 0, 238, 2, 3, 0.015625),)
    (pair,) = label.pairs
    assert (pair.cheaper, pair.stronger, pair.seq.n, pair.stronger_wins, pair.ties, pair.errors) == (
        "small",
        "medium",
        240,
        2,
        238,
        3,
    )
    (ev_pair,) = label.eval_pairs
    assert (ev_pair.cases, ev_pair.seq.total) == (100, 2.0)  # cases c092 and c093 pass on medium only
    assert label.cost_per_request == {"medium": 0.0625, "small": 0.015625}
    assert label.evals == {
        "medium": EvalStats("label-email", "medium", 100, 0.93, 0, 0.0625, at(2026, 11, 1)),
        "small": EvalStats("label-email", "small", 100, 0.91, 0, 0.015625, at(2026, 11, 1)),
    }
    assert (label.critical, label.margin, label.auto_apply, label.last_change_at) == (
        False,
        None,
        False,
        None,
    )
    triage = inputs["triage-alert"].stats["small"]
    assert (triage.requests, triage.errors) == (1, 1)


def test_escalations_count_against_the_tier_that_escalated(scenario: Any) -> None:
    """triage-alert runs on small; its one request was invalid there and escalated to medium.

    The review reads `escalation_rate` of the current tier (escalations / requests), so the
    escalation must be attributed to small, the tier that failed, not to medium (which has no
    requests of its own, so a rate there is always 0)."""
    inputs = {i.skill: i for i in tier_review.gather(EconomicsContext.of(scenario), W46_END)}
    assert inputs["triage-alert"].stats["small"].escalations == 1
    rec = next(
        r for r in tier_review.review(EconomicsContext.of(scenario), W46_END) if r.skill == "triage-alert"
    )
    assert rec.evidence["escalation_rate"] == 1.0


def test_a_recent_tier_change_holds_the_downgrade_back(make_engine: Any) -> None:
    engine = seeded_engine(make_engine)
    LedgerBuilder(engine.ledger).tier_assignment(
        at(2026, 11, 6, 8), "label-email", "medium", previous="small"
    )
    rec = next(
        r for r in tier_review.review(EconomicsContext.of(engine), W46_END) if r.skill == "label-email"
    )
    assert rec.action == "keep"
    assert rec.reason == (
        "cooldown: last change 2026-11-06, next change allowed from 2026-12-04; "
        f"would downgrade medium → small: {LABEL_REASON}"
    )


def test_review_settings_come_from_configuration(make_engine: Any) -> None:
    engine = seeded_engine(make_engine, review={"min_monthly_saving_usd": 20.0})
    rec = next(
        r for r in tier_review.review(EconomicsContext.of(engine), W46_END) if r.skill == "label-email"
    )
    assert rec.action == "keep"
    assert "saving $11.25/month < $20.00 floor" in rec.reason


# Grouped SQL ----------------------------------------------------------------------------------------


def test_tier_window_stats_nearest_rank_percentiles_and_counts(engine: Any) -> None:
    b = LedgerBuilder(engine.ledger)
    start = at(2026, 11, 1)
    order = [7, 19, 3, 12, 1, 20, 15, 9, 5, 17, 2, 11, 14, 6, 18, 4, 10, 13, 8, 16]  # ranks, shuffled
    for i, rank in enumerate(order):
        b.request(
            start + timedelta(minutes=i),
            skill="ask",
            tier="small",
            latency_ms=rank * 100,
            cost=rank / 64,
            user=f"U{i % 3}",
            status="error" if rank in (3, 4) else ("invalid" if rank == 5 else "ok"),
            cost_known=rank != 20,
        )
    medium = b.requests(
        7, start, skill="ask", tier="medium", cost=0.25, latencies=[70, 10, 60, 20, 50, 30, 40]
    )
    b.request(start, skill="ask", tier="large", cost=0.5, latency_ms=999, escalated_from=medium[0].id)
    b.feedback(medium[0], user="U1", score=1)
    b.feedback(medium[1], user="U1", score=-1)
    b.feedback(medium[2], user="U2", score=1)
    # outside the window, or not user traffic: ignored
    b.request(start - timedelta(days=1), skill="ask", tier="small", latency_ms=1, cost=5.0)
    b.request(at(2026, 11, 8), skill="ask", tier="small", latency_ms=1, cost=5.0)
    b.request(start, skill="ask", tier="small", latency_ms=1, cost=5.0, purpose="shadow")

    stats = queries.tier_window_stats(engine.ledger, start, at(2026, 11, 8))
    # the escalation row on large belongs to the request that started on medium
    assert set(stats) == {("ask", "small"), ("ask", "medium")}
    assert stats["ask", "small"] == TierWindowStats(
        skill="ask",
        tier="small",
        requests=20,
        cost_sum=210 / 64,
        cost_mean=210 / 64 / 20,
        cost_p95=19 / 64,  # rank ceil(0.95 × 20) = 19
        latency_p50_ms=1000.0,  # rank 10
        latency_p95_ms=1900.0,  # rank 19
        errors=3,
        escalations=0,
        feedback=0,
        thumbs_up=0,
        unknown_cost=1,
    )
    assert stats["ask", "medium"] == TierWindowStats(
        "ask", "medium", 7, 2.25, 2.25 / 7, 0.25, 40.0, 70.0, 0, 1, 3, 2, unknown_cost=0
    )  # cost includes the escalation; p50: rank ceil(3.5) = 4 → 40 ms; p95: rank ceil(6.65) = 7 → 70 ms


def test_shadow_stats_group_by_tiers_within_the_window(engine: Any) -> None:
    b = LedgerBuilder(engine.ledger)
    since, until = at(2026, 11, 1, 0), at(2026, 11, 8, 0)
    b.shadow_pairs(since, "ask", "medium", "small", wins=3, ties=4, losses=2, errors=1, candidate_cost=0.125)
    b.shadow_pairs(since, "ask", "medium", "large", wins=1, losses=1, candidate_cost=0.5)
    b.shadow_pairs(since, "ask", "small", "medium", errors=2)
    b.shadow_pairs(until, "ask", "medium", "small", losses=1)  # the end is exclusive
    b.shadow_pairs(since - timedelta(seconds=1), "ask", "medium", "small", losses=1)
    stats = sorted(
        queries.shadow_stats(engine.ledger, since, until), key=lambda s: (s.primary_tier, s.candidate_tier)
    )
    assert stats == [
        ShadowStats("ask", "medium", "large", 1, 0, 1, 0, 0.5),
        ShadowStats("ask", "medium", "small", 3, 4, 2, 1, 0.125),  # the error pair's $0 is not averaged in
        ShadowStats("ask", "small", "medium", 0, 0, 0, 2, None),
    ]
    assert stats[1].decided == 9


def test_latest_evals_picks_the_newest_run_per_skill_and_tier(engine: Any) -> None:
    b = LedgerBuilder(engine.ledger)
    b.eval_run(at(2026, 10, 1), "ask", "small", cases=10, passed=2, total_cost=1.0)
    b.eval_run(at(2026, 11, 1), "ask", "small", cases=20, passed=15, total_cost=0.5, critical_failures=1)
    b.eval_run(at(2026, 9, 1), "ask", "medium", cases=4, passed=4, total_cost=0.0)
    evals = queries.latest_evals(engine.ledger)
    assert evals == {
        ("ask", "small"): EvalStats("ask", "small", 20, 0.75, 1, 0.025, at(2026, 11, 1)),
        ("ask", "medium"): EvalStats("ask", "medium", 4, 1.0, 0, 0.0, at(2026, 9, 1)),
    }


# Store, apply, dismiss ----------------------------------------------------------------------------


def stored(engine: Any) -> dict[str, Recommendation]:
    recs = tier_review.review(EconomicsContext.of(engine), W46_END)
    return {row.skill: row for row in tier_review.store(EconomicsContext.of(engine), recs, W46)}


def test_store_keeps_actions_open_and_the_rest_as_information(fresh: Any) -> None:
    rows = stored(fresh)
    assert {s: r.status for s, r in rows.items()} == {
        "ask": "open",
        "hunt": "info",
        "label-email": "open",
        "summarize": "info",
        "triage-alert": "info",
        "write-report": "info",
    }
    label = rows["label-email"]
    assert (label.period, label.action, label.current_tier, label.target_tier) == (
        W46,
        "downgrade",
        "medium",
        "small",
    )
    assert label.reason == LABEL_REASON
    assert json.loads(label.evidence)["projected_monthly_usd"] == -11.25
    assert {r.skill: r.id for r in tier_review.latest(EconomicsContext.of(fresh))} == {
        s: r.id for s, r in rows.items()
    }


def test_apply_records_the_assignment_and_takes_effect_at_once(fresh: Any, script: Any) -> None:
    rows = stored(fresh)
    row = tier_review.apply(EconomicsContext.of(fresh), int(rows["ask"].id), "U_ADMIN")
    assert (row.status, row.decided_by) == ("applied", "U_ADMIN") and row.decided_at is not None
    (newest, *_) = fresh.ledger.tier_history("ask")
    assert (newest.tier, newest.previous_tier, newest.assigned_by, newest.source) == (
        "medium",
        "small",
        "U_ADMIN",
        "slack",
    )
    assert newest.reason == f"upgrade from review {W46}: {ASK_REASON}"
    assert fresh.configured_tier(skill(fresh, "ask")) == ("medium", "admin assignment")

    reply = fresh.handle(Request(text="How do I get VPN access?", skill="ask", user="U1"))
    assert reply.status == "ok" and reply.tier == "medium"
    assert script.calls[0][0] == "medium"


def test_applying_twice_is_refused_and_changes_nothing(fresh: Any) -> None:
    rows = stored(fresh)
    tier_review.apply(EconomicsContext.of(fresh), int(rows["label-email"].id), "U_ADMIN")
    before = assignments(fresh)
    with pytest.raises(
        RecommendationError, match=rf"recommendation #{rows['label-email'].id} is applied; nothing to apply"
    ):
        tier_review.apply(EconomicsContext.of(fresh), int(rows["label-email"].id), "U_OTHER")
    assert assignments(fresh) == before
    assert fresh.configured_tier(skill(fresh, "label-email")) == ("small", "admin assignment")


def test_a_stale_recommendation_is_refused_after_a_manual_change(fresh: Any) -> None:
    rows = stored(fresh)
    set_tier(
        EconomicsContext.of(fresh), "label-email", "large", by="U_OTHER", reason="trying large", source="cli"
    )
    before = assignments(fresh)
    with pytest.raises(RecommendationError) as err:
        tier_review.apply(EconomicsContext.of(fresh), int(rows["label-email"].id), "U_ADMIN")
    assert str(err.value) == "label-email is on large now, not medium: the recommendation is stale"
    assert assignments(fresh) == before
    assert fresh.configured_tier(skill(fresh, "label-email")) == ("large", "admin assignment")
    with fresh.ledger.session() as s:
        assert s.get(Recommendation, rows["label-email"].id).status == "stale"
    with pytest.raises(RecommendationError, match="is stale; nothing to apply"):
        tier_review.apply(EconomicsContext.of(fresh), int(rows["label-email"].id), "U_ADMIN")


def test_dismiss(fresh: Any) -> None:
    rows = stored(fresh)
    rec_id = int(rows["label-email"].id)
    row = tier_review.dismiss(EconomicsContext.of(fresh), rec_id, "U_ADMIN")
    assert (row.status, row.decided_by) == ("dismissed", "U_ADMIN")
    with pytest.raises(RecommendationError, match="is dismissed; nothing to apply"):
        tier_review.apply(EconomicsContext.of(fresh), rec_id, "U_ADMIN")
    with pytest.raises(RecommendationError, match="is dismissed; nothing to dismiss"):
        tier_review.dismiss(EconomicsContext.of(fresh), rec_id, "U_ADMIN")
    assert assignments(fresh) == 0
    assert fresh.configured_tier(skill(fresh, "label-email")) == ("medium", "configuration")


def test_unknown_keep_and_superseded_recommendations_cannot_be_applied(fresh: Any) -> None:
    with pytest.raises(RecommendationError, match="no recommendation #999"):
        tier_review.apply(EconomicsContext.of(fresh), 999, "U_ADMIN")
    with pytest.raises(RecommendationError, match="no recommendation #999"):
        tier_review.dismiss(EconomicsContext.of(fresh), 999, "U_ADMIN")
    first = stored(fresh)
    with pytest.raises(RecommendationError, match="is info; nothing to apply"):
        tier_review.apply(EconomicsContext.of(fresh), int(first["summarize"].id), "U_ADMIN")
    second = stored(fresh)  # next week's review supersedes the open ones
    with pytest.raises(RecommendationError, match="is superseded; nothing to apply"):
        tier_review.apply(EconomicsContext.of(fresh), int(first["label-email"].id), "U_ADMIN")
    tier_review.apply(EconomicsContext.of(fresh), int(second["label-email"].id), "U_ADMIN")
    assert assignments(fresh) == 1


def test_auto_apply_only_for_skills_that_enable_it(make_engine: Any) -> None:
    skills = {"label-email": {"tier": "medium", "auto_apply": True}, "summarize": {"tier": "medium"}}
    engine = seeded_engine(make_engine, skills=skills)
    recs = tier_review.review(EconomicsContext.of(engine), W46_END)
    rows = tier_review.store(EconomicsContext.of(engine), recs, W46)
    assert tier_review.auto_apply(EconomicsContext.of(engine), rows, recs) == ["label-email: medium → small"]
    by_skill = {r.skill: r for r in rows}
    with engine.ledger.session() as s:
        assert s.get(Recommendation, by_skill["label-email"].id).status == "applied"
        assert s.get(Recommendation, by_skill["label-email"].id).decided_by == "auto-apply"
        assert s.get(Recommendation, by_skill["ask"].id).status == "open"  # ask has no auto_apply
    (newest,) = engine.ledger.tier_history()
    assert (newest.skill, newest.tier, newest.assigned_by, newest.source) == (
        "label-email",
        "small",
        "auto-apply",
        "auto",
    )
    assert engine.configured_tier(skill(engine, "ask")) == ("small", "skill default")


def test_auto_apply_changes_nothing_when_no_skill_enables_it(fresh: Any) -> None:
    recs = tier_review.review(EconomicsContext.of(fresh), W46_END)
    rows = tier_review.store(EconomicsContext.of(fresh), recs, W46)
    assert tier_review.auto_apply(EconomicsContext.of(fresh), rows, recs) == []
    assert assignments(fresh) == 0
