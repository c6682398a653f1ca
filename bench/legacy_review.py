"""v1's tier review rule, frozen here for comparison ONLY (bench/replay_paired.py runs it beside the
new rule in bot/core/review.py). Not product code: nothing in bot/ imports it. It is today's rule as of
migration 0004, verbatim, except that it carries its own copy of v1's thresholds (`LegacyRules`).

The tier review: one recommendation per skill from the window's evidence.

Pure functions over `bot.core.evidence` dataclasses — no database, no Slack, no model — so every rule
is unit-tested with hand-built inputs. Shadow pairs and evals carry most of the evidence; thumbs
are sparse, so they act as an alarm (upgrade / fix), never as a reason to go cheaper.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.core.evidence import (
    Action,
    EvalStats,
    ShadowStats,
    SkillReviewInput,
    TierRecommendation,
    TierWindowStats,
)
from bot.core.stats import monthly_projection, rate, wilson


@dataclass(frozen=True)
class LegacyRules:
    """v1's thresholds (its `margin` is a loss-rate bound on shadow pairs, not a quality margin)."""

    min_shadow_pairs: int = 50
    margin: float = 0.15
    critical_margin: float = 0.05
    eval_points: float = 5.0
    require_eval: bool = True
    min_monthly_saving_usd: float = 5.0
    min_ratings: int = 10
    target_thumbs_up: float = 0.8
    cooldown_days: int = 28
    z: float = 1.96


ReviewRules = LegacyRules


def review_all(
    inputs: Iterable[SkillReviewInput], rules: ReviewRules, now: datetime
) -> list[TierRecommendation]:
    """One recommendation per input, in input order."""
    return [review_skill(data, rules, now) for data in inputs]


def format_recommendation(rec: TierRecommendation) -> str:
    """One line for the CLI or Slack: "label-email: downgrade medium → small — <reason>"."""
    move = f"{rec.current_tier} → {rec.target_tier}" if rec.target_tier else rec.current_tier
    return f"{rec.skill}: {rec.action} {move} — {rec.reason}"


def review_skill(data: SkillReviewInput, rules: ReviewRules, now: datetime) -> TierRecommendation:
    cur = data.current_tier
    st = data.stats.get(cur) or TierWindowStats(data.skill, cur, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0)
    on_ladder = cur in data.tiers
    i = data.tiers.index(cur) if on_ladder else -1
    lower = data.tiers[i - 1] if on_ladder and i > 0 else None
    upper = data.tiers[i + 1] if on_ladder and i + 1 < len(data.tiers) else None

    thumbs_low, thumbs_words = _thumbs(st, rules)
    down = _downgrade(data, rules, st, lower)
    up = _upgrade(data, rules, st, upper)
    evidence = _base_evidence(data, st, rules, lower, upper) | {
        "thumbs_below_target": thumbs_low,
        "downgrade": down.evidence,
        "upgrade": up.evidence,
        "projected_monthly_usd": None,
        "cooldown_until": None,
    }

    def rec(
        action: Action, target: str | None, reason: str, delta: float | None = None
    ) -> TierRecommendation:
        return TierRecommendation(
            skill=data.skill,
            action=action,
            current_tier=cur,
            target_tier=target,
            reason=reason,
            evidence=evidence,
            monthly_delta_usd=None if delta is None else _r(delta),
            auto_apply=data.auto_apply,
        )

    if not on_ladder:
        return rec("keep", None, f"current tier {cur} is not on the ladder ({' → '.join(data.tiers)})")
    if st.requests == 0:
        return rec("keep", None, f"no traffic in the window ({data.window_days} days)")

    # Precedence: upgrade > fix > downgrade > keep — unhappy users come first.
    action: Action
    if thumbs_low and up.ok:
        action, target, delta = "upgrade", upper, up.delta
        reason = f"{thumbs_words}; {up.words}"
    elif thumbs_low:
        return rec("fix", None, f"fix the pack or prompt, not the tier: {thumbs_words}; {up.words}")
    elif down.ok:
        action, target, delta = "downgrade", lower, down.delta
        reason = f"{thumbs_words}; {down.words}"
    else:
        return rec("keep", None, f"{thumbs_words}; {down.words}")

    evidence["projected_monthly_usd"] = None if delta is None else _r(delta)
    if data.last_change_at is not None:
        last = _aware(data.last_change_at)
        allowed = last + timedelta(days=rules.cooldown_days)
        evidence["cooldown_until"] = allowed.date().isoformat()
        if _aware(now) < allowed:
            # At most one change per cooldown: the evidence stays, the change waits.
            return rec(
                "keep",
                None,
                f"cooldown: last change {last.date().isoformat()}, next change allowed from "
                f"{allowed.date().isoformat()}; would {action} {cur} → {target}: {reason}",
            )
    return rec(action, target, reason, delta)


# The two directions ---------------------------------------------------------------------------


@dataclass
class _Verdict:
    ok: bool
    words: str
    delta: float | None = None  # projected monthly USD of the move (negative = saving)
    evidence: dict[str, Any] = field(default_factory=dict)


def _downgrade(
    data: SkillReviewInput, rules: ReviewRules, st: TierWindowStats, lower: str | None
) -> _Verdict:
    """Every rule must hold; each failing rule becomes one blocker, so the reason lists them all."""
    if lower is None:
        return _Verdict(False, "already on the cheapest tier", evidence={"candidate": None})
    cur = data.current_tier
    margin = data.margin if data.margin is not None else rules.margin
    if data.critical:  # a critical skill never gets a looser margin than critical_margin
        margin = min(margin, rules.critical_margin)
    blockers: dict[str, str] = {}
    good: list[str] = []

    sh = _shadow(data, cur, lower)
    n, losses = (sh.decided, sh.losses) if sh else (0, 0)
    lo, hi = wilson(losses, n, rules.z)
    pair_words = f"{losses} of {n} shadow pairs lost on {lower}: {_pct(rate(losses, n))} {_ci(lo, hi)}"
    if n < rules.min_shadow_pairs:
        blockers["pairs"] = f"{n} of {rules.min_shadow_pairs} shadow pairs needed"
    elif hi > margin:
        blockers["loss_ci"] = f"loss-rate upper bound {_pct(hi)} > margin {_pct(margin)} ({pair_words})"
    else:
        good.append(f"{pair_words} ≤ margin {_pct(margin)}")

    ev_c, ev_l = data.evals.get(cur), data.evals.get(lower)
    missing = [t for t, e in ((cur, ev_c), (lower, ev_l)) if e is None]
    if missing and (rules.require_eval or (data.critical and ev_l is None)):
        blockers["eval_missing"] = f"no eval run on {' or '.join(missing)}"
    if data.critical and ev_l is not None and ev_l.critical_failures:
        blockers["critical_eval"] = f"{ev_l.critical_failures} critical eval case(s) failed on {lower}"
    gap = None
    if ev_c and ev_l:
        gap = _r((ev_c.pass_rate - ev_l.pass_rate) * 100)  # rounded: 93% − 88% is 5 pts, not 5.0000001
        words = f"eval {_pct(ev_l.pass_rate)} on {lower} vs {_pct(ev_c.pass_rate)} on {cur}"
        if gap > rules.eval_points:
            blockers["eval_gap"] = f"{words} ({_num(gap)} pts > {_num(rules.eval_points)})"
        else:
            good.append(f"{words} ({_num(gap)} pts ≤ {_num(rules.eval_points)})")
    else:
        good.append("no eval comparison")

    cand_mean, source = _candidate_cost(st, sh, ev_c, ev_l)
    saving = None if cand_mean is None else _monthly(data, st, st.cost_mean - cand_mean)
    if saving is None:
        blockers["cost_unknown"] = (
            f"projected saving unknown (no cost for {lower} from shadow pairs or evals)"
        )
    elif saving < rules.min_monthly_saving_usd:
        blockers["saving"] = (
            f"projected saving {_usd(saving)}/month < {_usd(rules.min_monthly_saving_usd)} floor"
        )
    else:
        good.append(f"saves ~{_usd(saving)}/month ({st.requests} requests in {data.window_days} days)")

    evidence = {
        "candidate": lower,
        "margin": margin,
        "eval_gap_points": gap,
        "candidate_cost_mean": None if cand_mean is None else _r(cand_mean),
        "cost_source": source,
        "monthly_saving_usd": None if saving is None else _r(saving),
        "blocked_by": list(blockers),
    }
    if blockers:
        return _Verdict(False, f"no downgrade to {lower}: {'; '.join(blockers.values())}", None, evidence)
    return _Verdict(True, "; ".join(good), None if saving is None else -saving, evidence)


def _upgrade(data: SkillReviewInput, rules: ReviewRules, st: TierWindowStats, upper: str | None) -> _Verdict:
    """Does the stronger tier win? Either its shadow pairs or its eval, clearly."""
    if upper is None:
        return _Verdict(False, "already on the strongest tier", evidence={"candidate": None})
    cur = data.current_tier
    sh = _shadow(data, cur, upper)
    wins, losses = (sh.wins, sh.losses) if sh else (0, 0)
    lo, hi = wilson(wins, wins + losses, rules.z)
    shadow_words = (
        f"{upper} wins {wins} of {wins + losses} decided shadow pairs: {_pct(rate(wins, wins + losses))} "
        f"{_ci(lo, hi)}, lower bound {_pct(lo)}"
        if wins + losses
        else f"no decided shadow pairs on {upper}"
    )
    ev_c, ev_u = data.evals.get(cur), data.evals.get(upper)
    gain = _r((ev_u.pass_rate - ev_c.pass_rate) * 100) if ev_c and ev_u else None
    eval_words = (
        f"eval {_pct(ev_u.pass_rate)} on {upper} vs {_pct(ev_c.pass_rate)} on {cur}"
        if ev_c and ev_u
        else f"no eval run on {' or '.join(t for t, e in ((cur, ev_c), (upper, ev_u)) if e is None)}"
    )

    wins_by = None
    if wins > losses and lo > 0.5:
        wins_by, words = "shadow", f"{shadow_words} > 50%"
    elif gain is not None and gain >= rules.eval_points:
        wins_by, words = "eval", f"{eval_words} (+{_num(gain)} pts ≥ {_num(rules.eval_points)})"
    else:
        eval_part = (
            eval_words if gain is None else f"{eval_words} ({_num(gain)} pts < {_num(rules.eval_points)})"
        )
        shadow_part = f"{shadow_words} ≤ 50%" if wins + losses else shadow_words
        words = f"{upper} does not win: {shadow_part}; {eval_part}"

    cand_mean, source = _candidate_cost(st, sh, ev_c, ev_u)
    extra = None if cand_mean is None else _monthly(data, st, cand_mean - st.cost_mean)
    if wins_by:
        if extra is None:
            words += f"; extra cost unknown (no cost for {upper} from shadow pairs or evals)"
        elif extra >= 0:
            words += f"; costs ~{_usd(extra)}/month more"
        else:
            words += f"; and saves ~{_usd(-extra)}/month"
    evidence = {
        "candidate": upper,
        "wins_by": wins_by,
        "eval_gain_points": gain,
        "candidate_cost_mean": None if cand_mean is None else _r(cand_mean),
        "cost_source": source,
        "monthly_extra_usd": None if extra is None else _r(extra),
    }
    return _Verdict(wins_by is not None, words, extra, evidence)


# Evidence helpers -----------------------------------------------------------------------------


def _thumbs(st: TierWindowStats, rules: ReviewRules) -> tuple[bool, str]:
    """(credibly below target?, words). Only the interval's upper bound below target counts."""
    n = st.feedback
    if n == 0:
        return False, "no 👍/👎 ratings"
    lo, hi = wilson(st.thumbs_up, n, rules.z)
    words = f"👍 {_pct(rate(st.thumbs_up, n))} {_ci(lo, hi)} n={n}"
    if n < rules.min_ratings:
        return False, f"{words}, too few ratings to judge ({rules.min_ratings} needed)"
    if hi < rules.target_thumbs_up:
        return True, f"{words}, credibly below the {_pct(rules.target_thumbs_up)} target"
    return False, f"{words}, not credibly below the {_pct(rules.target_thumbs_up)} target"


def _shadow(data: SkillReviewInput, primary: str, candidate: str | None) -> ShadowStats | None:
    return next(
        (s for s in data.shadows if s.primary_tier == primary and s.candidate_tier == candidate), None
    )


def _candidate_cost(
    st: TierWindowStats, sh: ShadowStats | None, ev_cur: EvalStats | None, ev_cand: EvalStats | None
) -> tuple[float | None, str | None]:
    """Candidate mean cost per request: measured on shadow pairs, else scaled by the evals' cost ratio."""
    if sh is not None and sh.candidate_cost_mean is not None:
        return sh.candidate_cost_mean, "shadow"
    if ev_cur and ev_cand and ev_cur.mean_cost_usd > 0:
        return st.cost_mean * ev_cand.mean_cost_usd / ev_cur.mean_cost_usd, "eval"
    return None, None


def _monthly(data: SkillReviewInput, st: TierWindowStats, per_request: float) -> float:
    return monthly_projection(per_request * st.requests, data.window_days)


def _base_evidence(
    data: SkillReviewInput, st: TierWindowStats, rules: ReviewRules, lower: str | None, upper: str | None
) -> dict[str, Any]:
    lo, hi = wilson(st.thumbs_up, st.feedback, rules.z)
    tiers = (data.current_tier, lower, upper)
    return {
        "tier": data.current_tier,
        "window_days": data.window_days,
        "requests": st.requests,
        "cost_sum": _r(st.cost_sum),
        "cost_mean": _r(st.cost_mean),
        "cost_p95": _r(st.cost_p95),
        "monthly_cost_usd": _r(monthly_projection(st.cost_sum, data.window_days)),
        "unknown_cost": st.unknown_cost,
        "latency_p50_ms": _r(st.latency_p50_ms),
        "latency_p95_ms": _r(st.latency_p95_ms),
        "error_rate": _r(rate(st.errors, st.requests)),
        "escalation_rate": _r(rate(st.escalations, st.requests)),
        "feedback": st.feedback,
        "thumbs_up": st.thumbs_up,
        "thumbs_up_rate": _r(rate(st.thumbs_up, st.feedback)) if st.feedback else None,
        "thumbs_ci": [_r(lo), _r(hi)],
        "shadow": _shadow_evidence(_shadow(data, data.current_tier, lower), rules),
        "shadow_up": _shadow_evidence(_shadow(data, data.current_tier, upper), rules),
        "eval": {t: _eval_evidence(data.evals[t]) for t in tiers if t in data.evals},
    }


def _shadow_evidence(sh: ShadowStats | None, rules: ReviewRules) -> dict[str, Any] | None:
    if sh is None:
        return None
    loss_ci = wilson(sh.losses, sh.decided, rules.z)
    win_ci = wilson(sh.wins, sh.wins + sh.losses, rules.z)
    return {
        "candidate": sh.candidate_tier,
        "n": sh.decided,
        "wins": sh.wins,
        "ties": sh.ties,
        "losses": sh.losses,
        "errors": sh.errors,
        "loss_rate": _r(rate(sh.losses, sh.decided)),
        "loss_ci": [_r(loss_ci[0]), _r(loss_ci[1])],
        "win_rate": _r(rate(sh.wins, sh.wins + sh.losses)),  # ties excluded
        "win_ci": [_r(win_ci[0]), _r(win_ci[1])],
        "candidate_cost_mean": None if sh.candidate_cost_mean is None else _r(sh.candidate_cost_mean),
    }


def _eval_evidence(ev: EvalStats) -> dict[str, Any]:
    return {
        "cases": ev.cases,
        "pass_rate": _r(ev.pass_rate),
        "critical_failures": ev.critical_failures,
        "mean_cost_usd": _r(ev.mean_cost_usd),
        "created_at": ev.created_at.isoformat(),
    }


# Formatting -----------------------------------------------------------------------------------


def _r(x: float) -> float:
    """Evidence floats at 6 d.p.: exact enough for USD per request, stable to compare and diff."""
    return round(float(x), 6) + 0.0  # + 0.0: never report -0.0


def _num(x: float) -> str:
    return f"{round(x, 1) + 0.0:.1f}".removesuffix(".0")  # + 0.0 turns -0.0 into 0.0


def _pct(x: float) -> str:
    return f"{_num(x * 100)}%"


def _ci(lo: float, hi: float) -> str:
    return f"[{_num(lo * 100)}–{_pct(hi)}]"


def _usd(x: float) -> str:
    return f"${x:.2f}"


def _aware(dt: datetime) -> datetime:
    """Naive datetimes are UTC (the ledger stores UTC), so mixed inputs still compare."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
