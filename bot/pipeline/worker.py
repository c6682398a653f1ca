"""Durable work at run time: accept in the ack, begin in the lazy listener, heartbeat and take over.

The Slack listeners (bot/adapters/slack/app.py) call `accept` before they acknowledge and run their work
inside `running(...)`; a background thread keeps this replica's heartbeat, closes model calls left
in flight by dead replicas, and resumes their work through the same listeners (`resume`).
If the database is down when an event arrives, the ack still goes out: the work is kept in memory
and persisting it is retried with back-off before the listener runs without it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from bot.ledger import db
from bot.ledger.work import WorkQueue, aware

if TYPE_CHECKING:
    from sqlmodel import Session

    from bot.core.types import Reply
    from bot.ledger.models import WorkItem

log = logging.getLogger(__name__)
T = TypeVar("T")

LATE_NOTE = "answered after a restart"
APOLOGY = (
    "Sorry: I lost track of this request in a restart and it is now too old to answer well. Please ask again."
)
PERSIST_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between tries to persist work while the DB is down
PURGE_EVERY_S = 600.0
DB_RETRY_BACKOFF = (1.0, 2.0, 4.0, 8.0)  # seconds between tries of a request the database failed


class Undelivered(Exception):
    """The reply is made and kept, but Slack would not take it (after the client's own retries)."""


def retry_db(run: Callable[[], T], what: str, pauses: tuple[float, ...] | None = None) -> T:
    """Run `run` again after a database error (the database away for a while), with back-off;
    the last error propagates. Other errors are not retried."""
    return db.retry(run, what, DB_RETRY_BACKOFF if pauses is None else pauses)


class Job:
    """One piece of durable work as a listener sees it; `tracked` is False without an item."""

    def __init__(
        self,
        queue: WorkQueue | None = None,
        item: WorkItem | None = None,
        *,
        resumed: bool = False,
        expired: bool = False,
    ) -> None:
        self.queue = queue
        self.item_id = item.id if item is not None else None
        self.resumed = resumed
        self.expired = expired
        self.message_ts = item.message_ts if item is not None else None
        self.reply: dict[str, Any] | None = (
            json.loads(item.reply) if item is not None and item.reply else None
        )
        self.lost = False  # another replica took it over: do not deliver
        self.kept = False  # the reply was kept with the request row (`keep_reply`)
        self.key = item.key if item is not None else None
        self.request_id = item.request_id if item is not None else None

    @property
    def tracked(self) -> bool:
        return self.queue is not None and self.item_id is not None

    def _mark(self, **values: Any) -> bool:
        if not self.tracked or self.lost:
            return not self.lost
        assert self.queue is not None and self.item_id is not None
        try:
            if not self.queue.mark(self.item_id, **values):
                self._taken_over()
        except SQLAlchemyError as exc:  # progress notes are best effort; the answer matters more
            log.warning("could not note progress on work %s: %s", self.item_id, type(exc).__name__)
        return not self.lost

    def _taken_over(self) -> None:
        log.warning("work %s was taken over by another replica; not delivering here", self.item_id)
        self.lost = True

    def placeholder(self, ts: str | None) -> None:
        """A placeholder (or a stream) is on screen: a take-over replaces it."""
        if ts:
            self.message_ts = ts
            self._mark(message_ts=ts)

    def replied(self, reply: Reply) -> bool:
        """The engine's reply, kept until delivered; False when this replica no longer owns the work.
        Nothing to write when the reply was kept already, in the commit of its request row."""
        if self.kept:
            return not self.lost
        self.request_id = reply.request_id
        return self._mark(**self._reply_values(reply))

    def keep_reply(self, reply: Reply) -> Callable[[Session], Callable[[], None]]:
        """For `Request.keep_reply`: the `replied` note written in the request row's transaction."""

        def write(s: Session) -> Callable[[], None]:
            assert self.queue is not None and self.item_id is not None
            owned = self.queue.mark_in(s, self.item_id, **self._reply_values(reply))

            def committed() -> None:
                self.kept, self.request_id = True, reply.request_id
                if not owned:
                    self._taken_over()

            return committed

        return write

    @staticmethod
    def _reply_values(reply: Reply) -> dict[str, Any]:
        data = json.dumps(dataclasses.asdict(reply), default=str)
        return {"stage": "replied", "reply": data, "request_id": reply.request_id}

    def close(self, status: str = "done", detail: str | None = None) -> None:
        if not self.tracked or self.lost:
            return
        queue, item_id = self.queue, self.item_id
        assert queue is not None and item_id is not None
        try:  # left open, a finished answer would be answered again after the next restart
            retry_db(lambda: queue.finish(item_id, status, detail), f"closing work {item_id}")
        except SQLAlchemyError as exc:
            log.error("could not close work %s: %s", item_id, type(exc).__name__)


def reply_from(data: dict[str, Any]) -> Reply:
    from bot.context.packs import Citation
    from bot.core.types import Reply

    fields = {f.name for f in dataclasses.fields(Reply)}
    values = {k: v for k, v in data.items() if k in fields}
    values["sources"] = tuple(values.get("sources") or ())
    values["citations"] = tuple(Citation(**c) for c in values.get("citations") or ())
    values["notes"] = list(values.get("notes") or [])
    return Reply(**values)


Resume = Callable[["WorkItem"], None]


class Worker:
    def __init__(
        self,
        queue: WorkQueue,
        *,
        sweep_s: float = 5.0,
        max_age_s: float = 900.0,
        executor: Executor | None = None,
        resume: Resume | None = None,
        delivery_tries: int = 6,
        delivery_backoff_s: float = 5.0,
    ) -> None:
        self.queue = queue
        self.delivery_tries = delivery_tries
        self.delivery_backoff_s = delivery_backoff_s
        # Undelivered work of this replica: item id → (due, time.monotonic(); its key), and its tries.
        self._redeliver: dict[str, tuple[float, str]] = {}
        self._tries: dict[str, int] = {}
        self.sweep_s = sweep_s
        self.max_age_s = max_age_s
        self.executor = executor
        self.resume_fn = resume
        self._local = threading.local()
        self._unpersisted: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.taken_over = 0
        self._next_purge = 0.0

    # Listener side ----------------------------------------------------------------------------

    def accept(self, key: str, kind: str, payload: dict[str, Any], **where: Any) -> bool:
        """Called in the ack: True to go on (new work), False for a duplicate delivery."""
        try:
            return not self.queue.accept(key, kind, payload, **where).duplicate
        except SQLAlchemyError as exc:  # the ack must still go out; the listener retries persisting
            log.warning("database unavailable; work %s kept in memory for now: %s", key, type(exc).__name__)
            with self._lock:
                self._unpersisted[key] = (kind, payload, where)
            return True

    def current(self) -> Job:
        return getattr(self._local, "job", None) or Job()

    @contextmanager
    def running(self, key: str | None) -> Iterator[Job | None]:
        """The listener's work: yields its Job, or None when another delivery or replica has it."""
        job = getattr(self._local, "job", None)  # set by a take-over (resume)
        if job is None:
            job = self._begin(key) if key else Job()
        if job is None:
            yield None
            return
        self._local.job = job
        try:
            yield job
        except Undelivered as exc:
            self._undelivered(job, str(exc))
        except Exception as exc:
            job.close("failed", f"{type(exc).__name__}: {exc}")
            raise
        else:
            job.close()
            if job.item_id is not None:
                with self._lock:
                    self._tries.pop(job.item_id, None)
        finally:
            self._local.job = None

    def _undelivered(self, job: Job, reason: str) -> None:
        """Keep the work open with its reply and post it again after a back-off, up to the limit."""
        if job.lost:  # another replica owns it now and delivers
            return
        if not job.tracked or job.expired:  # nothing kept to post again (no durable work; an apology)
            log.error("answer not delivered, not retried: %s", reason)
            job.close("failed", f"undelivered: {reason}")
            return
        assert job.item_id is not None and job.key is not None
        with self._lock:
            tries = self._tries[job.item_id] = self._tries.get(job.item_id, 0) + 1
        if tries >= self.delivery_tries:
            with self._lock:
                self._tries.pop(job.item_id, None)
            log.error("giving up delivering work %s after %d tries: %s", job.item_id, tries, reason)
            job.close("failed", f"undelivered after {tries} tries: {reason}")
            if job.request_id:
                try:
                    self.queue.ledger.note_delivery(job.request_id, "undelivered", None)
                except Exception:  # the work item says it too
                    log.exception("could not note request %s as undelivered", job.request_id)
            return
        pause = self.delivery_backoff_s * 2 ** (tries - 1)
        log.warning("work %s not delivered (try %d); posting again in %.0f s", job.item_id, tries, pause)
        job._mark(detail=f"undelivered (try {tries} of {self.delivery_tries}): {reason}"[:2000])
        with self._lock:
            self._redeliver[job.item_id] = (time.monotonic() + pause, job.key)

    def redeliver_due(self, now: float | None = None) -> int:
        """Post again the kept replies whose back-off is over (the background loop calls this)."""
        now = time.monotonic() if now is None else now
        with self._lock:  # taken out when due: one resume per back-off, whoever calls
            due = [(i, key) for i, (at, key) in self._redeliver.items() if at <= now]
            for item_id, _ in due:
                del self._redeliver[item_id]
        for item_id, key in due:
            item = self.queue.get(key)
            if item is None or item.status != "open" or item.owner != self.queue.replica:
                with self._lock:  # finished, or taken over by another replica meanwhile
                    self._tries.pop(item_id, None)
                continue
            if self.executor is not None:
                self.executor.submit(self.resume, item, False)
            else:
                self.resume(item, False)
        return len(due)

    def _begin(self, key: str) -> Job | None:
        with self._lock:
            pending = self._unpersisted.pop(key, None)
        if pending is not None:
            return self._persist_late(key, *pending)
        try:
            item = self.queue.begin(key)
        except SQLAlchemyError as exc:
            log.warning("database unavailable; answering %s without durability: %s", key, type(exc).__name__)
            return Job()
        return Job(self.queue, item) if item is not None else None

    def _persist_late(
        self, key: str, kind: str, payload: dict[str, Any], where: dict[str, Any]
    ) -> Job | None:
        try:
            accepted = db.retry(lambda: self.queue.accept(key, kind, payload, **where), key, PERSIST_BACKOFF)
        except SQLAlchemyError:
            log.error("database still unavailable; answering %s without durability", key)
            return Job()
        if accepted.duplicate:
            return None
        item = self.queue.begin(key)
        return Job(self.queue, item) if item is not None else None

    # Background: heartbeat, sweeps, take-over ----------------------------------------------------

    def start(self) -> None:
        self.queue.heartbeat()
        self._thread = threading.Thread(target=self._loop, name="tierwise-work", daemon=True)
        self._thread.start()

    def stop(self, retire: bool = True) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if retire:
            try:
                self.queue.retire()
            except SQLAlchemyError as exc:
                log.warning("could not retire replica %s: %s", self.queue.replica, type(exc).__name__)

    def _loop(self) -> None:
        beat = max(0.2, self.queue.lease.total_seconds() / 4)
        next_sweep = 0.0
        while not self._stop.wait(min(beat, self.sweep_s)):
            try:
                self.queue.heartbeat()
                self.redeliver_due()
                if time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + self.sweep_s
            except SQLAlchemyError as exc:  # the database is away: try again next beat
                log.warning("work sweep failed: %s", type(exc).__name__)
            except Exception:
                log.exception("work sweep failed")

    def sweep(self) -> int:
        """Close dead calls, take over dead replicas' work and run it; returns items taken."""
        self.queue.close_interrupted()
        items = self.queue.take_over()
        for item in items:
            if self.executor is not None:
                self.executor.submit(self.resume, item)
            else:
                self.resume(item)
        self.taken_over += len(items)
        if time.monotonic() >= self._next_purge:  # finished work past the dedupe window
            self.queue.purge()
            self._next_purge = time.monotonic() + PURGE_EVERY_S
        return len(items)

    def resume(self, item: WorkItem, late: bool = True) -> None:
        """Run taken-over work through its listener again (or apologise when it is too old);
        `late=False`: this replica's own undelivered reply, posted again."""
        age = (datetime.now(aware(item.created_at).tzinfo) - aware(item.created_at)).total_seconds()
        expired = late and age > self.max_age_s
        self._local.job = Job(self.queue, item, resumed=late, expired=expired)
        try:
            if self.resume_fn is None:
                raise RuntimeError("no resume function")
            self.resume_fn(item)
            leftover = getattr(self._local, "job", None)
            if leftover is not None:  # the listener had nothing to do (e.g. the thread is gone)
                leftover.close()
        except Exception as exc:
            log.exception("resuming work %s failed", item.id)
            job = self._local.job
            if job is not None:
                job.close("failed", f"{type(exc).__name__}: {exc}")
        finally:
            self._local.job = None
