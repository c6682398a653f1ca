"""The ledger's write path and the small reads the engine and the CLI need."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, case, func, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import make_transient
from sqlmodel import Session, col

from bot.ledger import db
from bot.ledger.inflight import InFlightNotes
from bot.ledger.models import Feedback, RequestRow, SeenEvent, SlackMessage, TierAssignment, utcnow

if TYPE_CHECKING:
    from bot.core.types import AlsoWrite

log = logging.getLogger(__name__)

# A request row is the record of a model call already paid for: when the database is away, its write
# is tried again for about half a minute before the error reaches the caller (which may ask again).
RECORD_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


class UnknownRequest(LookupError):
    pass


@dataclass(eq=False)
class _PendingRow:
    """A row waiting for its group commit (`Ledger.record`)."""

    row: RequestRow
    also: AlsoWrite | None = None
    done: bool = False
    error: Exception | None = None


@dataclass(frozen=True)
class SkillUsage:
    skill: str
    requests: int
    errors: int
    escalations: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    unknown_cost: int
    mean_latency_ms: float
    p95_latency_ms: float
    thumbs_up: int
    thumbs_down: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def percentile_query(column: Any, group: Any, where: Any, fractions: Sequence[float]) -> Any:
    """Nearest-rank percentiles per group, in SQL: a histogram of (group, value) counts, then running
    totals over it (window functions; SQLite ≥ 3.25 and Postgres). Sorting distinct values instead of
    every row is what keeps this fast on large windows."""
    hist = (
        select(group.label("g"), column.label("v"), func.count().label("c"))
        .where(where)
        .group_by(group, column)
        .subquery()
    )
    running = select(
        hist.c.g,
        hist.c.v,
        func.sum(hist.c.c).over(partition_by=hist.c.g, order_by=hist.c.v).label("cum"),
        func.sum(hist.c.c).over(partition_by=hist.c.g).label("n"),
    ).subquery()
    cols = [
        func.min(case((running.c.cum >= running.c.n * f, running.c.v))).label(f"p{round(f * 100)}")
        for f in fractions
    ]
    return select(running.c.g, *cols).group_by(running.c.g)


class Ledger:
    def __init__(self, url: str, migrate: bool = True) -> None:
        self.url = url
        self.engine: Engine = db.make_engine(url)
        self.calls = InFlightNotes(self)  # model calls under way
        self._write_turn = threading.Lock()  # one group commit of request rows at a time
        self._queue_lock = threading.Lock()
        self._queued: list[_PendingRow] = []  # rows waiting for the next group commit
        if migrate:
            db.upgrade(self.engine)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # Requests ----------------------------------------------------------------------------

    def record(self, row: RequestRow, also: AlsoWrite | None = None) -> RequestRow:
        """Write a request row; a call noted by `start_call` stops being in flight in the same commit.
        `also` (durable work keeping the reply) writes in that commit too, and is told once it is
        committed; should its write fail, the row is committed without it (and `also` is not told).

        Group commit: rows recorded at the same time by several threads (concurrent answers ending
        together) are written in one transaction by whichever thread gets the write turn first; the
        others wait for that commit instead of each taking SQLite's one write lock in turn (its busy
        handler polls with sleeps of up to 100 ms). Either way the row is committed before this returns.
        """
        pending = _PendingRow(row, also)
        with self._queue_lock:
            self._queued.append(pending)
        with self._write_turn:
            if not pending.done:  # not written by the thread before us: write what is queued
                with self._queue_lock:
                    batch, self._queued = self._queued, []
                self._write_batch(batch)
        if pending.error is not None:
            raise pending.error
        return row

    def _write_batch(self, batch: list[_PendingRow]) -> None:
        """Under the write turn: the rows in one commit. The database still away after the back-off:
        every caller gets the error. A bad row (any other error): each row alone, so the error reaches
        its own caller only."""
        try:
            self._commit_rows(batch)
        except OperationalError as exc:
            for pending in batch:
                pending.error = exc
        except Exception as exc:
            if len(batch) == 1 and batch[0].also is None:
                batch[0].error = exc
            else:
                for pending in batch:
                    self._commit_alone(pending)
        except BaseException as exc:  # interrupted: no caller may take its row for written
            for pending in batch:
                pending.error = pending.error or RuntimeError(f"request {pending.row.id} not recorded")
            raise exc
        finally:
            for pending in batch:
                pending.done = True
                if pending.error is None:
                    self.calls.committed(pending.row.id)

    def _commit_alone(self, pending: _PendingRow) -> None:
        """One row of a failed batch on its own; should the caller's write be what fails, without it."""
        try:
            self._commit_rows([pending])
        except Exception as exc:
            if pending.also is None:
                pending.error = exc
                return
            log.warning(
                "request %s: the caller's write failed (%s); recording the row alone",
                pending.row.id,
                type(exc).__name__,
            )
            pending.also = None
            self._commit_alone(pending)

    def _commit_rows(self, batch: list[_PendingRow]) -> None:
        def write() -> list[Callable[[], None]]:
            with self.session() as s:
                for pending in batch:
                    if inspect(pending.row).detached:
                        # Flushed by a try that then failed: as new again, or `add` would not insert it.
                        make_transient(pending.row)
                    self.calls.settle(s, pending.row.id)
                    s.add(pending.row)
                s.flush()  # the rows first: a caller's write may refer to them
                done = [pending.also(s) for pending in batch if pending.also is not None]
                connection = s.connection()
                try:
                    s.commit()
                except Exception:
                    # A refused commit may leave the transaction open on the driver's connection while
                    # SQLAlchemy takes it for ended: that connection must not serve the next try.
                    connection.invalidate()
                    raise
                return done

        # The database away (not a bad row): wait, write it again.
        committed = db.retry(
            write, f"recording {len(batch)} request(s)", RECORD_BACKOFF, errors=OperationalError
        )
        for told in committed:
            try:
                told()
            except Exception:  # the rows are committed; a caller's bookkeeping must not undo that
                log.exception("after recording: a caller's follow-up failed")

    def note_delivery(self, request_id: str, delivery: str, visible_ttft_ms: int | None) -> None:
        """After the answer reached the user: which path delivered it, and when its first text showed."""
        with self.session() as s:
            row = s.get(RequestRow, request_id)
            if row is None:
                raise UnknownRequest(request_id)
            row.delivery, row.visible_ttft_ms = delivery, visible_ttft_ms
            s.add(row)
            s.commit()

    def start_call(self, row: RequestRow, worker: str) -> None:
        """Note a model call as it starts, so a crash during it leaves a trace (bot.ledger.inflight)."""
        self.calls.start(row, worker)

    def get_request(self, request_id: str) -> RequestRow | None:
        with self.session() as s:
            return s.get(RequestRow, request_id)

    def claim_event(self, event_id: str, ttl_hours: int = 72) -> bool:
        """True the first time an event id is seen (atomic across processes via the primary key)."""
        now = utcnow()
        with self.session() as s:
            s.add(SeenEvent(event_id=event_id, seen_at=now, expires_at=now + timedelta(hours=ttl_hours)))
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                row = s.get(SeenEvent, event_id)
                if row is not None and row.expires_at < now:
                    row.seen_at, row.expires_at = now, now + timedelta(hours=ttl_hours)
                    s.add(row)
                    s.commit()
                    return True
                return False
        return True

    # Slack messages ----------------------------------------------------------------------

    def remember_message(self, channel: str, ts: str, request_id: str, thread_ts: str | None = None) -> None:
        """Note that bot message (channel, ts) carries the answer to `request_id`."""
        with self.session() as s:
            s.merge(SlackMessage(channel=channel, ts=ts, thread_ts=thread_ts, request_id=request_id))
            s.commit()

    def request_for_message(self, channel: str, ts: str) -> str | None:
        with self.session() as s:
            row = s.get(SlackMessage, (channel, ts))
            return row.request_id if row else None

    def bot_answered_thread(self, channel: str, thread_ts: str) -> bool:
        """True when the bot has posted in this thread (so follow-ups need no new mention)."""
        stmt = (
            select(col(SlackMessage.ts))
            .where(col(SlackMessage.channel) == channel, col(SlackMessage.thread_ts) == thread_ts)
            .limit(1)
        )
        with self.session() as s:
            return s.execute(stmt).first() is not None

    # Tiers -------------------------------------------------------------------------------

    def current_tiers(self) -> dict[str, str]:
        """The newest assignment per skill."""
        newest = (
            select(col(TierAssignment.skill), func.max(col(TierAssignment.id)).label("id"))
            .group_by(col(TierAssignment.skill))
            .subquery()
        )
        stmt = select(col(TierAssignment.skill), col(TierAssignment.tier)).join(
            newest, col(TierAssignment.id) == newest.c.id
        )
        with self.session() as s:
            return {skill: tier for skill, tier in s.execute(stmt)}

    def current_tier(self, skill: str) -> str | None:
        stmt = (
            select(col(TierAssignment.tier))
            .where(col(TierAssignment.skill) == skill)
            .order_by(col(TierAssignment.id).desc())
            .limit(1)
        )
        with self.session() as s:
            return s.execute(stmt).scalar_one_or_none()

    def assign_tier(
        self, skill: str, tier: str, by: str, reason: str, previous: str | None, source: str = "cli"
    ) -> TierAssignment:
        row = TierAssignment(
            skill=skill, tier=tier, previous_tier=previous, assigned_by=by, reason=reason, source=source
        )
        with self.session() as s:
            s.add(row)
            s.commit()
        return row

    def tier_history(self, skill: str | None = None, limit: int = 100) -> list[TierAssignment]:
        stmt = select(TierAssignment).order_by(col(TierAssignment.id).desc()).limit(limit)
        if skill:
            stmt = stmt.where(col(TierAssignment.skill) == skill)
        with self.session() as s:
            return list(s.execute(stmt).scalars())

    def last_assignment_at(self, skill: str) -> datetime | None:
        with self.session() as s:
            return s.execute(
                select(func.max(col(TierAssignment.created_at))).where(col(TierAssignment.skill) == skill)
            ).scalar_one_or_none()

    # Feedback ----------------------------------------------------------------------------

    def add_feedback(
        self, request_id: str, user_id: str, score: int, comment: str | None = None, source: str = "cli"
    ) -> tuple[Feedback, bool]:
        """Record or update one user's rating of a request. Returns (row, created)."""
        if score not in (1, -1):
            raise ValueError("feedback must be +1 or -1")
        with self.session() as s:
            if s.get(RequestRow, request_id) is None:
                raise UnknownRequest(request_id)
            existing = s.execute(
                select(Feedback).where(
                    col(Feedback.request_id) == request_id, col(Feedback.user_id) == user_id
                )
            ).scalar_one_or_none()
            if existing is not None:
                existing.score = score
                if comment is not None:
                    existing.comment = comment
                existing.source = source
                existing.updated_at = utcnow()
                s.add(existing)
                s.commit()
                return existing, False
            row = Feedback(
                request_id=request_id, user_id=user_id, score=score, comment=comment, source=source
            )
            s.add(row)
            try:
                s.commit()
            except IntegrityError:  # a concurrent click from the same user: update instead
                s.rollback()
                return self.add_feedback(request_id, user_id, score, comment, source)
            return row, True

    def feedback_for(self, request_id: str) -> list[Feedback]:
        with self.session() as s:
            return list(s.execute(select(Feedback).where(col(Feedback.request_id) == request_id)).scalars())

    # Usage -------------------------------------------------------------------------------

    def usage(self, since: datetime, until: datetime | None = None) -> list[SkillUsage]:
        """Per-skill figures over user traffic, in grouped SQL."""
        until = until or utcnow() + timedelta(seconds=1)
        window = and_(
            col(RequestRow.created_at) >= since,
            col(RequestRow.created_at) < until,
            col(RequestRow.purpose) == "user",
        )
        totals = (
            select(
                col(RequestRow.skill),
                func.count().filter(col(RequestRow.escalated_from).is_(None)).label("requests"),
                func.count().filter(col(RequestRow.status) != "ok").label("errors"),
                func.count().filter(col(RequestRow.escalated_from).is_not(None)).label("escalations"),
                func.coalesce(func.sum(col(RequestRow.prompt_tokens)), 0),
                func.coalesce(func.sum(col(RequestRow.completion_tokens)), 0),
                func.coalesce(func.sum(col(RequestRow.cost_usd)), 0.0),
                func.count().filter(col(RequestRow.cost_known).is_(False)).label("unknown_cost"),
                func.avg(col(RequestRow.latency_ms)),
            )
            .where(window)
            .group_by(col(RequestRow.skill))
        )
        p95 = percentile_query(col(RequestRow.latency_ms), col(RequestRow.skill), window, [0.95])
        thumbs = (
            select(
                col(RequestRow.skill),
                func.count().filter(col(Feedback.score) > 0),
                func.count().filter(col(Feedback.score) < 0),
            )
            .join(Feedback, col(Feedback.request_id) == col(RequestRow.id))
            .where(window)
            .group_by(col(RequestRow.skill))
        )
        with self.session() as s:
            p95s = {g: v for g, v in s.execute(p95)}
            votes = {skill: (up, down) for skill, up, down in s.execute(thumbs)}
            rows = []
            for skill, n, errors, esc, pt, ct, cost, unknown, mean in s.execute(totals):
                up, down = votes.get(skill, (0, 0))
                rows.append(
                    SkillUsage(
                        skill=skill,
                        requests=int(n),
                        errors=int(errors),
                        escalations=int(esc),
                        prompt_tokens=int(pt),
                        completion_tokens=int(ct),
                        cost_usd=float(cost),
                        unknown_cost=int(unknown),
                        mean_latency_ms=float(mean or 0),
                        p95_latency_ms=float(p95s.get(skill) or 0),
                        thumbs_up=int(up),
                        thumbs_down=int(down),
                    )
                )
        return sorted(rows, key=lambda r: r.skill)

    def requests_since(self, since: datetime, limit: int = 1000, purpose: str = "user") -> list[RequestRow]:
        stmt = (
            select(RequestRow)
            .where(col(RequestRow.created_at) >= since, col(RequestRow.purpose) == purpose)
            .order_by(col(RequestRow.created_at).desc())
            .limit(limit)
        )
        with self.session() as s:
            return list(s.execute(stmt).scalars())
