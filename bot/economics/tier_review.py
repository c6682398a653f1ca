"""The tier review at the edges: gather evidence from the ledger, run the pure review, keep the
recommendations, and apply or dismiss them (Apply refuses stale recommendations)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import col

from bot.core.evidence import (
    EvalStats,
    ShadowStats,
    SkillReviewInput,
    TierRecommendation,
    TierWindowStats,
    VerifyStats,
)
from bot.core.periods import days_before
from bot.core.rec_format import tier_move
from bot.economics import skill_values
from bot.economics.tiers import TierChangeError, set_tier
from bot.ledger import queries
from bot.ledger.models import Recommendation, utcnow

if TYPE_CHECKING:
    from bot.core.review import NextTest
    from bot.economics.context import EconomicsContext

log = logging.getLogger(__name__)


class RecommendationError(ValueError):
    pass


def gather(ctx: EconomicsContext, until: datetime, only: str | None = None) -> list[SkillReviewInput]:
    """Each skill's evidence: the window's traffic and thumbs, paired shadow outcomes since the
    evidence horizon (in arrival order), the latest golden-set cases per tier, verifier counts."""
    from bot.core.review import eval_pairs_from_cases, pairs_from_verdicts

    review_conf = ctx.settings.review
    days = review_conf.window_days
    since = days_before(until, days)
    horizon = days_before(until, review_conf.evidence_days)
    stats = queries.tier_window_stats(ctx.ledger, since, until)
    shadows = queries.shadow_stats(ctx.ledger, since, until)
    evals = queries.latest_evals(ctx.ledger)
    verdicts = queries.shadow_verdicts(ctx.ledger, horizon, until, skill=only)
    cases = queries.latest_eval_cases(ctx.ledger)
    verify = queries.verify_counts(ctx.ledger, since, until)
    values = skill_values.overrides(ctx.ledger)
    inputs = []
    for skill in ctx.registry:
        if only is not None and skill.name != only:
            continue
        conf = ctx.settings.skill_settings(skill.name)
        current, _ = ctx.configured_tier(skill)
        skill_stats = {t: s for (name, t), s in stats.items() if name == skill.name}
        skill_shadows = tuple(s for s in shadows if s.skill == skill.name)
        skill_evals = {t: e for (name, t), e in evals.items() if name == skill.name}
        # The sampler's pace: its rate on last week's traffic, within the weekly cap.
        weekly_requests = queries.count_requests(ctx.ledger, days_before(until, 7), until, skill=skill.name)
        inputs.append(
            SkillReviewInput(
                skill=skill.name,
                current_tier=current,
                tiers=tuple(ctx.tiers),
                window_days=days,
                stats=skill_stats,
                shadows=skill_shadows,
                evals=skill_evals,
                critical=conf.critical,
                margin=conf.margin,
                auto_apply=conf.auto_apply,
                last_change_at=ctx.ledger.last_assignment_at(skill.name),
                ladder=ctx.ladder,
                sensitive=ctx.is_sensitive(skill),
                pairs=pairs_from_verdicts(
                    ((p, c, v) for sk, p, c, v in verdicts if sk == skill.name), ctx.ladder
                ),
                eval_pairs=eval_pairs_from_cases(
                    {t: c for (name, t), c in cases.items() if name == skill.name}, ctx.ladder
                ),
                verify={
                    t: VerifyStats(t, p, f) for (name, t), (p, f) in verify.items() if name == skill.name
                },
                cost_per_request=tier_costs(ctx.tiers, current, skill_stats, skill_shadows, skill_evals),
                value_per_good_answer_usd=skill_values.effective(ctx, skill.name, values),
                shadow_per_week=min(float(conf.shadow_weekly_max_calls), conf.shadow_rate * weekly_requests),
            )
        )
    return inputs


def tier_costs(
    tiers: list[str],
    current: str,
    stats: dict[str, TierWindowStats],
    shadows: tuple[ShadowStats, ...],
    evals: dict[str, EvalStats],
) -> dict[str, float]:
    """Mean USD per request on each tier: measured on user traffic, else on shadow calls, else the
    golden set's cost ratio to the current tier applied to the current tier's live cost."""
    out: dict[str, float] = {t: s.cost_mean for t, s in stats.items() if s.requests}
    for sh in shadows:
        if sh.candidate_tier not in out and sh.candidate_cost_mean is not None:
            out[sh.candidate_tier] = sh.candidate_cost_mean
    base, ev_cur = out.get(current), evals.get(current)
    for t in tiers:
        ev = evals.get(t)
        if (
            t not in out
            and ev is not None
            and base is not None
            and ev_cur is not None
            and ev_cur.mean_cost_usd > 0
        ):
            out[t] = base * ev.mean_cost_usd / ev_cur.mean_cost_usd
    return out


def review(ctx: EconomicsContext, until: datetime | None = None) -> list[TierRecommendation]:
    from bot.core.review import review_all

    now = until or utcnow()
    return review_all(gather(ctx, now), ctx.settings.review, now)


def next_test_for(ctx: EconomicsContext, skill: str, now: datetime) -> NextTest:
    """Where this skill's shadow budget should go now (the review's open decision)."""
    from bot.core.review import next_test

    inputs = gather(ctx, now, only=skill)
    if not inputs:
        from bot.core.review import NextTest

        return NextTest(None, None, f"unknown skill {skill}")
    return next_test(inputs[0], ctx.settings.review)


def store(ctx: EconomicsContext, recs: list[TierRecommendation], period: str) -> list[Recommendation]:
    """Keep this period's recommendations (superseding older open ones for the same skill)."""
    rows = []
    with ctx.ledger.session() as s:
        for old in s.execute(select(Recommendation).where(col(Recommendation.status) == "open")).scalars():
            old.status = "superseded"
            s.add(old)
        for rec in recs:
            row = Recommendation(
                period=period,
                skill=rec.skill,
                action=rec.action,
                current_tier=rec.current_tier,
                target_tier=rec.target_tier,
                reason=rec.reason,
                evidence=json.dumps(rec.evidence, default=str),
                status="open" if rec.action in ("downgrade", "upgrade") else "info",
            )
            s.add(row)
            rows.append(row)
        s.commit()
    return rows


def latest(ctx: EconomicsContext) -> list[Recommendation]:
    """The newest stored recommendation per skill."""
    with ctx.ledger.session() as s:
        rows = list(
            s.execute(select(Recommendation).order_by(col(Recommendation.id).desc()).limit(500)).scalars()
        )
    seen: dict[str, Recommendation] = {}
    for row in rows:
        seen.setdefault(row.skill, row)
    return sorted(seen.values(), key=lambda r: r.skill)


def apply(ctx: EconomicsContext, rec_id: int, user: str, source: str = "slack") -> Recommendation:
    """Apply a recommendation: refused when it is not open or stale (the tier changed since)."""
    with ctx.ledger.session() as s:
        row = s.get(Recommendation, rec_id)
        if row is None:
            raise RecommendationError(f"no recommendation #{rec_id}")
        if row.status != "open" or not row.target_tier:
            raise RecommendationError(f"recommendation #{rec_id} is {row.status}; nothing to apply")
        try:
            set_tier(
                ctx,
                row.skill,
                row.target_tier,
                by=user,
                reason=f"{row.action} from review {row.period}: {row.reason}"[:1000],
                source=source,
                expect_current=row.current_tier,
            )
        except TierChangeError as exc:
            row.status = "stale" if "stale" in str(exc) else row.status
            s.add(row)
            s.commit()
            raise RecommendationError(str(exc)) from exc
        row.status, row.decided_by, row.decided_at = "applied", user, utcnow()
        s.add(row)
        s.commit()
        return row


def dismiss(ctx: EconomicsContext, rec_id: int, user: str) -> Recommendation:
    with ctx.ledger.session() as s:
        row = s.get(Recommendation, rec_id)
        if row is None:
            raise RecommendationError(f"no recommendation #{rec_id}")
        if row.status != "open":
            raise RecommendationError(f"recommendation #{rec_id} is {row.status}; nothing to dismiss")
        row.status, row.decided_by, row.decided_at = "dismissed", user, utcnow()
        s.add(row)
        s.commit()
        return row


def auto_apply(
    ctx: EconomicsContext, rows: list[Recommendation], recs: list[TierRecommendation]
) -> list[str]:
    """Apply changes for skills whose admins enabled auto-apply; returns what changed."""
    done = []
    for row, rec in zip(rows, recs, strict=True):
        if rec.auto_apply and row.status == "open":
            try:
                apply(ctx, int(row.id or 0), "auto-apply", source="auto")
                done.append(f"{row.skill}: {tier_move(row)}")
            except RecommendationError as exc:
                log.warning("auto-apply skipped for %s: %s", row.skill, exc)
    return done


def as_json(recs: list[TierRecommendation]) -> list[dict[str, Any]]:
    return [asdict(r) for r in recs]
