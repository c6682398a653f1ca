"""The weekly digest: figures from grouped SQL, rendered as text, Markdown, JSON, Block Kit and a
PNG chart. Rendering is pure over a `Digest`; only `build_digest` and `post_digest` touch I/O."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.core.evidence import TierRecommendation
from bot.core.rec_format import format_recommendation
from bot.ledger import queries

if TYPE_CHECKING:
    from bot.economics.context import EconomicsContext


@dataclass(frozen=True)
class SkillLine:
    skill: str
    tier: str
    requests: int
    users: int
    cost_usd: float
    thumbs_up: int
    thumbs_down: int
    prev_requests: int
    prev_cost_usd: float

    @property
    def ratings(self) -> int:
        return self.thumbs_up + self.thumbs_down

    @property
    def up_rate(self) -> float | None:
        return self.thumbs_up / self.ratings if self.ratings else None


@dataclass(frozen=True)
class Totals:
    requests: int
    users: int
    cost_usd: float
    prev_requests: int
    prev_cost_usd: float
    thumbs_up: int
    thumbs_down: int
    unknown_cost: int


@dataclass
class Digest:
    period: str
    start: datetime
    end: datetime
    timezone: str
    totals: Totals
    skills: list[SkillLine]
    recommendations: list[TierRecommendation]
    comments: list[tuple[str, str]]
    side_spend: dict[str, float]
    recommendation_ids: dict[str, int] = field(default_factory=dict)  # skill → stored row id (buttons)
    ttft: list[queries.TtftFigures] = field(default_factory=list)  # time to first token per skill/tier

    @property
    def empty(self) -> bool:
        return self.totals.requests == 0

    def local_dates(self) -> str:
        """The week's first and last day in the configured zone (the bounds are stored in UTC)."""
        from datetime import timedelta
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(self.timezone)
        first = self.start.astimezone(zone)
        last = (self.end - timedelta(seconds=1)).astimezone(zone)
        return f"{first:%Y-%m-%d} to {last:%Y-%m-%d} ({self.timezone})"


def _change(now: float, before: float) -> str:
    if before == 0:
        return "new" if now else "±0"
    return f"{(now - before) / before:+.0%}"


def build_digest(ctx: EconomicsContext, period: str) -> Digest:
    from bot.core.periods import previous_week, week_bounds

    tz = ctx.settings.timezone
    start, end = week_bounds(period, tz)
    prev_start, prev_end = week_bounds(previous_week(period), tz)
    this_week = queries.week_skill_figures(ctx.ledger, start, end)
    last_week = {r.skill: r for r in queries.week_skill_figures(ctx.ledger, prev_start, prev_end)}
    users = queries.distinct_users(ctx.ledger, start, end)
    lines = []
    for row in this_week:
        skill = ctx.registry.get(row.skill)
        tier = ctx.configured_tier(skill)[0] if skill else "?"
        prev = last_week.get(row.skill)
        lines.append(
            SkillLine(
                skill=row.skill,
                tier=tier,
                requests=row.requests,
                users=row.users,
                cost_usd=row.cost_usd,
                thumbs_up=row.thumbs_up,
                thumbs_down=row.thumbs_down,
                prev_requests=prev.requests if prev else 0,
                prev_cost_usd=prev.cost_usd if prev else 0.0,
            )
        )
    totals = Totals(
        requests=sum(r.requests for r in this_week),
        users=users,
        cost_usd=sum(r.cost_usd for r in this_week),
        prev_requests=sum(r.requests for r in last_week.values()),
        prev_cost_usd=sum(r.cost_usd for r in last_week.values()),
        thumbs_up=sum(r.thumbs_up for r in this_week),
        thumbs_down=sum(r.thumbs_down for r in this_week),
        unknown_cost=sum(r.unknown_cost for r in this_week),
    )
    from bot.economics.tier_review import review

    return Digest(
        period=period,
        start=start,
        end=end,
        timezone=tz,
        totals=totals,
        skills=lines,
        recommendations=review(ctx, end),
        comments=queries.thumbs_down_comments(ctx.ledger, start, end),
        side_spend=queries.side_spend(ctx.ledger, start, end),
        ttft=queries.ttft_figures(ctx.ledger, start, end),
    )


Post = Callable[[Digest], dict[str, Any]]  # delivers a built digest (Slack today); returns what it did


@dataclass(frozen=True)
class Published:
    digest: Digest
    applied: list[str]  # "skill: from → to" for each auto-applied recommendation
    detail: dict[str, Any]  # what `post` returned ({} when nothing was posted)


def publish_digest(
    ctx: EconomicsContext, period: str, post: Post | None, *, auto_apply: bool = False
) -> Published:
    """Build the period's digest, keep its recommendations (their row ids go on the Apply/Dismiss
    buttons), optionally auto-apply the ones admins allowed, then hand the digest to `post`.

    Posting is injected so the economics layer never imports Slack; `post=None` builds and stores only.
    """
    from bot.economics import tier_review

    d = build_digest(ctx, period)
    rows = tier_review.store(ctx, d.recommendations, period)
    d.recommendation_ids = {r.skill: int(r.id or 0) for r in rows if r.status == "open"}
    applied = tier_review.auto_apply(ctx, rows, d.recommendations) if auto_apply else []
    detail = post(d) if post is not None else {}
    return Published(d, applied, detail)


# Renderers ---------------------------------------------------------------------------------


def verify_line(rec: TierRecommendation) -> str | None:
    """Verified-pass rate per tier with its interval: "verified: small 92% [88–95%] of 300 · …"."""
    verify = rec.evidence.get("verify") or {}
    parts = []
    for tier, v in verify.items():
        ran = v["passed"] + v["failed"]
        if ran:
            lo, hi = v["ci"]
            parts.append(f"{tier} {v['rate']:.0%} [{lo:.0%}–{hi:.0%}] of {ran:,}")
    return "verified: " + " · ".join(parts) if parts else None


def up_rate_text(line: SkillLine) -> str:
    return f"{line.up_rate:.0%} of {line.ratings}" if line.up_rate is not None else "no ratings"


def headline(d: Digest) -> str:
    t = d.totals
    if d.empty:
        return f"Tierwise digest {d.period}: no traffic this week."
    return (
        f"Tierwise digest {d.period}: {t.requests:,} requests ({_change(t.requests, t.prev_requests)} vs last week) "
        f"from {t.users} people, ${t.cost_usd:,.2f} ({_change(t.cost_usd, t.prev_cost_usd)})."
    )


def notes(d: Digest) -> list[str]:
    notes = []
    if d.totals.unknown_cost:
        notes.append(
            f"{d.totals.unknown_cost:,} request(s) have no known price; their cost is counted as $0."
        )
    side = {k: v for k, v in d.side_spend.items() if v}
    if side:
        notes.append(
            "Not in user spend: " + ", ".join(f"{k} ${v:,.4f}" for k, v in sorted(side.items())) + "."
        )
    if d.ttft:
        notes.append(queries.ttft_line(d.ttft))
    return notes


def to_text(d: Digest) -> str:
    out = [headline(d), f"Week: {d.local_dates()}"]
    if not d.empty:
        out.append("")
        out.append(f"{'skill':<14} {'tier':<8} {'requests':>8} {'users':>6} {'cost USD':>10} {'👍 rate':>14}")
        for s in d.skills:
            out.append(
                f"{s.skill:<14} {s.tier:<8} {s.requests:>8,} {s.users:>6} {s.cost_usd:>10.4f} {up_rate_text(s):>14}"
            )
    out.extend(notes(d))
    out.append("")
    out.append("Recommendations:")
    for rec in d.recommendations:
        out.append("  " + format_recommendation(rec, "text"))
        checked = verify_line(rec)
        if checked:
            out.append(f"            {checked}")
    if d.comments:
        out.append("")
        out.append("👎 comments:")
        out.extend(f"  [{skill}] {comment}" for skill, comment in d.comments)
    return "\n".join(out)


def to_markdown(d: Digest) -> str:
    out = [f"# {headline(d)}", "", f"Week: {d.local_dates()}", ""]
    if not d.empty:
        out += ["| skill | tier | requests | users | cost (USD) | 👍 rate |", "|---|---|---:|---:|---:|---:|"]
        out += [
            f"| {s.skill} | {s.tier} | {s.requests:,} | {s.users} | {s.cost_usd:.4f} | {up_rate_text(s)} |"
            for s in d.skills
        ]
        out.append("")
    out += [f"_{n}_" for n in notes(d)]
    out += ["", "## Recommendations", ""]
    for rec in d.recommendations:
        out.append(format_recommendation(rec, "markdown"))
        checked = verify_line(rec)
        if checked:
            out.append(f"  - {checked}")
    if d.comments:
        out += ["", "## 👎 comments", ""]
        out += [f"- `{skill}`: {comment}" for skill, comment in d.comments]
    return "\n".join(out)


def to_json(d: Digest) -> str:
    data: dict[str, Any] = {
        "period": d.period,
        "start": d.start.isoformat(),
        "end": d.end.isoformat(),
        "timezone": d.timezone,
        "empty": d.empty,
        "totals": asdict(d.totals),
        "skills": [{**asdict(s), "up_rate": s.up_rate} for s in d.skills],
        "recommendations": [asdict(r) for r in d.recommendations],
        "thumbs_down_comments": [{"skill": s, "comment": c} for s, c in d.comments],
        "side_spend": d.side_spend,
        "ttft": [asdict(t) for t in d.ttft],
    }
    return json.dumps(data, indent=2, default=str)


def chart_png(d: Digest) -> bytes | None:
    """Cost and 👍 rate per skill; None for a week with no traffic (no empty chart is uploaded)."""
    if d.empty or not d.skills:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.skill for s in d.skills]
    costs = [s.cost_usd for s in d.skills]
    rates = [(s.up_rate or 0) * 100 for s in d.skills]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    try:
        bars = ax.bar(names, costs, color="#4a7bd0")
        ax.set_ylabel("cost (USD)")
        ax.set_title(f"Tierwise {d.period}: cost and 👍 rate per skill".replace("👍", "thumbs-up"))
        ax.tick_params(axis="x", labelrotation=20)
        ax2 = ax.twinx()
        ax2.plot(names, rates, color="#d0704a", marker="o", linewidth=2)
        ax2.set_ylabel("thumbs-up rate (%)")
        ax2.set_ylim(0, 100)
        ax.bar_label(bars, labels=[f"${c:,.2f}" for c in costs], fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)
