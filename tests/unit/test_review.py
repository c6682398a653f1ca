"""bot.core.review (the paired rule): hand-built evidence in, one exact recommendation out.

The base: `label-email` on `medium` (ladder small/medium/large), 1,120 requests in 28 days
(= 1,200 a month), costs per request small $0.0025, medium $0.0125, large $0.05. A move to small
saves (0.0125 − 0.0025) × 1,200 = $12.00 a month; a move to large costs (0.05 − 0.0125) × 1,200 =
$45.00 a month more. v1's rule is tested in tests/unit/test_legacy_review.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.config import ReviewSettings
from bot.core.confseq import PairedSeq, interval
from bot.core.evidence import (
    EvalPairs,
    PairEvidence,
    SkillReviewInput,
    TierWindowStats,
    VerifyStats,
)
from bot.core.ladder import Ladder
from bot.core.rec_format import format_recommendation
from bot.core.review import (
    all_comparisons,
    eval_pairs_from_cases,
    next_test,
    pairs_from_verdicts,
    review_skill,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RULES = ReviewSettings()
LADDER = ("small", "medium", "large")
COSTS = {"small": 0.0025, "medium": 0.0125, "large": 0.05}


def stats(tier: str = "medium", *, requests: int = 1120, feedback: int = 0, up: int = 0) -> TierWindowStats:
    cost = COSTS[tier]
    return TierWindowStats(
        "label-email", tier, requests, cost * requests, cost, cost, 800.0, 2100.0, 0, 0, feedback, up
    )


def pair(cheaper: str, stronger: str, stronger_wins: int, ties: int, cheaper_wins: int) -> PairEvidence:
    seq = PairedSeq().extend([1.0] * stronger_wins + [0.0] * ties + [-1.0] * cheaper_wins)
    return PairEvidence(cheaper, stronger, seq, stronger_wins, ties, cheaper_wins)


def golden(cheaper: str, stronger: str, both: int, stronger_only: int, cheaper_only: int) -> EvalPairs:
    seq = PairedSeq().extend([0.0] * both + [1.0] * stronger_only + [-1.0] * cheaper_only)
    return EvalPairs(cheaper, stronger, seq, both + stronger_only + cheaper_only)


SMALL_CLOSE = pair("small", "medium", 2, 236, 2)  # 240 pairs, 0 pts [-2.7, 2.7]: within 5 points
SMALL_GOLDEN = golden("small", "medium", 38, 1, 1)


def base(**changes: object) -> SkillReviewInput:
    data = SkillReviewInput(
        skill="label-email",
        current_tier="medium",
        tiers=LADDER,
        window_days=28,
        stats={"medium": stats()},
        pairs=(SMALL_CLOSE,),
        eval_pairs=(SMALL_GOLDEN,),
        cost_per_request=dict(COSTS),
        shadow_per_week=50.0,
    )
    return replace(data, **changes)  # type: ignore[arg-type]


def comparison(rec: object, tier: str) -> dict:
    return next(c for c in rec.evidence["comparisons"] if c["tier"] == tier)  # type: ignore[attr-defined]


# Downgrade --------------------------------------------------------------------------------------


def test_downgrade_when_the_stronger_tiers_advantage_is_credibly_below_the_margin() -> None:
    rec = review_skill(base(), RULES, NOW)
    lo, hi = interval(SMALL_CLOSE.seq, RULES.alpha)
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("downgrade", "small", -12.0)
    assert hi < 0.05 and lo == pytest.approx(-hi)
    assert rec.reason == (
        f"downgrade to small: +0 pts [{num(-hi * 100)}, {num(hi * 100)}] over 240 pairs (small better 2, "
        "tie 236, medium better 2), advantage of medium credibly below the non-inferiority margin 5 pts, "
        "saves $12.00/month"
    )
    assert format_recommendation(rec).startswith("label-email: downgrade medium → small — downgrade to small")
    small = comparison(rec, "small")
    assert (small["state"], small["ok"], small["margin_points"], small["pairs"]) == (
        "noninferior",
        True,
        5.0,
        240,
    )


def test_losses_alone_do_not_decide_wins_count_too() -> None:
    """12 losses and 12 wins of 240: v1 looked at the 5% loss rate only; the paired mean is 0."""
    rec = review_skill(base(pairs=(pair("small", "medium", 12, 216, 12),)), RULES, NOW)
    small = comparison(rec, "small")
    assert small["advantage_points"] == 0.0 and small["state"] in ("noninferior", "open")


def test_no_downgrade_when_the_cheaper_tier_is_credibly_worse() -> None:
    rec = review_skill(base(pairs=(pair("small", "medium", 40, 200, 0),)), RULES, NOW)
    assert rec.action == "keep"
    small = comparison(rec, "small")
    assert small["state"] == "worse" and small["pairs_needed"] is None
    assert "medium credibly better by more than the non-inferiority margin 5 pts" in rec.reason


def test_open_decision_says_what_is_missing_and_when() -> None:
    rec = review_skill(base(pairs=(pair("small", "medium", 3, 55, 2),)), RULES, NOW)
    assert rec.action == "keep"
    nxt = rec.evidence["next_test"]
    assert (nxt["tier"], nxt["direction"]) == ("small", "down")
    assert nxt["pairs_needed"] > 0 and nxt["weeks"] == pytest.approx(nxt["pairs_needed"] / 50)
    weeks = round(nxt["weeks"])
    assert rec.reason.endswith(
        f"next: shadow-test small (the skill may be over-served): about {nxt['pairs_needed']} more pairs, "
        f"about {weeks} weeks at the current rate"
    )


def test_a_critical_skill_uses_the_stricter_margin() -> None:
    rec = review_skill(base(critical=True), RULES, NOW)
    small = comparison(rec, "small")
    assert small["margin_points"] == 2.0 and rec.action == "keep" and small["state"] == "open"
    assert review_skill(base(critical=True, margin=0.3), RULES, NOW).evidence["margin_points"] == 2.0


def test_a_skills_own_margin() -> None:
    rec = review_skill(base(margin=0.03), RULES, NOW)
    assert comparison(rec, "small")["margin_points"] == 3.0


def test_blockers_savings_floor_missing_golden_set_and_verifiers() -> None:
    rec = review_skill(base(stats={"medium": stats(requests=200)}), RULES, NOW)  # saves 0.01 × 214.3
    assert rec.action == "keep" and comparison(rec, "small")["blocked_by"] == ["saving"]
    assert "saving $2.14/month < $5.00 floor" in rec.reason

    rec = review_skill(base(eval_pairs=()), RULES, NOW)
    assert comparison(rec, "small")["blocked_by"] == ["eval_missing"]
    assert (
        review_skill(base(eval_pairs=()), RULES.model_copy(update={"require_eval": False}), NOW).action
        == "downgrade"
    )

    worse_golden = golden("small", "medium", 20, 20, 0)  # the golden set says small is 50 points worse
    rec = review_skill(base(eval_pairs=(worse_golden,)), RULES, NOW)
    assert comparison(rec, "small")["blocked_by"] == ["eval_worse"]

    verify = {"medium": VerifyStats("medium", 290, 10), "small": VerifyStats("small", 240, 60)}
    rec = review_skill(base(verify=verify), RULES, NOW)
    assert comparison(rec, "small")["blocked_by"] == ["verify_worse"]
    assert "verified-pass rate on small 80% credibly below 96.7% on medium" in rec.reason
    assert rec.evidence["verify"]["small"] == {
        "passed": 240,
        "failed": 60,
        "rate": 0.8,
        "ci": [0.75107, 0.841344],
    }


# Upgrade and the thumbs alarm ---------------------------------------------------------------------


UP = pair("small", "medium", 60, 170, 10)  # medium +20.8 pts over 240 pairs


def on_small(**changes: object) -> SkillReviewInput:
    defaults: dict[str, object] = {
        "current_tier": "small",
        "stats": {"small": stats("small")},
        "pairs": (UP,),
        "eval_pairs": (),
    }
    return base(**{**defaults, **changes})


def num(x: float) -> str:
    """The review's number style: one decimal, no trailing ".0"."""
    return f"{round(x, 1) + 0.0:.1f}".removesuffix(".0")


def test_upgrade_without_any_thumbs() -> None:
    rec = review_skill(on_small(), RULES, NOW)
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("upgrade", "medium", 12.0)
    lo, hi = interval(UP.seq, RULES.alpha)
    assert rec.reason == (
        f"upgrade to medium: +20.8 pts [{num(lo * 100)}, {num(hi * 100)}] over 240 pairs (medium better 60, tie 170, "
        "small better 10), credibly above the superiority margin 5 pts for +$12.00/month"
    )


def test_no_wrong_upgrade_when_the_stronger_tier_is_no_better() -> None:
    rec = review_skill(on_small(pairs=(pair("small", "medium", 5, 230, 5),)), RULES, NOW)
    assert rec.action == "keep" and comparison(rec, "medium")["state"] == "not_better"
    assert rec.evidence["next_test"]["tier"] == "large"  # medium is decided; large is still open


def test_unhappy_users_shift_sampling_up_before_down() -> None:
    """On medium with the downgrade open too, credibly unhappy users send the budget to large."""
    data = base(stats={"medium": stats(feedback=25, up=12)}, pairs=(pair("small", "medium", 3, 50, 2),))
    nxt = next_test(data, RULES)
    assert (nxt.tier, nxt.direction) == ("large", "up")
    assert nxt.reason == "👍 48% [30–66.5%] n=25, credibly below the 80% target"
    assert next_test(base(pairs=(pair("small", "medium", 3, 50, 2),)), RULES).tier == "small"


def test_up_tests_the_strongest_open_tier_first_down_the_nearest() -> None:
    assert next_test(on_small(pairs=()), RULES).tier == "large"  # under-served by two rungs: one move
    assert (
        next_test(base(current_tier="large", stats={"large": stats("large")}, pairs=()), RULES).tier
        == "medium"
    )


def test_a_failing_verifier_shifts_sampling_up() -> None:
    data = base(verify={"medium": VerifyStats("medium", 60, 40)}, pairs=(pair("small", "medium", 3, 50, 2),))
    nxt = next_test(data, RULES)
    assert (nxt.tier, nxt.direction) == ("large", "up")
    assert nxt.reason == "verifiers fail 40% of 100 answers on medium, credibly above 10%"


def test_unhappy_users_and_a_stronger_tier_credibly_no_better_means_fix() -> None:
    data = on_small(
        stats={"small": stats("small", feedback=25, up=12)},
        pairs=(pair("small", "medium", 5, 230, 5), pair("small", "large", 5, 230, 5)),
    )
    rec = review_skill(data, RULES, NOW)
    assert rec.action == "fix" and rec.reason.startswith("fix the pack or prompt, not the tier: 👍 48%")


def test_unhappy_users_on_the_strongest_tier_means_fix_unless_a_cheaper_tier_is_as_good() -> None:
    data = base(
        current_tier="large",
        stats={"large": stats("large", feedback=25, up=12)},
        pairs=(pair("medium", "large", 3, 50, 2),),  # still open
        eval_pairs=(golden("medium", "large", 40, 0, 0),),
    )
    rec = review_skill(data, RULES, NOW)
    assert rec.action == "fix"
    assert rec.reason == (
        "fix the pack or prompt, not the tier: 👍 48% [30–66.5%] n=25, credibly below the 80% target; "
        f"no stronger tier this skill may use; next: shadow-test medium (the skill may be over-served): about "
        f"{rec.evidence['next_test']['pairs_needed']} more pairs, about "
        f"{round(rec.evidence['next_test']['pairs_needed'] / 50)} weeks at the current rate"
    )
    # medium credibly as good as large: users are as unhappy there, and it costs less.
    rec = review_skill(replace(data, pairs=(pair("medium", "large", 2, 236, 2),)), RULES, NOW)
    assert (rec.action, rec.target_tier) == ("downgrade", "medium")
    assert rec.reason.startswith(
        "👍 48% [30–66.5%] n=25, credibly below the 80% target; downgrade to medium: "
    )


def test_nothing_open_means_no_sampling() -> None:
    data = on_small(pairs=(pair("small", "medium", 5, 230, 5), pair("small", "large", 5, 230, 5)))
    nxt = next_test(data, RULES)
    assert nxt.tier is None and nxt.reason.startswith("every neighbouring decision is closed")


def test_golden_set_can_show_an_upgrade_case_by_case() -> None:
    rec = review_skill(on_small(pairs=(), eval_pairs=(golden("small", "medium", 60, 35, 0),)), RULES, NOW)
    assert (rec.action, rec.target_tier) == ("upgrade", "medium")
    assert "golden set 95 cases paired: +36.8 pts" in rec.reason


# The whole ladder ---------------------------------------------------------------------------------


def test_a_skill_over_served_by_two_rungs_goes_to_the_cheapest_safe_tier() -> None:
    data = base(
        current_tier="large",
        stats={"large": stats("large")},
        pairs=(pair("medium", "large", 2, 236, 2), pair("small", "large", 2, 236, 2)),
        eval_pairs=(golden("medium", "large", 40, 0, 0), golden("small", "large", 40, 0, 0)),
    )
    rec = review_skill(data, RULES, NOW)
    assert (rec.action, rec.target_tier, rec.monthly_delta_usd) == ("downgrade", "small", -57.0)
    assert [c["tier"] for c in rec.evidence["comparisons"]] == ["medium", "small"]  # nearest first


def test_an_under_served_skill_goes_where_the_gain_is_credibly_largest() -> None:
    data = on_small(pairs=(pair("small", "medium", 30, 200, 10), pair("small", "large", 100, 140, 0)))
    rec = review_skill(data, RULES, NOW)
    assert (rec.action, rec.target_tier) == ("upgrade", "large")


def test_sensitive_skills_only_compare_local_tiers() -> None:
    ladder = Ladder.of([("small", "local"), ("medium", "external"), ("large", "local")])
    data = on_small(ladder=ladder, sensitive=True, pairs=(pair("small", "large", 60, 170, 10), UP))
    comps = all_comparisons(data, RULES)
    assert [c.tier for c in comps] == ["large"]  # medium is external: never compared, never a target
    rec = review_skill(data, RULES, NOW)
    assert (rec.action, rec.target_tier) == ("upgrade", "large")
    assert next_test(replace(data, pairs=()), RULES).tier == "large"


# ROI in dollars -----------------------------------------------------------------------------------


def test_a_declared_value_prices_an_upgrade() -> None:
    """$0.50 a good answer × 1,200 requests a month: +20.8 pts ≈ +$125/month of value for +$12."""
    rec = review_skill(on_small(value_per_good_answer_usd=0.5), RULES, NOW)
    medium = comparison(rec, "medium")
    lo, hi = interval(UP.seq, RULES.alpha)
    assert medium["monthly_value_change_usd"] == pytest.approx([lo * 600, 0.208333 * 600, hi * 600], abs=1e-3)
    assert medium["margin_points"] == 2.0  # break-even: $12 / (1,200 × $0.50) = 2 points
    assert rec.action == "upgrade"
    assert f"≈ +$125.00/month of value [+${lo * 600:,.2f}, +${hi * 600:,.2f}] for +$12.00/month" in rec.reason


def test_a_declared_value_too_small_to_pay_for_the_upgrade() -> None:
    """$0.01 a good answer: break-even is $12 / (1,200 × $0.01) = 100 points: never worth it."""
    rec = review_skill(on_small(value_per_good_answer_usd=0.01), RULES, NOW)
    assert rec.action == "keep" and comparison(rec, "medium")["margin_points"] == 100.0


def test_a_declared_value_sets_the_downgrade_break_even() -> None:
    """$2 a good answer: saving $12 covers losing 12 / (1,200 × 2) = 0.5 points, not the 5-point margin."""
    rec = review_skill(base(value_per_good_answer_usd=2.0), RULES, NOW)
    small = comparison(rec, "small")
    assert small["margin_points"] == 0.5 and rec.action == "keep"
    # A critical skill keeps its quality margin whatever the value says.
    assert (
        comparison(review_skill(base(value_per_good_answer_usd=2.0, critical=True), RULES, NOW), "small")[
            "margin_points"
        ]
        == 2.0
    )


# No evidence, cooldown ----------------------------------------------------------------------------


def test_no_traffic_no_pairs_no_evals_never_divides_by_zero() -> None:
    rec = review_skill(base(stats={}, pairs=(), eval_pairs=(), cost_per_request={}), RULES, NOW)
    assert rec.action == "keep"
    assert rec.reason == (
        "no traffic in the window (28 days); next: shadow-test small (the skill may be over-served)"
    )
    rec = review_skill(base(pairs=(), eval_pairs=()), RULES, NOW)
    assert rec.action == "keep" and "small: no shadow pairs yet" in rec.reason
    assert rec.evidence["monthly_requests"] == 1200.0


def test_cooldown_holds_the_change_back() -> None:
    rec = review_skill(base(last_change_at=datetime(2026, 11, 1, tzinfo=UTC)), RULES, NOW)
    assert rec.action == "keep" and rec.target_tier is None
    assert rec.reason.startswith(
        "cooldown: last change 2026-11-01, next change allowed from 2026-11-29; would downgrade medium → small: "
    )
    assert review_skill(base(last_change_at=datetime(2026, 10, 1)), RULES, NOW).action == "downgrade"


def test_a_tier_off_the_ladder_keeps() -> None:
    rec = review_skill(base(current_tier="huge"), RULES, NOW)
    assert (rec.action, rec.reason) == (
        "keep",
        "current tier huge is not on the ladder (small → medium → large)",
    )


# Evidence from ledger rows ------------------------------------------------------------------------


def test_pairs_are_oriented_stronger_minus_cheaper_whichever_tier_was_primary() -> None:
    ladder = Ladder(LADDER)
    verdicts = [
        ("medium", "small", "win"),  # small (the candidate) better → −1
        ("medium", "small", "loss"),  # medium better → +1
        ("small", "medium", "win"),  # medium (the candidate) better → +1
        ("small", "medium", "tie"),
        ("small", "medium", "error"),  # counted, not scored
        ("medium", "large", "loss"),  # medium better than large → −1
        ("medium", "huge", "win"),  # off the ladder: skipped
    ]
    pairs = {(p.cheaper, p.stronger): p for p in pairs_from_verdicts(verdicts, ladder)}
    sm = pairs["small", "medium"]
    assert (sm.seq.n, sm.seq.total, sm.stronger_wins, sm.ties, sm.cheaper_wins, sm.errors) == (
        4,
        1.0,
        2,
        1,
        1,
        1,
    )
    ml = pairs["medium", "large"]
    assert (ml.seq.n, ml.seq.total, ml.cheaper_wins) == (1, -1.0, 1)


def test_golden_sets_pair_case_by_case() -> None:
    cases = {
        "small": {"a": (True, False), "b": (False, True), "c": (True, False), "z": (True, False)},
        "medium": {"a": (True, False), "b": (True, True), "c": (False, False)},
    }
    (ev,) = eval_pairs_from_cases(cases, Ladder(LADDER))
    assert (ev.cheaper, ev.stronger, ev.cases, ev.seq.total, ev.cheaper_critical_failures) == (
        "small",
        "medium",
        3,  # only the cases both ran
        0.0,  # b: medium only (+1), c: small only (−1)
        1,
    )
