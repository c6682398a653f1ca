"""Daily rollups of user traffic: exact, additive figures per (UTC day, skill, starting tier).

Closed days (before today, UTC) are rolled up on first use with one grouped scan and reused after;
the open edges of a window (today, or a window that starts or ends mid-day) are read raw. Writes that
touch a closed day (a late 👍, a re-priced request, rows inserted by hand) drop that day's rollup,
through a session hook, so a rollup is never stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, and_, delete, event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from bot.ledger.models import DailyRollup, Feedback, RequestRow, RollupDay, utcnow


@dataclass
class Figures:
    """Additive figures for one (skill, tier); `+` merges rollups and raw edges."""

    requests: int = 0
    cost_sum: float = 0.0
    errors: int = 0
    escalations: int = 0
    unknown_cost: int = 0
    feedback: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0

    def add(self, other: Figures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Window:
    by_tier: dict[tuple[str, str], Figures] = field(default_factory=dict)

    def merge(self, key: tuple[str, str], figures: Figures) -> None:
        self.by_tier.setdefault(key, Figures()).add(figures)

    def by_skill(self) -> dict[str, Figures]:
        out: dict[str, Figures] = {}
        for (skill, _), figures in self.by_tier.items():
            out.setdefault(skill, Figures()).add(figures)
        return out


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def split(
    since: datetime, until: datetime, now: datetime
) -> tuple[list[date], list[tuple[datetime, datetime]]]:
    """The closed whole UTC days inside [since, until), and the raw ranges around them."""
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    first = since.date() if since == day_start(since.date()) else since.date() + timedelta(days=1)
    today = now.astimezone(UTC).date()
    last = min(until.date(), today)  # exclusive: days before this one are whole and closed
    days = [first + timedelta(days=i) for i in range(max(0, (last - first).days))]
    if not days:
        return [], [(since, until)] if since < until else []
    raw = []
    if since < day_start(days[0]):
        raw.append((since, day_start(days[0])))
    end = day_start(days[-1] + timedelta(days=1))
    if end < until:
        raw.append((end, until))
    return days, raw


def _attributed(since: datetime, until: datetime) -> Any:
    """User rows with the tier each request started on (an escalation counts against its origin)."""
    origin = aliased(RequestRow)
    return (
        select(
            col(RequestRow.id).label("id"),
            col(RequestRow.created_at).label("created_at"),
            col(RequestRow.skill).label("skill"),
            func.coalesce(col(origin.tier), col(RequestRow.tier)).label("tier"),
            col(RequestRow.cost_usd).label("cost"),
            col(RequestRow.status).label("status"),
            col(RequestRow.escalated_from).label("escalated_from"),
            col(RequestRow.cost_known).label("cost_known"),
        )
        .outerjoin(origin, col(origin.id) == col(RequestRow.escalated_from))
        .where(
            col(RequestRow.created_at) >= since,
            col(RequestRow.created_at) < until,
            col(RequestRow.purpose) == "user",
            col(RequestRow.tier).is_not(None),
        )
        .subquery()
    )


def raw_figures(
    session: Session, since: datetime, until: datetime, by_day: bool = False
) -> dict[tuple[str, ...], Figures]:
    """Grouped SQL over the raw rows: (skill, tier) → figures, or (day, skill, tier) with `by_day`."""
    rows = _attributed(since, until)
    keys = [rows.c.skill, rows.c.tier]
    if by_day:
        keys.insert(0, func.substr(func.cast(rows.c.created_at, String), 1, 10))  # the UTC date
    totals = select(
        *keys,
        func.count().filter(rows.c.escalated_from.is_(None)),
        func.coalesce(func.sum(rows.c.cost), 0.0),
        # A call cut short by a crash (bot.ledger.work) failed as surely as one that errored.
        func.count().filter(
            rows.c.status.in_(("error", "invalid", "interrupted")), rows.c.escalated_from.is_(None)
        ),
        func.count().filter(rows.c.escalated_from.is_not(None)),
        func.count().filter(rows.c.cost_known.is_(False)),
    ).group_by(*keys)
    thumbs = (
        select(
            *keys,
            func.count(),
            func.count().filter(col(Feedback.score) > 0),
            func.count().filter(col(Feedback.score) < 0),
        )
        .join(Feedback, col(Feedback.request_id) == rows.c.id)
        .group_by(*keys)
    )
    width = len(keys)
    out: dict[tuple[str, ...], Figures] = {}
    for row in session.execute(totals):
        out[tuple(row[:width])] = Figures(int(row[width]), float(row[width + 1]), *map(int, row[width + 2 :]))
    for row in session.execute(thumbs):
        figures = out.setdefault(tuple(row[:width]), Figures())
        figures.feedback, figures.thumbs_up, figures.thumbs_down = map(int, row[width:])
    return out


def ensure(session: Session, days: list[date]) -> None:
    """Roll up the closed days that have no rollup yet: one grouped scan over their span."""
    wanted = {d.isoformat() for d in days}
    if not wanted:
        return
    built = set(session.execute(select(col(RollupDay.day)).where(col(RollupDay.day).in_(wanted))).scalars())
    missing = sorted(wanted - built)
    if not missing:
        return
    start = day_start(date.fromisoformat(missing[0]))
    end = day_start(date.fromisoformat(missing[-1])) + timedelta(days=1)
    figures = raw_figures(session, start, end, by_day=True)
    for (day, skill, tier), f in figures.items():
        if day in missing:
            session.add(DailyRollup(day=day, skill=skill, tier=tier, **f.__dict__))
    for day in missing:
        session.add(RollupDay(day=day))
    try:
        session.commit()
    except IntegrityError:  # another process rolled these days up first
        session.rollback()


def window(session: Session, since: datetime, until: datetime, now: datetime | None = None) -> Window:
    """Figures per (skill, starting tier) over [since, until): rollups for closed days, raw edges."""
    days, raw = split(since, until, now or utcnow())
    ensure(session, days)
    result = Window()
    if days:
        stmt = select(DailyRollup).where(
            and_(col(DailyRollup.day) >= days[0].isoformat(), col(DailyRollup.day) <= days[-1].isoformat())
        )
        for r in session.execute(stmt).scalars():
            result.merge(
                (r.skill, r.tier),
                Figures(**{name: getattr(r, name) for name in Figures.__dataclass_fields__}),
            )
    for start, end in raw:
        for (skill, tier), figures in raw_figures(session, start, end).items():
            result.merge((skill, tier), figures)
    return result


def invalidate(session: Session, days: Iterable[str]) -> None:
    days = sorted(set(days))
    if days:
        session.execute(delete(RollupDay).where(col(RollupDay.day).in_(days)))
        session.execute(delete(DailyRollup).where(col(DailyRollup.day).in_(days)))


def invalidate_since(session: Session, since: datetime) -> None:
    day = since.astimezone(UTC).date().isoformat()
    session.execute(delete(RollupDay).where(col(RollupDay.day) >= day))
    session.execute(delete(DailyRollup).where(col(DailyRollup.day) >= day))


@event.listens_for(Session, "before_flush")
def _drop_stale_rollups(session: Session, _context: Any, _instances: Any) -> None:
    """A request or rating written for a closed day makes that day's rollup stale: drop it."""
    today = utcnow().date()
    days: set[str] = set()
    request_ids: set[str] = set()
    for obj in [*session.new, *session.dirty]:
        if isinstance(obj, RequestRow) and obj.created_at is not None:
            if obj.created_at.astimezone(UTC).date() < today:
                days.add(obj.created_at.astimezone(UTC).date().isoformat())
        elif isinstance(obj, Feedback):
            request_ids.add(obj.request_id)
    if request_ids:
        with session.no_autoflush:
            for created in session.execute(
                select(col(RequestRow.created_at)).where(col(RequestRow.id).in_(request_ids))
            ).scalars():
                stamp = created if created.tzinfo else created.replace(tzinfo=UTC)
                if stamp.astimezone(UTC).date() < today:
                    days.add(stamp.astimezone(UTC).date().isoformat())
    if days:
        with session.no_autoflush:
            invalidate(session, days)
