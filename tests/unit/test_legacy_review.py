"""bench.legacy_review (v1's rule, kept for the replay benchmark's side-by-side): hand-built evidence
in, one exact recommendation out. These are v1's tests, unchanged but for the import, so the frozen
copy the benchmark compares against stays v1's rule.

The base scenario: `label-email` on `medium` (ladder small/medium/large), 1,120 requests in
28 days at $0.0125 each (= $15.00 a month), 19 of 22 👍. Numbers are chosen so that projections
come out round: (0.0125 − 0.0025) × 1120 × 30/28 = $12.00 a month.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bench.legacy_review import LegacyRules as ReviewRules
from bench.legacy_review import format_recommendation, review_all, review_skill
from bot.core.evidence import EvalStats, ShadowStats, SkillReviewInput, TierWindowStats

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RULES = ReviewRules()
LADDER = ("small", "medium", "large")


def stats(tier: str = "medium", *, requests: int = 1120, feedback: int = 22, up: int = 19) -> TierWindowStats:
    return TierWindowStats(
        skill="label-email",
        tier=tier,
        requests=requests,
        cost_sum=0.0125 * requests,
        cost_mean=0.0125,
        cost_p95=0.03,
        latency_p50_ms=800.0,
        latency_p95_ms=2100.0,
        errors=11,
        escalations=5,
        feedback=feedback,
        thumbs_up=up,
    )


def shadow(
    candidate: str, wins: int, ties: int, losses: int, cost: float | None, primary: str = "medium"
) -> ShadowStats:
    return ShadowStats("label-email", primary, candidate, wins, ties, losses, 2, cost)


def ev(tier: str, pass_rate: float, cost: float, critical_failures: int = 0) -> EvalStats:
    return EvalStats(
        "label-email", tier, 100, pass_rate, critical_failures, cost, datetime(2026, 11, 20, tzinfo=UTC)
    )


SMALL_OK = shadow("small", 30, 84, 6, 0.0025)  # 6 losses of 120 decided → 5 %, CI [2.3, 10.5] %
EVALS = {"medium": ev("medium", 0.93, 0.01), "small": ev("small", 0.91, 0.002)}


def base(**changes: object) -> SkillReviewInput:
    data = SkillReviewInput(
        skill="label-email",
        current_tier="medium",
        tiers=LADDER,
        window_days=28,
        stats={"medium": stats()},
        shadows=(SMALL_OK,),
        evals=dict(EVALS),
    )
    return replace(data, **changes)  # type: ignore[arg-type]


def unhappy(**changes: object) -> SkillReviewInput:
    """12 of 25 👍 → 48 %, CI [30.0, 66.5] %: credibly below the 80 % target."""
    return base(**{"stats": {"medium": stats(feedback=25, up=12)}, **changes})


LARGE_WINS = shadow("large", 28, 10, 7, 0.05)  # 28 of 35 decided → 80 %, CI [64.1, 90.0] %


# Downgrade ------------------------------------------------------------------------------------


def test_clear_downgrade_with_every_figure() -> None:
    rec = review_skill(base(), RULES, NOW)

    assert (rec.action, rec.current_tier, rec.target_tier) == ("downgrade", "medium", "small")
    assert rec.monthly_delta_usd == -12.0
    assert rec.auto_apply is False
    assert rec.reason == (
        "👍 86.4% [66.7–95.3%] n=22, not credibly below the 80% target; "
        "6 of 120 shadow pairs lost on small: 5% [2.3–10.5%] ≤ margin 15%; "
        "eval 91% on small vs 93% on medium (2 pts ≤ 5); "
        "saves ~$12.00/month (1120 requests in 28 days)"
    )
    evaluated = {"cases": 100, "critical_failures": 0, "created_at": "2026-11-20T00:00:00+00:00"}
    assert rec.evidence == {
        "tier": "medium",
        "window_days": 28,
        "requests": 1120,
        "cost_sum": 14.0,
        "cost_mean": 0.0125,
        "cost_p95": 0.03,
        "monthly_cost_usd": 15.0,
        "unknown_cost": 0,
        "latency_p50_ms": 800.0,
        "latency_p95_ms": 2100.0,
        "error_rate": 0.009821,  # 11 / 1120
        "escalation_rate": 0.004464,  # 5 / 1120
        "feedback": 22,
        "thumbs_up": 19,
        "thumbs_up_rate": 0.863636,
        "thumbs_ci": [0.666646, 0.952511],
        "thumbs_below_target": False,
        "shadow": {
            "candidate": "small",
            "n": 120,
            "wins": 30,
            "ties": 84,
            "losses": 6,
            "errors": 2,
            "loss_rate": 0.05,
            "loss_ci": [0.023114, 0.104804],
            "win_rate": 0.833333,  # 30 / (30 + 6), ties excluded
            "win_ci": [0.681089, 0.921297],
            "candidate_cost_mean": 0.0025,
        },
        "shadow_up": None,
        "eval": {
            "medium": {**evaluated, "pass_rate": 0.93, "mean_cost_usd": 0.01},
            "small": {**evaluated, "pass_rate": 0.91, "mean_cost_usd": 0.002},
        },
        "downgrade": {
            "candidate": "small",
            "margin": 0.15,
            "eval_gap_points": 2.0,
            "candidate_cost_mean": 0.0025,
            "cost_source": "shadow",
            "monthly_saving_usd": 12.0,
            "blocked_by": [],
        },
        "upgrade": {
            "candidate": "large",
            "wins_by": None,
            "eval_gain_points": None,
            "candidate_cost_mean": None,
            "cost_source": None,
            "monthly_extra_usd": None,
        },
        "projected_monthly_usd": -12.0,
        "cooldown_until": None,
    }
    json.dumps(rec.evidence)  # machine-readable means JSON-serialisable


def test_downgrade_blocked_by_too_few_pairs() -> None:
    rec = review_skill(base(shadows=(shadow("small", 20, 10, 2, 0.0025),)), RULES, NOW)
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("keep", None, None)
    assert rec.reason.endswith("no downgrade to small: 32 of 50 shadow pairs needed")
    assert rec.evidence["downgrade"]["blocked_by"] == ["pairs"]
    assert rec.evidence["shadow"]["n"] == 32
    assert rec.evidence["downgrade"]["monthly_saving_usd"] == 12.0  # still reported


def test_downgrade_without_any_shadow_pairs() -> None:
    rec = review_skill(base(shadows=()), RULES, NOW)
    assert rec.action == "keep"
    assert "0 of 50 shadow pairs needed" in rec.reason
    assert rec.evidence["shadow"] is None
    # No shadow cost: the eval cost ratio stands in (0.0125 × 0.002 / 0.01 = 0.0025).
    assert rec.evidence["downgrade"]["cost_source"] == "eval"
    assert rec.evidence["downgrade"]["blocked_by"] == ["pairs"]


def test_downgrade_blocked_by_loss_interval_above_margin() -> None:
    rec = review_skill(base(shadows=(shadow("small", 30, 75, 15, 0.0025),)), RULES, NOW)
    assert rec.action == "keep"
    assert (
        "loss-rate upper bound 19.6% > margin 15% (15 of 120 shadow pairs lost on small: 12.5% [7.7–19.6%])"
        in (rec.reason)
    )
    assert rec.evidence["shadow"]["loss_rate"] == 0.125
    assert rec.evidence["shadow"]["loss_ci"] == [0.077234, 0.196031]
    assert rec.evidence["downgrade"]["blocked_by"] == ["loss_ci"]


def test_skill_margin_overrides_the_default() -> None:
    data = base(shadows=(shadow("small", 30, 75, 15, 0.0025),), margin=0.25)
    rec = review_skill(data, RULES, NOW)
    assert (rec.action, rec.target_tier) == ("downgrade", "small")
    assert "12.5% [7.7–19.6%] ≤ margin 25%" in rec.reason
    assert rec.evidence["downgrade"]["margin"] == 0.25


def test_critical_skill_blocked_by_tight_margin_and_failed_critical_case() -> None:
    evals = {"medium": ev("medium", 0.93, 0.01), "small": ev("small", 0.91, 0.002, critical_failures=2)}
    rec = review_skill(base(critical=True, evals=evals), RULES, NOW)
    assert rec.action == "keep"
    assert "loss-rate upper bound 10.5% > margin 5%" in rec.reason
    assert "2 critical eval case(s) failed on small" in rec.reason
    assert rec.evidence["downgrade"]["margin"] == 0.05
    assert rec.evidence["downgrade"]["blocked_by"] == ["loss_ci", "critical_eval"]


def test_critical_skill_cannot_loosen_its_margin() -> None:
    rec = review_skill(base(critical=True, margin=0.3), RULES, NOW)
    assert rec.action == "keep"
    assert rec.evidence["downgrade"]["margin"] == 0.05


def test_critical_skill_keeps_a_stricter_margin_of_its_own() -> None:
    # 0 losses of 120 → upper bound 3.1 %: within 5 %, but not within the skill's own 3 %.
    data = base(critical=True, margin=0.03, shadows=(shadow("small", 30, 90, 0, 0.0025),))
    rec = review_skill(data, RULES, NOW)
    assert rec.action == "keep"
    assert "loss-rate upper bound 3.1% > margin 3%" in rec.reason
    assert rec.evidence["downgrade"]["margin"] == 0.03


def test_critical_skill_downgrades_on_clean_evidence() -> None:
    # 0 losses of 120 → upper bound 3.1 % ≤ 5 %; no failed critical case on small.
    rec = review_skill(base(critical=True, shadows=(shadow("small", 30, 90, 0, 0.0025),)), RULES, NOW)
    assert (rec.action, rec.target_tier) == ("downgrade", "small")
    assert "0 of 120 shadow pairs lost on small: 0% [0–3.1%] ≤ margin 5%" in rec.reason
    assert rec.evidence["shadow"]["loss_ci"] == [0.0, 0.03102]


def test_critical_skill_needs_a_candidate_eval_even_when_evals_are_optional() -> None:
    rules = replace(RULES, require_eval=False)
    rec = review_skill(
        base(critical=True, shadows=(shadow("small", 30, 90, 0, 0.0025),), evals={}), rules, NOW
    )
    assert rec.action == "keep"
    assert "no eval run on medium or small" in rec.reason
    assert rec.evidence["downgrade"]["blocked_by"] == ["eval_missing"]


def test_downgrade_blocked_by_eval_gap() -> None:
    evals = {"medium": ev("medium", 0.93, 0.01), "small": ev("small", 0.86, 0.002)}
    rec = review_skill(base(evals=evals), RULES, NOW)
    assert rec.action == "keep"
    assert "eval 86% on small vs 93% on medium (7 pts > 5)" in rec.reason
    assert rec.evidence["downgrade"]["eval_gap_points"] == 7.0
    assert rec.evidence["downgrade"]["blocked_by"] == ["eval_gap"]


def test_eval_gap_of_exactly_the_threshold_is_within() -> None:
    # 0.93 − 0.88 is 5.000000000000004 points in floating point; it must count as 5.
    evals = {"medium": ev("medium", 0.93, 0.01), "small": ev("small", 0.88, 0.002)}
    rec = review_skill(base(evals=evals), RULES, NOW)
    assert rec.action == "downgrade"
    assert "(5 pts ≤ 5)" in rec.reason
    assert rec.evidence["downgrade"]["eval_gap_points"] == 5.0


def test_downgrade_blocked_by_missing_eval() -> None:
    rec = review_skill(base(evals={"medium": EVALS["medium"]}), RULES, NOW)
    assert rec.action == "keep"
    assert rec.reason.endswith("no downgrade to small: no eval run on small")
    assert rec.evidence["downgrade"]["blocked_by"] == ["eval_missing"]
    assert rec.evidence["downgrade"]["eval_gap_points"] is None
    assert rec.evidence["eval"] == {"medium": rec.evidence["eval"]["medium"]}


def test_missing_evals_do_not_block_when_not_required() -> None:
    rec = review_skill(base(evals={}), replace(RULES, require_eval=False), NOW)
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("downgrade", "small", -12.0)
    assert "no eval comparison" in rec.reason


def test_downgrade_blocked_by_saving_under_the_floor() -> None:
    # (0.0125 − 0.0025) × 200 × 30/28 = $2.142857 a month < $5.
    rec = review_skill(base(stats={"medium": stats(requests=200)}), RULES, NOW)
    assert rec.action == "keep"
    assert "projected saving $2.14/month < $5.00 floor" in rec.reason
    assert rec.evidence["downgrade"]["monthly_saving_usd"] == 2.142857
    assert rec.evidence["downgrade"]["blocked_by"] == ["saving"]
    assert rec.monthly_delta_usd is None


def test_candidate_cost_from_eval_ratio_when_shadow_has_none() -> None:
    rec = review_skill(base(shadows=(shadow("small", 30, 84, 6, None),)), RULES, NOW)
    assert rec.action == "downgrade"
    assert rec.evidence["downgrade"]["cost_source"] == "eval"
    assert rec.evidence["downgrade"]["candidate_cost_mean"] == 0.0025  # 0.0125 × 0.002 / 0.01
    assert rec.monthly_delta_usd == -12.0


def test_unknown_candidate_cost_blocks_the_downgrade() -> None:
    evals = {"medium": ev("medium", 0.93, 0.0), "small": ev("small", 0.91, 0.0)}  # no eval costs either
    rec = review_skill(base(shadows=(shadow("small", 30, 84, 6, None),), evals=evals), RULES, NOW)
    assert rec.action == "keep"
    assert "projected saving unknown (no cost for small from shadow pairs or evals)" in rec.reason
    assert rec.evidence["downgrade"]["monthly_saving_usd"] is None
    assert rec.evidence["downgrade"]["cost_source"] is None
    assert rec.evidence["downgrade"]["blocked_by"] == ["cost_unknown"]


def test_every_blocker_is_listed() -> None:
    evals = {"medium": ev("medium", 0.93, 0.01), "small": ev("small", 0.80, 0.002)}
    data = base(
        shadows=(shadow("small", 5, 5, 2, 0.0025),), evals=evals, stats={"medium": stats(requests=100)}
    )
    rec = review_skill(data, RULES, NOW)
    assert rec.evidence["downgrade"]["blocked_by"] == ["pairs", "eval_gap", "saving"]
    assert rec.reason.endswith(
        "no downgrade to small: 12 of 50 shadow pairs needed; "
        "eval 80% on small vs 93% on medium (13 pts > 5); projected saving $1.07/month < $5.00 floor"
    )


def test_no_downgrade_from_the_cheapest_tier() -> None:
    data = base(current_tier="small", stats={"small": stats("small")}, shadows=())
    rec = review_skill(data, RULES, NOW)
    assert (rec.action, rec.target_tier) == ("keep", None)
    assert (
        rec.reason
        == "👍 86.4% [66.7–95.3%] n=22, not credibly below the 80% target; already on the cheapest tier"
    )
    assert rec.evidence["downgrade"] == {"candidate": None}
    assert rec.evidence["shadow"] is None


# Upgrade and fix ------------------------------------------------------------------------------


def test_clear_upgrade_via_shadow() -> None:
    data = unhappy(shadows=(LARGE_WINS,), evals={"medium": EVALS["medium"], "large": ev("large", 0.95, 0.04)})
    rec = review_skill(data, RULES, NOW)
    assert (rec.action, rec.target_tier) == ("upgrade", "large")
    # (0.05 − 0.0125) × 1120 × 30/28 = $45 a month more.
    assert rec.monthly_delta_usd == 45.0
    assert rec.reason == (
        "👍 48% [30–66.5%] n=25, credibly below the 80% target; "
        "large wins 28 of 35 decided shadow pairs: 80% [64.1–90%], lower bound 64.1% > 50%; "
        "costs ~$45.00/month more"
    )
    assert rec.evidence["thumbs_below_target"] is True
    assert rec.evidence["thumbs_up_rate"] == 0.48
    assert rec.evidence["thumbs_ci"] == [0.30031, 0.665018]
    assert rec.evidence["shadow_up"] == {
        "candidate": "large",
        "n": 45,
        "wins": 28,
        "ties": 10,
        "losses": 7,
        "errors": 2,
        "loss_rate": 0.155556,
        "loss_ci": [0.077453, 0.287842],
        "win_rate": 0.8,
        "win_ci": [0.641081, 0.899577],
        "candidate_cost_mean": 0.05,
    }
    assert rec.evidence["upgrade"] == {
        "candidate": "large",
        "wins_by": "shadow",
        "eval_gain_points": 2.0,
        "candidate_cost_mean": 0.05,
        "cost_source": "shadow",
        "monthly_extra_usd": 45.0,
    }
    assert rec.evidence["projected_monthly_usd"] == 45.0


def test_clear_upgrade_via_evals() -> None:
    evals = {"medium": EVALS["medium"], "large": ev("large", 0.99, 0.04)}
    rec = review_skill(unhappy(shadows=(), evals=evals), RULES, NOW)
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("upgrade", "large", 45.0)
    assert "eval 99% on large vs 93% on medium (+6 pts ≥ 5); costs ~$45.00/month more" in rec.reason
    assert rec.evidence["upgrade"] == {
        "candidate": "large",
        "wins_by": "eval",
        "eval_gain_points": 6.0,
        "candidate_cost_mean": 0.05,  # 0.0125 × 0.04 / 0.01
        "cost_source": "eval",
        "monthly_extra_usd": 45.0,
    }


def test_upgrade_when_the_eval_gain_is_exactly_the_threshold() -> None:
    # 0.98 − 0.93 is 5.000000000000004 points in floating point; "at least 5" must include it.
    evals = {"medium": EVALS["medium"], "large": ev("large", 0.98, 0.04)}
    rec = review_skill(unhappy(shadows=(), evals=evals), RULES, NOW)
    assert (rec.action, rec.target_tier) == ("upgrade", "large")
    assert "(+5 pts ≥ 5)" in rec.reason
    assert rec.evidence["upgrade"]["eval_gain_points"] == 5.0


def test_upgrade_with_unknown_extra_cost() -> None:
    evals = {"medium": ev("medium", 0.93, 0.0), "large": ev("large", 0.99, 0.0)}
    rec = review_skill(unhappy(shadows=(), evals=evals), RULES, NOW)
    assert (rec.action, rec.monthly_delta_usd) == ("upgrade", None)
    assert rec.reason.endswith("extra cost unknown (no cost for large from shadow pairs or evals)")


def test_fix_when_unhappy_and_the_stronger_tier_does_not_win() -> None:
    evals = {**EVALS, "large": ev("large", 0.95, 0.04)}
    data = unhappy(shadows=(shadow("large", 10, 5, 9, 0.05), SMALL_OK), evals=evals)
    rec = review_skill(data, RULES, NOW)
    # Unhappy users come before a (perfectly valid) downgrade.
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("fix", None, None)
    assert rec.reason == (
        "fix the pack or prompt, not the tier: 👍 48% [30–66.5%] n=25, credibly below the 80% target; "
        "large does not win: large wins 10 of 19 decided shadow pairs: 52.6% [31.7–72.7%], "
        "lower bound 31.7% ≤ 50%; eval 95% on large vs 93% on medium (2 pts < 5)"
    )
    assert rec.evidence["upgrade"]["wins_by"] is None
    assert rec.evidence["downgrade"]["blocked_by"] == []
    assert rec.evidence["projected_monthly_usd"] is None


def test_fix_without_any_evidence_on_the_stronger_tier() -> None:
    rec = review_skill(unhappy(shadows=(), evals={}), RULES, NOW)
    assert rec.action == "fix"
    assert rec.reason.endswith(
        "large does not win: no decided shadow pairs on large; no eval run on medium or large"
    )


def test_fix_on_the_strongest_tier() -> None:
    data = unhappy(current_tier="large", stats={"large": stats("large", feedback=25, up=12)}, shadows=())
    rec = review_skill(data, RULES, NOW)
    assert (rec.action, rec.target_tier) == ("fix", None)
    assert rec.reason == (
        "fix the pack or prompt, not the tier: 👍 48% [30–66.5%] n=25, credibly below the 80% target; "
        "already on the strongest tier"
    )
    assert rec.evidence["upgrade"] == {"candidate": None}


def test_few_ratings_are_not_an_alarm() -> None:
    # 0 of 5 👍 is bad, but 5 ratings are under min_ratings: no upgrade, no fix.
    rec = review_skill(base(stats={"medium": stats(feedback=5, up=0)}, shadows=(LARGE_WINS,)), RULES, NOW)
    assert rec.action == "keep"
    assert rec.reason.startswith("👍 0% [0–43.4%] n=5, too few ratings to judge (10 needed)")
    assert rec.evidence["thumbs_below_target"] is False


def test_low_point_estimate_but_wide_interval_is_not_unhappy() -> None:
    # 7 of 10 → 70 % [39.7–89.2 %]: the upper bound is above 80 %, so not credibly below.
    rec = review_skill(base(stats={"medium": stats(feedback=10, up=7)}, shadows=(LARGE_WINS,)), RULES, NOW)
    assert rec.action == "keep"
    assert "👍 70% [39.7–89.2%] n=10, not credibly below the 80% target" in rec.reason


# Keep, cooldown, edges --------------------------------------------------------------------------


def test_keep_when_happy_and_no_downgrade_evidence() -> None:
    rec = review_skill(base(shadows=()), RULES, NOW)
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("keep", None, None)
    assert rec.reason == (
        "👍 86.4% [66.7–95.3%] n=22, not credibly below the 80% target; "
        "no downgrade to small: 0 of 50 shadow pairs needed"
    )


def test_keep_without_ratings_says_so() -> None:
    rec = review_skill(base(stats={"medium": stats(feedback=0, up=0)}, shadows=()), RULES, NOW)
    assert rec.reason.startswith("no 👍/👎 ratings; ")
    assert rec.evidence["thumbs_up_rate"] is None
    assert rec.evidence["thumbs_ci"] == [0.0, 1.0]


def test_cooldown_turns_an_upgrade_into_keep_with_the_date() -> None:
    data = unhappy(shadows=(LARGE_WINS,), last_change_at=datetime(2026, 11, 13, 15, 0, tzinfo=UTC))
    rec = review_skill(data, RULES, NOW)
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("keep", None, None)
    assert rec.reason.startswith(
        "cooldown: last change 2026-11-13, next change allowed from 2026-12-11; "
        "would upgrade medium → large: 👍 48% [30–66.5%] n=25"
    )
    assert rec.evidence["cooldown_until"] == "2026-12-11"
    assert rec.evidence["upgrade"]["wins_by"] == "shadow"  # the evidence is still reported
    assert rec.evidence["projected_monthly_usd"] == 45.0


def test_cooldown_also_holds_back_a_downgrade_and_accepts_naive_datetimes() -> None:
    rec = review_skill(base(last_change_at=datetime(2026, 11, 1)), RULES, datetime(2026, 11, 23, 9))
    assert rec.action == "keep"
    assert "next change allowed from 2026-11-29; would downgrade medium → small" in rec.reason


def test_after_the_cooldown_the_change_goes_ahead() -> None:
    data = unhappy(shadows=(LARGE_WINS,), last_change_at=datetime(2026, 10, 26, 9, 0, tzinfo=UTC))
    rec = review_skill(data, RULES, NOW)  # exactly 28 days later
    assert (rec.action, rec.target_tier) == ("upgrade", "large")
    assert rec.evidence["cooldown_until"] == "2026-11-23"


def test_cooldown_does_not_hold_back_a_fix() -> None:
    data = unhappy(shadows=(), evals={}, last_change_at=datetime(2026, 11, 20, tzinfo=UTC))
    assert review_skill(data, RULES, NOW).action == "fix"


@pytest.mark.parametrize("current", [{}, {"medium": stats(requests=0, feedback=0, up=0)}])
def test_zero_traffic(current: dict[str, TierWindowStats]) -> None:
    rec = review_skill(base(stats=current), RULES, NOW)
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("keep", None, None)
    assert rec.reason == "no traffic in the window (28 days)"
    assert rec.evidence["requests"] == 0
    assert rec.evidence["error_rate"] == 0.0
    assert rec.evidence["monthly_cost_usd"] == 0.0
    json.dumps(rec.evidence)


def test_current_tier_off_the_ladder_is_kept() -> None:
    rec = review_skill(base(current_tier="xl", stats={"xl": stats("xl")}), RULES, NOW)
    assert (rec.action, rec.target_tier) == ("keep", None)
    assert rec.reason == "current tier xl is not on the ladder (small → medium → large)"


def test_two_tier_ladder_and_zero_window_do_not_divide_by_zero() -> None:
    rec = review_skill(base(tiers=("small", "medium"), window_days=0), RULES, NOW)
    assert rec.action == "keep"  # a zero window projects $0 a month: under the floor
    assert rec.evidence["upgrade"] == {"candidate": None}
    assert rec.evidence["downgrade"]["monthly_saving_usd"] == 0.0


def test_auto_apply_is_copied_through() -> None:
    assert review_skill(base(auto_apply=True), RULES, NOW).auto_apply is True
    assert review_skill(base(auto_apply=True, shadows=()), RULES, NOW).auto_apply is True
    assert review_skill(base(auto_apply=False), RULES, NOW).auto_apply is False


def test_review_all_keeps_input_order() -> None:
    inputs = [base(skill="b"), base(skill="a", shadows=()), unhappy(skill="c", shadows=(), evals={})]
    recs = review_all(inputs, RULES, NOW)
    assert [(r.skill, r.action) for r in recs] == [("b", "downgrade"), ("a", "keep"), ("c", "fix")]
    assert review_all([], RULES, NOW) == []


def test_format_recommendation() -> None:
    down = review_skill(base(), RULES, NOW)
    assert format_recommendation(down) == (
        "label-email: downgrade medium → small — 👍 86.4% [66.7–95.3%] n=22, not credibly below the 80% target; "
        "6 of 120 shadow pairs lost on small: 5% [2.3–10.5%] ≤ margin 15%; "
        "eval 91% on small vs 93% on medium (2 pts ≤ 5); saves ~$12.00/month (1120 requests in 28 days)"
    )
    keep = review_skill(base(stats={}), RULES, NOW)
    assert format_recommendation(keep) == "label-email: keep medium — no traffic in the window (28 days)"
