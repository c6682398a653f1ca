"""Grouped SQL for the review and the digest. Nothing here loads request rows into Python:
every figure is an aggregate over indexed columns (created_at, skill, tier, purpose)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlmodel import col

from bot.core.evidence import EvalStats, ShadowStats, TierWindowStats
from bot.ledger import rollups
from bot.ledger.models import EvalResult, EvalRun, Feedback, RequestRow, ShadowPair
from bot.ledger.store import Ledger, percentile_query


def _user_window(since: datetime, until: datetime) -> Any:
    return and_(
        col(RequestRow.created_at) >= since,
        col(RequestRow.created_at) < until,
        col(RequestRow.purpose) == "user",
    )


PERCENTILE_DAYS = 7  # latency/cost percentiles describe the latest week of a window (they need raw rows)


def tier_window_stats(
    ledger: Ledger, since: datetime, until: datetime
) -> dict[tuple[str, str], TierWindowStats]:
    """Per skill and starting tier: additive figures from daily rollups (closed days) plus raw edges;
    percentiles over the window's latest week, from raw rows through the covering index."""
    recent = max(since, until - timedelta(days=PERCENTILE_DAYS))
    with ledger.session() as s:
        figures = rollups.window(s, since, until)
        latency = {
            g: v
            for g, *v in s.execute(
                _first_attempt_percentiles(col(RequestRow.latency_ms), recent, until, (0.5, 0.95))
            )
        }
        cost = {
            g: v
            for g, *v in s.execute(
                _first_attempt_percentiles(col(RequestRow.cost_usd), recent, until, (0.95,))
            )
        }
    out: dict[tuple[str, str], TierWindowStats] = {}
    for (skill, tier), f in figures.by_tier.items():
        k = f"{skill}\x1f{tier}"
        p50, p95 = latency.get(k, (0, 0))
        out[(skill, tier)] = TierWindowStats(
            skill=skill,
            tier=tier,
            requests=f.requests,
            cost_sum=f.cost_sum,
            cost_mean=f.cost_sum / f.requests if f.requests else 0.0,
            cost_p95=float(cost.get(k, (0.0,))[0] or 0.0),
            latency_p50_ms=float(p50 or 0),
            latency_p95_ms=float(p95 or 0),
            errors=f.errors,
            escalations=f.escalations,
            feedback=f.feedback,
            thumbs_up=f.thumbs_up,
            unknown_cost=f.unknown_cost,
        )
    return out


def _first_attempt_percentiles(
    column: Any, since: datetime, until: datetime, fractions: tuple[float, ...]
) -> Any:
    """Percentiles per request (first attempts), grouped by skill and tier (a first attempt's tier is
    the tier its request started on)."""
    where = and_(
        _user_window(since, until),
        col(RequestRow.tier).is_not(None),
        col(RequestRow.escalated_from).is_(None),
    )
    return percentile_query(column, col(RequestRow.skill) + "\x1f" + col(RequestRow.tier), where, fractions)


def shadow_stats(ledger: Ledger, since: datetime, until: datetime) -> list[ShadowStats]:
    stmt = (
        select(
            col(ShadowPair.skill),
            col(ShadowPair.primary_tier),
            col(ShadowPair.candidate_tier),
            func.count().filter(col(ShadowPair.verdict) == "win"),
            func.count().filter(col(ShadowPair.verdict) == "tie"),
            func.count().filter(col(ShadowPair.verdict) == "loss"),
            func.count().filter(col(ShadowPair.verdict) == "error"),
            func.avg(col(ShadowPair.candidate_cost_usd)).filter(col(ShadowPair.verdict) != "error"),
        )
        .where(col(ShadowPair.created_at) >= since, col(ShadowPair.created_at) < until)
        .group_by(col(ShadowPair.skill), col(ShadowPair.primary_tier), col(ShadowPair.candidate_tier))
    )
    with ledger.session() as s:
        return [
            ShadowStats(sk, p, c, int(w), int(t), int(lo), int(e), float(m) if m is not None else None)
            for sk, p, c, w, t, lo, e, m in s.execute(stmt)
        ]


def latest_evals(ledger: Ledger) -> dict[tuple[str, str], EvalStats]:
    newest = (
        select(col(EvalRun.skill), col(EvalRun.tier), func.max(col(EvalRun.created_at)).label("at"))
        .group_by(col(EvalRun.skill), col(EvalRun.tier))
        .subquery()
    )
    stmt = select(EvalRun).join(
        newest,
        and_(
            col(EvalRun.skill) == newest.c.skill,
            col(EvalRun.tier) == newest.c.tier,
            col(EvalRun.created_at) == newest.c.at,
        ),
    )
    with ledger.session() as s:
        return {
            (r.skill, r.tier): EvalStats(
                skill=r.skill,
                tier=r.tier,
                cases=r.cases,
                pass_rate=r.pass_rate,
                critical_failures=r.critical_failures,
                mean_cost_usd=r.total_cost_usd / r.cases if r.cases else 0.0,
                created_at=r.created_at,
            )
            for r in s.execute(stmt).scalars()
        }


@dataclass(frozen=True)
class WeekSkillFigures:
    skill: str
    requests: int
    users: int
    cost_usd: float
    thumbs_up: int
    thumbs_down: int
    unknown_cost: int
    errors: int


def week_skill_figures(ledger: Ledger, since: datetime, until: datetime) -> list[WeekSkillFigures]:
    users_stmt = (
        select(col(RequestRow.skill), func.count(func.distinct(col(RequestRow.user_id))))
        .where(_user_window(since, until))
        .group_by(col(RequestRow.skill))
    )
    with ledger.session() as s:
        per_skill = rollups.window(s, since, until).by_skill()
        users = {skill: int(n) for skill, n in s.execute(users_stmt)}
    rows = [
        WeekSkillFigures(
            skill,
            f.requests,
            users.get(skill, 0),
            f.cost_sum,
            f.thumbs_up,
            f.thumbs_down,
            f.unknown_cost,
            f.errors,
        )
        for skill, f in per_skill.items()
    ]
    return sorted(rows, key=lambda r: (-r.cost_usd, r.skill))


def side_spend(ledger: Ledger, since: datetime, until: datetime) -> dict[str, float]:
    """Shadow, judge and eval spend, kept apart from user spend."""
    stmt = (
        select(col(RequestRow.purpose), func.coalesce(func.sum(col(RequestRow.cost_usd)), 0.0))
        .where(
            col(RequestRow.created_at) >= since,
            col(RequestRow.created_at) < until,
            col(RequestRow.purpose) != "user",
        )
        .group_by(col(RequestRow.purpose))
    )
    with ledger.session() as s:
        return {purpose: float(total) for purpose, total in s.execute(stmt)}


def thumbs_down_comments(
    ledger: Ledger, since: datetime, until: datetime, limit: int = 20
) -> list[tuple[str, str]]:
    """(skill, comment) for this window's 👎 with a comment, newest first."""
    stmt = (
        select(col(RequestRow.skill), col(Feedback.comment))
        .join(RequestRow, col(Feedback.request_id) == col(RequestRow.id))
        .where(
            col(Feedback.updated_at) >= since,
            col(Feedback.updated_at) < until,
            col(Feedback.score) < 0,
            col(Feedback.comment).is_not(None),
            col(Feedback.comment) != "",
        )
        .order_by(col(Feedback.updated_at).desc())
        .limit(limit)
    )
    with ledger.session() as s:
        return [(skill, comment) for skill, comment in s.execute(stmt)]


def skill_spend(
    ledger: Ledger, skill: str, since: datetime, until: datetime, purposes: Sequence[str]
) -> float:
    stmt = select(func.coalesce(func.sum(col(RequestRow.cost_usd)), 0.0)).where(
        col(RequestRow.skill) == skill,
        col(RequestRow.created_at) >= since,
        col(RequestRow.created_at) < until,
        col(RequestRow.purpose).in_(purposes),
    )
    with ledger.session() as s:
        return float(s.execute(stmt).scalar_one())


def count_requests(
    ledger: Ledger,
    since: datetime,
    until: datetime,
    *,
    skill: str | None = None,
    user: str | None = None,
    purpose: str = "user",
) -> int:
    stmt = select(func.count()).where(
        col(RequestRow.created_at) >= since,
        col(RequestRow.created_at) < until,
        col(RequestRow.purpose) == purpose,
        col(RequestRow.escalated_from).is_(None),
    )
    if skill is not None:
        stmt = stmt.where(col(RequestRow.skill) == skill)
    if user is not None:
        stmt = stmt.where(col(RequestRow.user_id) == user)
    with ledger.session() as s:
        return int(s.execute(stmt).scalar_one())


def distinct_users(ledger: Ledger, since: datetime, until: datetime) -> int:
    stmt = select(func.count(func.distinct(col(RequestRow.user_id)))).where(_user_window(since, until))
    with ledger.session() as s:
        return int(s.execute(stmt).scalar_one())


def shadow_verdicts(
    ledger: Ledger, since: datetime, until: datetime, skill: str | None = None
) -> list[tuple[str, str, str, str]]:
    """(skill, primary tier, candidate tier, verdict) of every shadow pair in the window, oldest first:
    the paired evidence is a sequence (its confidence sequence replays them in arrival order)."""
    stmt = (
        select(
            col(ShadowPair.skill),
            col(ShadowPair.primary_tier),
            col(ShadowPair.candidate_tier),
            col(ShadowPair.verdict),
        )
        .where(col(ShadowPair.created_at) >= since, col(ShadowPair.created_at) < until)
        .order_by(col(ShadowPair.created_at), col(ShadowPair.id))
    )
    if skill is not None:
        stmt = stmt.where(col(ShadowPair.skill) == skill)
    with ledger.session() as s:
        return [(sk, p, c, v) for sk, p, c, v in s.execute(stmt)]


def latest_eval_cases(ledger: Ledger) -> dict[tuple[str, str], dict[str, tuple[bool, bool]]]:
    """Per (skill, tier): the newest eval run's cases as case id → (passed, critical)."""
    newest = (
        select(col(EvalRun.skill), col(EvalRun.tier), func.max(col(EvalRun.created_at)).label("at"))
        .group_by(col(EvalRun.skill), col(EvalRun.tier))
        .subquery()
    )
    stmt = (
        select(
            col(EvalRun.skill),
            col(EvalRun.tier),
            col(EvalResult.case_id),
            col(EvalResult.passed),
            col(EvalResult.critical),
        )
        .join(
            newest,
            and_(
                col(EvalRun.skill) == newest.c.skill,
                col(EvalRun.tier) == newest.c.tier,
                col(EvalRun.created_at) == newest.c.at,
            ),
        )
        .join(EvalResult, col(EvalResult.run_id) == col(EvalRun.id))
    )
    out: dict[tuple[str, str], dict[str, tuple[bool, bool]]] = {}
    with ledger.session() as s:
        for skill, tier, case, passed, critical in s.execute(stmt):
            out.setdefault((skill, tier), {})[case] = (bool(passed), bool(critical))
    return out


def verify_counts(ledger: Ledger, since: datetime, until: datetime) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (skill, tier): verifier outcomes (passed, failed) of user and shadow answers in the window.
    NULL (the skill has no verifiers) and not_run are no evidence."""
    stmt = (
        select(
            col(RequestRow.skill),
            col(RequestRow.tier),
            func.count().filter(col(RequestRow.verify_status) == "passed"),
            func.count().filter(col(RequestRow.verify_status) == "failed"),
        )
        .where(
            col(RequestRow.created_at) >= since,
            col(RequestRow.created_at) < until,
            col(RequestRow.purpose).in_(("user", "shadow")),
            col(RequestRow.tier).is_not(None),
            col(RequestRow.verify_status).in_(("passed", "failed")),
        )
        .group_by(col(RequestRow.skill), col(RequestRow.tier))
    )
    with ledger.session() as s:
        return {(sk, t): (int(p), int(f)) for sk, t, p, f in s.execute(stmt)}


@dataclass(frozen=True)
class TtftFigures:
    """Time to first token per skill and tier: the model's (from the call's start) and the first text a
    user could see (from the request's receipt), p50/p95 in ms; None where nothing was measured."""

    skill: str
    tier: str
    model_p50_ms: float | None
    model_p95_ms: float | None
    visible_p50_ms: float | None
    visible_p95_ms: float | None


def ttft_figures(ledger: Ledger, since: datetime, until: datetime) -> list[TtftFigures]:
    """p50/p95 of `ttft_ms` and `visible_ttft_ms` over user traffic, per skill and tier (grouped SQL)."""
    group = col(RequestRow.skill) + "\x1f" + col(RequestRow.tier)
    window = and_(_user_window(since, until), col(RequestRow.tier).is_not(None))
    model = percentile_query(
        col(RequestRow.ttft_ms), group, and_(window, col(RequestRow.ttft_ms).is_not(None)), (0.5, 0.95)
    )
    visible = percentile_query(
        col(RequestRow.visible_ttft_ms),
        group,
        and_(window, col(RequestRow.visible_ttft_ms).is_not(None)),
        (0.5, 0.95),
    )
    with ledger.session() as s:
        by_model = {g: (p50, p95) for g, p50, p95 in s.execute(model)}
        by_visible = {g: (p50, p95) for g, p50, p95 in s.execute(visible)}
    out = []
    for key in sorted(set(by_model) | set(by_visible)):
        skill, tier = key.split("\x1f", 1)
        m50, m95 = by_model.get(key, (None, None))
        v50, v95 = by_visible.get(key, (None, None))
        out.append(TtftFigures(skill, tier, m50, m95, v50, v95))
    return out


def ttft_line(figures: Sequence[TtftFigures]) -> str:
    """One line for the digest: first visible text (else the model's first token), p50/p95 in ms."""

    def pair(low: float | None, high: float | None) -> str:
        return f"{low:,.0f}/{high:,.0f} ms"

    parts = []
    for f in figures:
        if f.visible_p50_ms is not None and f.visible_p95_ms is not None:
            parts.append(f"{f.skill} on {f.tier} {pair(f.visible_p50_ms, f.visible_p95_ms)}")
        elif f.model_p50_ms is not None and f.model_p95_ms is not None:
            parts.append(f"{f.skill} on {f.tier} {pair(f.model_p50_ms, f.model_p95_ms)} (model)")
    return "Time to first text, p50/p95: " + "; ".join(parts) + "."
