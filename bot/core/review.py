"""The tier review: one recommendation per skill from paired evidence over the whole ladder.

Pure functions over `bot.core.evidence` dataclasses (no database, no Slack, no model), so every rule is
unit-tested with hand-built inputs, and the replay benchmark drives exactly this code.

The rule, per skill, for every other tier the skill may use (the `Ladder` decides which):
- the evidence is the paired quality difference "stronger minus cheaper" from shadow pairs (one live
  request answered by both tiers), with its anytime-valid confidence sequence (`bot.core.confseq`), so
  looking every week at growing evidence stays honest;
- downgrade to a cheaper tier when the stronger tier's advantage is credibly below the
  non-inferiority margin (stricter for critical skills), and it saves at least the monthly floor;
  with a declared value of a good answer, when the value credibly lost is below the saving;
- upgrade to a stronger tier when its advantage is credibly above the superiority margin (or, with a
  declared value, when the value credibly gained beats the extra cost); case-by-case golden-set
  results can show it too;
- the two margins bound an indifference zone: a skill whose gap lies between them stays put, and as
  long as superiority >= non-inferiority the rule cannot flip a skill back and forth;
- thumbs are an alarm: credibly unhappy users shift shadow sampling upward, and if the stronger
  tiers are credibly no better, the advice is to fix the pack or prompt ("fix");
- verifier outcomes: a tier whose verified-pass rate is credibly below the current tier's is
  vetoed, and a current tier credibly below a stronger one's (or failing often) shifts sampling up.
When the evidence is not there yet, the review says what is missing and which tier it tests next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.config import ReviewSettings
from bot.core import confseq
from bot.core.evidence import (
    Action,
    EvalPairs,
    PairEvidence,
    SkillReviewInput,
    TierRecommendation,
    TierWindowStats,
    VerifyStats,
)
from bot.core.ladder import Ladder
from bot.core.stats import monthly_projection, rate, wilson

# Thumbs and verifier intervals: a fixed-level Wilson interval (an alarm, not a decision), so unlike the
# paired evidence's alpha it is not a setting.
WILSON_Z = 1.96

State = Literal["better", "not_better", "noninferior", "worse", "open", "no_pairs"]


def review_all(
    inputs: Iterable[SkillReviewInput], rules: ReviewSettings, now: datetime
) -> list[TierRecommendation]:
    """One recommendation per input, in input order."""
    return [review_skill(data, rules, now) for data in inputs]


# Comparing the current tier with one other tier -------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """The current tier against one other allowed tier; `advantage` = other minus current."""

    tier: str
    direction: Literal["up", "down"]
    n: int
    advantage: float  # mean paired difference, other minus current, in [-1, 1]
    ci: tuple[float, float]  # its confidence sequence at this look
    margin: float  # the threshold this direction is tested against (a quality difference)
    state: State
    ok: bool  # the move is recommended on this evidence
    words: str
    blockers: tuple[str, ...]
    monthly_cost_change: float | None  # USD, + = costs more
    monthly_value_change: tuple[float, float, float] | None  # (lo, mean, hi) USD when a value is declared
    pairs_needed: int | None  # more pairs, at the current rate of evidence, to close the decision

    def as_evidence(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "direction": self.direction,
            "pairs": self.n,
            "advantage_points": _r(self.advantage * 100),
            "ci_points": [_r(self.ci[0] * 100), _r(self.ci[1] * 100)],
            "margin_points": _r(self.margin * 100),
            "state": self.state,
            "ok": self.ok,
            "blocked_by": list(self.blockers),
            "monthly_cost_change_usd": None
            if self.monthly_cost_change is None
            else _r(self.monthly_cost_change),
            "monthly_value_change_usd": None
            if self.monthly_value_change is None
            else [_r(x) for x in self.monthly_value_change],
            "pairs_needed": self.pairs_needed,
        }


def ladder_of(data: SkillReviewInput) -> Ladder:
    return data.ladder if data.ladder is not None else Ladder(tuple(data.tiers))


def pair_for(data: SkillReviewInput, a: str, b: str) -> PairEvidence | None:
    return next((p for p in data.pairs if {p.cheaper, p.stronger} == {a, b}), None)


def eval_pair_for(data: SkillReviewInput, a: str, b: str) -> EvalPairs | None:
    return next((p for p in data.eval_pairs if {p.cheaper, p.stronger} == {a, b}), None)


def noninferiority_margin(data: SkillReviewInput, rules: ReviewSettings) -> float:
    margin = data.margin if data.margin is not None else rules.margin
    return min(margin, rules.critical_margin) if data.critical else margin


def monthly_requests(data: SkillReviewInput) -> float:
    """The skill's monthly volume from the window (all tiers: a change mid-window keeps its traffic)."""
    return monthly_projection(sum(s.requests for s in data.stats.values()), data.window_days)


def compare(data: SkillReviewInput, rules: ReviewSettings, other: str) -> Comparison:
    """Current tier vs `other` on the paired evidence, with the ROI in dollars where it is priced."""
    ladder = ladder_of(data)
    cur = data.current_tier
    up = ladder.is_stronger(other, cur)
    direction: Literal["up", "down"] = "up" if up else "down"
    pair = pair_for(data, cur, other)
    seq = pair.seq if pair is not None else confseq.PairedSeq()
    sign = 1.0 if up else -1.0  # pairs are stronger − cheaper; advantage is other − current
    lo, hi = confseq.interval(seq, rules.alpha)  # of stronger − cheaper
    advantage = sign * seq.mean
    ci = (lo, hi) if up else (-hi, -lo)
    a_side = rules.alpha / 2
    volume = monthly_requests(data)
    c_cur, c_other = data.cost_per_request.get(cur), data.cost_per_request.get(other)
    cost_change = None if c_cur is None or c_other is None else (c_other - c_cur) * volume
    value = data.value_per_good_answer_usd
    value_change = None
    if value is not None and seq.n:
        value_change = (ci[0] * volume * value, advantage * volume * value, ci[1] * volume * value)

    # The threshold on the gap (stronger − cheaper) this direction is tested against.
    if up:
        margin = rules.superiority_margin
        if value is not None and value > 0 and cost_change is not None and volume > 0:
            margin = max(0.0, cost_change / (volume * value))  # break-even: value gained = extra cost
    else:
        margin = noninferiority_margin(data, rules)
        if value is not None and value > 0 and cost_change is not None and volume > 0 and not data.critical:
            margin = max(0.0, -cost_change / (volume * value))  # break-even: value lost = saving

    blockers: dict[str, str] = {}
    eval_note = ""
    n_words = _pair_words(pair, cur, other)
    ci_words = f"{_pts(advantage, signed=True)} [{_num(ci[0] * 100)}, {_num(ci[1] * 100)}]"
    enough = seq.n >= rules.min_shadow_pairs
    if up:
        above = enough and confseq.rejects_below(seq, margin, a_side)
        below = enough and confseq.rejects_above(seq, margin, a_side)
        state: State = "no_pairs" if not seq.n else "better" if above else "not_better" if below else "open"
        ev = eval_pair_for(data, cur, other)
        eval_better = ev is not None and ev.seq.n > 0 and confseq.rejects_below(ev.seq, margin, a_side)
        if state != "better" and eval_better and ev is not None:
            state = "better"
            e_lo, e_hi = confseq.interval(ev.seq, rules.alpha)
            eval_note = (
                f"golden set {ev.cases} cases paired: {_pts(ev.seq.mean, signed=True)} "
                f"[{_num(e_lo * 100)}, {_num(e_hi * 100)}]"
            )
        ok = state == "better"
        threshold_words = f"superiority margin {_pts(margin)}" + (" (break-even)" if value else "")
    else:
        below = enough and confseq.rejects_above(seq, margin, a_side)
        above = enough and confseq.rejects_below(seq, margin, a_side)
        state = "no_pairs" if not seq.n else "noninferior" if below else "worse" if above else "open"
        threshold_words = f"non-inferiority margin {_pts(margin)}" + (
            " (break-even)" if value and not data.critical else ""
        )
        ev = eval_pair_for(data, cur, other)
        if ev is not None and confseq.rejects_below(ev.seq, noninferiority_margin(data, rules), a_side):
            blockers["eval_worse"] = (
                f"golden set credibly worse on {other}: {_pts(-ev.seq.mean, signed=True)} over {ev.cases} cases"
            )
        if ev is None and (rules.require_eval or data.critical):
            blockers["eval_missing"] = f"no paired golden-set run on {cur} and {other}"
        if ev is not None and data.critical and ev.cheaper_critical_failures:
            blockers["critical_eval"] = (
                f"{ev.cheaper_critical_failures} critical eval case(s) failed on {other}"
            )
        vc, vo = data.verify.get(cur), data.verify.get(other)
        if vc and vo and credibly_lower(vo, vc, WILSON_Z):
            blockers["verify_worse"] = (
                f"verified-pass rate on {other} {_pct(rate(vo.passed, vo.ran))} credibly below "
                f"{_pct(rate(vc.passed, vc.ran))} on {cur}"
            )
        if cost_change is None:
            blockers["cost_unknown"] = f"saving unknown (no cost known for {other})"
        elif -cost_change < rules.min_monthly_saving_usd:
            blockers["saving"] = (
                f"saving {_usd(-cost_change)}/month < {_usd(rules.min_monthly_saving_usd)} floor"
            )
        ok = state == "noninferior" and not blockers

    # "+7.8 pts [4.1, 11.5] over 240 pairs, credibly above … ≈ +$312.00/month of value […] for +$48.00/month"
    money = ""
    if value_change is not None:
        v_lo, v_mean, v_hi = (_usd_signed(x) for x in value_change)
        money += f" ≈ {v_mean}/month of value [{v_lo}, {v_hi}]"
    if cost_change is not None:
        money += f" for {_usd_signed(cost_change)}/month" if up else f", saves {_usd(-cost_change)}/month"
    if not seq.n:
        words = "no shadow pairs yet"
    elif not enough:
        words = (
            f"{ci_words} over {n_words}; {seq.n} of {rules.min_shadow_pairs} pairs needed before any decision"
        )
    else:
        verdict = {
            "better": f"credibly above the {threshold_words}",
            "not_better": f"credibly below the {threshold_words}: not worth it",
            "noninferior": f"advantage of {cur} credibly below the {threshold_words}",
            "worse": f"{cur} credibly better by more than the {threshold_words}",
            "open": f"not yet decided against the {threshold_words}",
            "no_pairs": "",
        }[state]
        words = f"{ci_words} over {n_words}, {verdict}{money}"
    if eval_note:
        words += f"; {eval_note}, credibly above the {threshold_words}{money}"
    if blockers:
        words += "; blocked: " + "; ".join(blockers.values())

    needed = None
    if state in ("open", "no_pairs"):
        if seq.n < rules.min_shadow_pairs:
            needed = rules.min_shadow_pairs - seq.n if seq.n else None
            if seq.n >= 2:
                more = confseq.pairs_needed(seq, margin, rules.alpha)
                needed = None if more is None else max(needed or 0, more)
        else:
            needed = confseq.pairs_needed(seq, margin, rules.alpha)
    return Comparison(
        tier=other,
        direction=direction,
        n=seq.n,
        advantage=advantage,
        ci=ci,
        margin=margin,
        state=state,
        ok=ok,
        words=words,
        blockers=tuple(blockers),
        monthly_cost_change=cost_change,
        monthly_value_change=value_change,
        pairs_needed=needed,
    )


def credibly_lower(a: VerifyStats, b: VerifyStats, z: float) -> bool:
    """Is a's verified-pass rate credibly below b's? (disjoint Wilson intervals: conservative)."""
    if not a.ran or not b.ran:
        return False
    return wilson(a.passed, a.ran, z)[1] < wilson(b.passed, b.ran, z)[0]


def verify_alarm(data: SkillReviewInput, rules: ReviewSettings) -> str | None:
    """Verifiers say the current tier falls short: failing credibly often, or credibly below a
    stronger allowed tier's rate."""
    cur = data.current_tier
    vc = data.verify.get(cur)
    if vc is None or not vc.ran:
        return None
    fail_lo = wilson(vc.failed, vc.ran, WILSON_Z)[0]
    if fail_lo > rules.verify_alarm_fail_rate:
        return (
            f"verifiers fail {_pct(rate(vc.failed, vc.ran))} of {vc.ran} answers on {cur}, credibly above "
            f"{_pct(rules.verify_alarm_fail_rate)}"
        )
    ladder = ladder_of(data)
    for t in ladder.above(cur, data.sensitive) if cur in ladder else []:
        vt = data.verify.get(t)
        if vt and credibly_lower(vc, vt, WILSON_Z):
            return (
                f"verified-pass rate on {cur} {_pct(rate(vc.passed, vc.ran))} credibly below "
                f"{_pct(rate(vt.passed, vt.ran))} on {t}"
            )
    return None


def alarm_of(data: SkillReviewInput, rules: ReviewSettings) -> str | None:
    """Users or verifiers say the current tier falls short (words), else None."""
    st = data.stats.get(data.current_tier)
    low, words = thumbs_alarm(st, rules) if st is not None else (False, "")
    return "; ".join(w for w in (words if low else None, verify_alarm(data, rules)) if w) or None


def thumbs_alarm(st: TierWindowStats, rules: ReviewSettings) -> tuple[bool, str]:
    """(credibly below target?, words). Only the interval's upper bound below target counts."""
    n = st.feedback
    if n == 0:
        return False, "no 👍/👎 ratings"
    lo, hi = wilson(st.thumbs_up, n, WILSON_Z)
    words = f"👍 {_pct(rate(st.thumbs_up, n))} [{_num(lo * 100)}–{_pct(hi)}] n={n}"
    if n < rules.min_ratings:
        return False, f"{words}, too few ratings to judge ({rules.min_ratings} needed)"
    if hi < rules.target_thumbs_up:
        return True, f"{words}, credibly below the {_pct(rules.target_thumbs_up)} target"
    return False, f"{words}, not credibly below the {_pct(rules.target_thumbs_up)} target"


# The open decision: what to sample next -----------------------------------------------------------


@dataclass(frozen=True)
class NextTest:
    """Where the shadow sampler should spend this skill's budget (None tier: nothing open)."""

    tier: str | None
    direction: Literal["up", "down"] | None
    reason: str
    pairs_needed: int | None = None
    weeks: float | None = None

    def as_evidence(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "direction": self.direction,
            "reason": self.reason,
            "pairs_needed": self.pairs_needed,
            "weeks": None if self.weeks is None else _r(self.weeks),
        }


def next_test(
    data: SkillReviewInput, rules: ReviewSettings, comparisons: list[Comparison] | None = None
) -> NextTest:
    """The sampler's allocation: down while the skill may be over-served, up when users or verifiers
    complain (or nothing cheaper is open), none when every neighbouring decision is closed.

    Down, the nearest cheaper tier whose decision is open goes first: it is the safest saving and the
    move the review would make next. Up, the strongest open tier goes first: if it is not credibly
    better, no tier is, and if it is, the skill gets there in one move instead of one rung per
    cooldown (a skill may be under-served by more than one rung)."""
    comps = comparisons if comparisons is not None else all_comparisons(data, rules)
    alarm = alarm_of(data, rules)
    open_down = [c for c in comps if c.direction == "down" and c.state in ("open", "no_pairs")]
    open_up = [c for c in comps if c.direction == "up" and c.state in ("open", "no_pairs")][::-1]
    order = (open_up, open_down) if alarm else (open_down, open_up)
    for group in order:
        if group:
            c = group[0]
            why = (
                alarm
                if alarm and c.direction == "up"
                else (
                    "the skill may be over-served" if c.direction == "down" else "a stronger tier may pay off"
                )
            )
            weeks = None
            if c.pairs_needed is not None and data.shadow_per_week > 0:
                weeks = c.pairs_needed / data.shadow_per_week
            return NextTest(c.tier, c.direction, why, c.pairs_needed, weeks)
    if not comps:
        return NextTest(None, None, "no other tier this skill may use: nothing to sample")
    return NextTest(None, None, "every neighbouring decision is closed: no shadow sampling needed")


def all_comparisons(data: SkillReviewInput, rules: ReviewSettings) -> list[Comparison]:
    """The current tier against every other tier this skill may use, nearest first."""
    ladder = ladder_of(data)
    if data.current_tier not in ladder:
        return []
    return [compare(data, rules, t) for t in ladder.others(data.current_tier, data.sensitive)]


# The decision ----------------------------------------------------------------------------------


def review_skill(data: SkillReviewInput, rules: ReviewSettings, now: datetime) -> TierRecommendation:
    cur = data.current_tier
    st = data.stats.get(cur) or TierWindowStats(data.skill, cur, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0)
    ladder = ladder_of(data)
    on_ladder = cur in ladder
    comps = all_comparisons(data, rules) if on_ladder else []
    thumbs_low, thumbs_words = thumbs_alarm(st, rules)
    v_alarm = verify_alarm(data, rules)
    alarm = alarm_of(data, rules)
    plan = next_test(data, rules, comps) if on_ladder else NextTest(None, None, "not on the ladder")
    evidence = _base_evidence(data, st, rules) | {
        "thumbs_below_target": thumbs_low,
        "verify_alarm": v_alarm,
        "comparisons": [c.as_evidence() for c in comps],
        "margin_points": _r(noninferiority_margin(data, rules) * 100),
        "superiority_margin_points": _r(rules.superiority_margin * 100),
        "value_per_good_answer_usd": data.value_per_good_answer_usd,
        "next_test": plan.as_evidence(),
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
        return rec("keep", None, f"current tier {cur} is not on the ladder ({' → '.join(ladder.tiers)})")
    if sum(s.requests for s in data.stats.values()) == 0:
        missing = _missing(plan, data.shadow_per_week > 0)
        return rec("keep", None, f"no traffic in the window ({data.window_days} days); {missing}")

    ups = [c for c in comps if c.direction == "up" and c.ok]
    downs = [c for c in comps if c.direction == "down" and c.ok]
    choice: Comparison | None = None
    action: Action = "keep"
    if ups:
        # The strongest credible gain (with a value: the largest credible net value); ties → cheaper.
        def gain(c: Comparison) -> float:
            if c.monthly_value_change is not None and c.monthly_cost_change is not None:
                return c.monthly_value_change[0] - c.monthly_cost_change
            return c.ci[0]

        choice, action = max(ups, key=lambda c: (gain(c), -ladder.index(c.tier))), "upgrade"
    elif downs:
        # A cheaper tier credibly within the margin goes ahead even when users are unhappy: it is as
        # good as this one, so the tier is not what they are unhappy about (the alarm stays in the words).
        choice, action = min(downs, key=lambda c: ladder.index(c.tier)), "downgrade"  # the cheapest safe
    elif thumbs_low and all(c.state == "not_better" for c in comps if c.direction == "up"):
        # Users are credibly unhappy and no stronger tier is credibly better (or there is none): the
        # tier is not the problem.
        closed = [f"{c.tier}: {c.words}" for c in comps if c.direction == "up"]
        words = "; ".join(closed) or "no stronger tier this skill may use"
        if plan.tier is not None:  # a cheaper tier may still be as good: say what is being tested
            words += f"; {_missing(plan, data.shadow_per_week > 0)}"
        return rec("fix", None, f"fix the pack or prompt, not the tier: {thumbs_words}; {words}")

    if choice is None:
        parts = [f"{c.tier}: {c.words}" for c in comps]
        parts.append(_missing(plan, data.shadow_per_week > 0))
        head = alarm if alarm else thumbs_words
        return rec("keep", None, "; ".join([head, *parts]))

    delta = choice.monthly_cost_change
    reason = f"{action} to {choice.tier}: {choice.words}"
    if alarm:
        reason = f"{alarm}; {reason}"
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
                f"{allowed.date().isoformat()}; would {action} {cur} → {choice.tier}: {reason}",
            )
    return rec(action, choice.tier, reason, delta)


def _missing(plan: NextTest, shadow_on: bool = True) -> str:
    if plan.tier is None:
        return plan.reason
    need = ""
    if plan.pairs_needed is not None:
        need = f": about {plan.pairs_needed} more pairs"
        if plan.weeks is not None:
            need += f", {_weeks(plan.weeks)} at the current rate"
    if plan.weeks is None and plan.pairs_needed is not None and not shadow_on:
        need += " (shadow sampling is off for this skill: set its shadow_rate)"
    return f"next: shadow-test {plan.tier} ({plan.reason}){need}"


def _weeks(w: float) -> str:
    if w <= 1:
        return "about 1 week"
    return f"about {round(w)} weeks" if w < 52 else "more than a year"


def _pair_words(pair: PairEvidence | None, cur: str, other: str) -> str:
    if pair is None:
        return "0 pairs"
    ours = pair.cheaper_wins if pair.cheaper == cur else pair.stronger_wins
    theirs = pair.stronger_wins if pair.cheaper == cur else pair.cheaper_wins
    words = f"{pair.seq.n} pairs ({other} better {theirs}, tie {pair.ties}, {cur} better {ours}"
    return words + (f", {pair.errors} errors)" if pair.errors else ")")


def _base_evidence(data: SkillReviewInput, st: TierWindowStats, rules: ReviewSettings) -> dict[str, Any]:
    lo, hi = wilson(st.thumbs_up, st.feedback, WILSON_Z)
    verify = {}
    for tier, v in sorted(data.verify.items()):
        v_lo, v_hi = wilson(v.passed, v.ran, WILSON_Z)
        verify[tier] = {
            "passed": v.passed,
            "failed": v.failed,
            "rate": _r(rate(v.passed, v.ran)) if v.ran else None,
            "ci": [_r(v_lo), _r(v_hi)],
        }
    return {
        "tier": data.current_tier,
        "window_days": data.window_days,
        "requests": st.requests,
        "cost_sum": _r(st.cost_sum),
        "cost_mean": _r(st.cost_mean),
        "cost_p95": _r(st.cost_p95),
        "monthly_cost_usd": _r(monthly_projection(st.cost_sum, data.window_days)),
        "monthly_requests": _r(monthly_requests(data)),
        "unknown_cost": st.unknown_cost,
        "latency_p50_ms": _r(st.latency_p50_ms),
        "latency_p95_ms": _r(st.latency_p95_ms),
        "error_rate": _r(rate(st.errors, st.requests)),
        "escalation_rate": _r(rate(st.escalations, st.requests)),
        "feedback": st.feedback,
        "thumbs_up": st.thumbs_up,
        "thumbs_up_rate": _r(rate(st.thumbs_up, st.feedback)) if st.feedback else None,
        "thumbs_ci": [_r(lo), _r(hi)],
        "verify": verify,
        "eval": {
            t: {
                "cases": e.cases,
                "pass_rate": _r(e.pass_rate),
                "critical_failures": e.critical_failures,
                "mean_cost_usd": _r(e.mean_cost_usd),
                "created_at": e.created_at.isoformat(),
            }
            for t, e in sorted(data.evals.items())
        },
    }


# Formatting -----------------------------------------------------------------------------------


def _r(x: float) -> float:
    """Evidence floats at 6 d.p.: exact enough for USD per request, stable to compare and diff."""
    return round(float(x), 6) + 0.0  # + 0.0: never report -0.0


def _num(x: float) -> str:
    return f"{round(x, 1) + 0.0:.1f}".removesuffix(".0")  # + 0.0 turns -0.0 into 0.0


def _pct(x: float) -> str:
    return f"{_num(x * 100)}%"


def _pts(x: float, signed: bool = False) -> str:
    """A quality difference in points: 0.078 → "7.8 pts" (signed: "+7.8 pts")."""
    value = round(x * 100, 1) + 0.0
    text = f"{value:+.1f}" if signed else f"{value:.1f}"
    return f"{text.replace('.0', '') if text.endswith('.0') else text} pts"


def _usd(x: float) -> str:
    return f"${x:,.2f}"


def _usd_signed(x: float) -> str:
    return f"{'+' if x >= 0 else '−'}${abs(x):,.2f}"


def _aware(dt: datetime) -> datetime:
    """Naive datetimes are UTC (the ledger stores UTC), so mixed inputs still compare."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


# Evidence from ledger rows (pure, so the ledger path and the benchmark build the same thing) ------


def pairs_from_verdicts(verdicts: Iterable[tuple[str, str, str]], ladder: Ladder) -> tuple[PairEvidence, ...]:
    """(primary tier, candidate tier, verdict from the candidate's side), oldest first → paired evidence
    per tier pair, oriented stronger minus cheaper whichever tier was primary. Errors are counted,
    not scored (a failed call says nothing about quality); tiers off the ladder are skipped."""
    acc: dict[tuple[str, str], list[Any]] = {}
    for primary, candidate, verdict in verdicts:
        if primary not in ladder or candidate not in ladder or primary == candidate:
            continue
        up = ladder.is_stronger(candidate, primary)
        key = (primary, candidate) if up else (candidate, primary)
        state = acc.setdefault(key, [confseq.PairedSeq(), 0, 0, 0, 0])
        if verdict == "error":
            state[4] += 1
            continue
        cand_side = {"win": 1, "tie": 0, "loss": -1}.get(verdict)
        if cand_side is None:
            continue
        d = cand_side if up else -cand_side
        state[0] = state[0].add(float(d))
        state[1 if d > 0 else 3 if d < 0 else 2] += 1
    return tuple(
        PairEvidence(cheaper, stronger, seq, sw, ties, cw, errors)
        for (cheaper, stronger), (seq, sw, ties, cw, errors) in acc.items()
    )


def eval_pairs_from_cases(
    cases: dict[str, dict[str, tuple[bool, bool]]], ladder: Ladder
) -> tuple[EvalPairs, ...]:
    """Latest golden-set cases per tier (case id → (passed, critical)) → case-by-case pairs for every
    two tiers that ran the same cases."""
    tiers = [t for t in ladder.tiers if t in cases]
    out = []
    for i, cheaper in enumerate(tiers):
        for stronger in tiers[i + 1 :]:
            shared = sorted(set(cases[cheaper]) & set(cases[stronger]))
            if not shared:
                continue
            seq = confseq.PairedSeq().extend(
                float(cases[stronger][c][0]) - float(cases[cheaper][c][0]) for c in shared
            )
            critical = sum(1 for c in shared if cases[cheaper][c][1] and not cases[cheaper][c][0])
            out.append(EvalPairs(cheaper, stronger, seq, len(shared), critical))
    return tuple(out)
