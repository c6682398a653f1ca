"""The durable work queue: what was acknowledged to Slack is in the database before the ack returns.

One row per accepted event, command or shortcut (`work_items`), inserted in the same transaction as
the event's dedupe claim, owned by the replica that accepted it. Replicas heartbeat (`replicas`); the
work and the in-flight model calls of a replica whose heartbeat is older than the lease are taken
over (work) or closed as `interrupted` (calls) by any other replica. Every state change is a
compare-and-set on (id, owner), so two replicas never both own one item; on Postgres the take-over
scan also uses `FOR UPDATE SKIP LOCKED` so sweeping replicas do not queue behind each other.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.ledger import rollups
from bot.ledger.db import affected
from bot.ledger.models import CallInFlight, Replica, RequestRow, SeenEvent, WorkItem, utcnow
from bot.ledger.store import Ledger

log = logging.getLogger(__name__)

# This process, as a replica. Model calls carry it (requests.worker) so a sweep can tell dead ones.
REPLICA_ID = f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(3)}"
# A process that never registered (the CLI, a test) gets this long before its calls count as dead.
UNREGISTERED_GRACE = timedelta(hours=1)
TAKE_OVER_BATCH = 20
INTERRUPTED = "interrupted: the process died during the model call"


def aware(stamp: datetime) -> datetime:
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Accepted:
    item: WorkItem | None  # None: a duplicate (the key was claimed before)

    @property
    def duplicate(self) -> bool:
        return self.item is None


class WorkQueue:
    def __init__(
        self,
        ledger: Ledger,
        replica: str = REPLICA_ID,
        lease_s: float = 20.0,
        ttl_hours: int = 72,
    ) -> None:
        self.ledger = ledger
        self.replica = replica
        self.lease = timedelta(seconds=lease_s)
        self.ttl = timedelta(hours=ttl_hours)

    # Replicas -------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Say this replica is alive (registers it on first use)."""
        now = utcnow()
        with self.ledger.session() as s:
            done = s.execute(update(Replica).where(col(Replica.id) == self.replica).values(heartbeat_at=now))
            if not affected(done):
                host = self.replica.partition(":")[0]
                s.add(Replica(id=self.replica, host=host, pid=os.getpid(), started_at=now, heartbeat_at=now))
            s.commit()

    def retire(self) -> None:
        """A graceful stop: this replica's work is finished, and its id must not look alive."""
        with self.ledger.session() as s:
            s.execute(delete(Replica).where(col(Replica.id) == self.replica))
            s.commit()

    def _live(self, now: datetime) -> Any:
        return select(col(Replica.id)).where(col(Replica.heartbeat_at) >= now - self.lease)

    # Accepting and progress -----------------------------------------------------------------

    def accept(
        self,
        key: str,
        kind: str,
        payload: dict[str, Any],
        *,
        event_id: str | None = None,
        channel: str | None = None,
        thread_ts: str | None = None,
    ) -> Accepted:
        """Persist new work with its dedupe claim, atomically; a known key is a duplicate."""
        now = utcnow()
        item = WorkItem(
            key=key[:160],
            kind=kind,
            payload=json.dumps(payload, separators=(",", ":")),
            owner=self.replica,
            created_at=now,
            updated_at=now,
            channel=channel,
            thread_ts=thread_ts,
        )
        with self.ledger.session() as s:
            if event_id:
                s.add(SeenEvent(event_id=event_id[:64], seen_at=now, expires_at=now + self.ttl))
            s.add(item)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                return Accepted(None)
        return Accepted(item)

    def begin(self, key: str) -> WorkItem | None:
        """The listener starts on work this replica accepted; None when it is not ours to start."""
        with self.ledger.session() as s:
            started = s.execute(
                update(WorkItem)
                .where(
                    col(WorkItem.key) == key[:160],
                    col(WorkItem.owner) == self.replica,
                    col(WorkItem.status) == "open",
                    col(WorkItem.stage) == "accepted",
                )
                .values(stage="started", updated_at=utcnow())
            )
            s.commit()
            if not affected(started):
                return None
            return s.scalars(select(WorkItem).where(col(WorkItem.key) == key[:160])).one()

    def mark(self, item_id: str, **values: Any) -> bool:
        """Record progress on an item this replica still owns; False when it was taken over."""
        with self.ledger.session() as s:
            owned = self.mark_in(s, item_id, **values)
            s.commit()
            return owned

    def mark_in(self, s: Session, item_id: str, **values: Any) -> bool:
        """`mark` inside a transaction of the caller's (committed with the request row)."""
        done = s.execute(
            update(WorkItem)
            .where(
                col(WorkItem.id) == item_id,
                col(WorkItem.owner) == self.replica,
                col(WorkItem.status) == "open",
            )
            .values(updated_at=utcnow(), **values)
        )
        return bool(affected(done))

    def finish(self, item_id: str, status: str = "done", detail: str | None = None) -> bool:
        values: dict[str, Any] = {"status": status}
        if status == "done":
            values["stage"] = "delivered"
        if detail is not None:
            values["detail"] = detail[:2000]
        return self.mark(item_id, **values)

    def get(self, key: str) -> WorkItem | None:
        with self.ledger.session() as s:
            return s.execute(select(WorkItem).where(col(WorkItem.key) == key[:160])).scalar_one_or_none()

    # Take-over ------------------------------------------------------------------------------

    def take_over(self, limit: int = TAKE_OVER_BATCH) -> list[WorkItem]:
        """Claim open work of replicas gone quiet (heartbeat older than the lease).

        Returns fewer than `limit` items only when no more such work was left: a candidate another
        sweeper claimed between our select and our compare-and-set is replaced by a fresh look. On
        SQLite the select takes no lock, so sweepers racing for the same first rows would otherwise
        come back empty-handed while dead work waits for the next sweep."""
        now = utcnow()
        taken: list[WorkItem] = []
        tried: set[str] = set()
        with self.ledger.session() as s:
            while len(taken) < limit:
                stmt = select(WorkItem).where(
                    col(WorkItem.status) == "open",
                    col(WorkItem.owner) != self.replica,
                    col(WorkItem.owner).not_in(self._live(now)),
                )
                if tried:  # lost to another sweeper (now a live owner) or already ours
                    stmt = stmt.where(col(WorkItem.id).not_in(tried))
                stmt = (
                    stmt.order_by(col(WorkItem.created_at))
                    .limit(limit - len(taken))
                    .with_for_update(skip_locked=True)  # Postgres; SQLite has one writer anyway
                )
                candidates = s.execute(stmt).scalars().all()
                if not candidates:
                    break
                for item in candidates:
                    tried.add(item.id)
                    won = s.execute(
                        update(WorkItem)
                        .where(
                            col(WorkItem.id) == item.id,
                            col(WorkItem.owner) == item.owner,
                            col(WorkItem.status) == "open",
                        )
                        .values(owner=self.replica, attempts=col(WorkItem.attempts) + 1, updated_at=now)
                    )
                    if affected(won):
                        log.info("took over work %s (%s) from %s", item.id, item.kind, item.owner)
                        taken.append(item)
            s.commit()
        for item in taken:  # the rows as they are now ours
            item.owner, item.attempts = self.replica, item.attempts + 1
        return taken

    def close_interrupted(self) -> int:
        """Model calls left in flight by a dead process become `interrupted` request rows, with what
        was known at the start (skill, tier, model, who, started at) and an unknown cost."""
        now = utcnow()
        known = select(col(Replica.id))
        dead = col(CallInFlight.worker).in_(known) & col(CallInFlight.worker).not_in(self._live(now))
        unregistered = col(CallInFlight.worker).not_in(known) & (
            col(CallInFlight.started_at) < now - UNREGISTERED_GRACE
        )
        stmt = (
            select(CallInFlight)
            .where(col(CallInFlight.started_at) < now - self.lease, or_(dead, unregistered))
            .limit(500)
            .with_for_update(skip_locked=True)  # two sweeping replicas never close one call twice
        )
        with self.ledger.session() as s:
            stale = list(s.execute(stmt).scalars())
            if not stale:
                return 0
            days: list[str] = []
            for call in stale:
                fields = json.loads(call.row)
                fields["created_at"] = aware(datetime.fromisoformat(fields["created_at"]))
                row = RequestRow(
                    **{**fields, "status": "interrupted", "error": INTERRUPTED, "cost_known": False}
                )
                if row.created_at.date() < now.date():
                    days.append(row.created_at.date().isoformat())
                if s.get(RequestRow, row.id) is None:  # recorded after all: nothing to add
                    s.add(row)
                s.delete(call)
            rollups.invalidate(s, days)  # a closed day's figures now include these calls
            try:
                s.commit()
            except IntegrityError:  # another replica closed them first
                s.rollback()
                return 0
        log.warning("closed %d model call(s) left in flight by a dead process", len(stale))
        return len(stale)

    def purge(self) -> int:
        """Finished work older than the dedupe window is no longer needed."""
        with self.ledger.session() as s:
            done = s.execute(
                delete(WorkItem).where(
                    col(WorkItem.status) != "open", col(WorkItem.updated_at) < utcnow() - self.ttl
                )
            )
            s.execute(delete(Replica).where(col(Replica.heartbeat_at) < utcnow() - self.ttl))
            s.commit()
            return int(affected(done) or 0)

    def open_count(self) -> int:
        """Accepted work not finished yet (the work-queue depth metric)."""
        with self.ledger.session() as s:
            return int(
                s.execute(
                    select(func.count()).select_from(WorkItem).where(col(WorkItem.status) == "open")
                ).scalar_one()
            )

    def oldest_open_age(self) -> float:
        """Seconds since the oldest unfinished work was accepted (0 when there is none)."""
        with self.ledger.session() as s:
            oldest = s.execute(
                select(func.min(col(WorkItem.created_at))).where(col(WorkItem.status) == "open")
            ).scalar_one()
        return 0.0 if oldest is None else max(0.0, (utcnow() - aware(oldest)).total_seconds())

    def open_items(self) -> list[WorkItem]:
        with self.ledger.session() as s:
            return list(s.execute(select(WorkItem).where(col(WorkItem.status) == "open")).scalars())
