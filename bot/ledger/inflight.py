"""Notes of model calls under way (`calls_in_flight`), written before the call starts.

`start` inserts the note in a transaction of its own, on a plain Core connection (no ORM session),
before the model is asked: a process killed at any point of the call leaves the note behind for a
sweep to close as `interrupted` (bot.ledger.work). On SQLite (WAL, synchronous=NORMAL) that commit
is an append to the WAL file, no fsync; on Postgres the note's commit does not wait for the WAL
flush (`synchronous_commit` off for that transaction only): the note must survive our process, not
the database server. `settle` runs in the transaction that records the call's `requests` row and
deletes the note in the same commit. A note that could not be written (the database away) is kept
in memory and written by a background thread with back-off; the call goes on meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, text
from sqlalchemy.exc import SQLAlchemyError

from bot.ledger.models import CallInFlight, RequestRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.ledger.store import Ledger

log = logging.getLogger(__name__)

RETRY_S = 1.0  # after a failed write (the database away), try again this much later
COALESCE_S = 0.0  # a note kept after a failed write is due again at once (then every RETRY_S)
POLL_BUSY_S = 0.01
POLL_IDLE_S = 0.05
_TABLE = CallInFlight.__table__  # type: ignore[attr-defined]
# Plain statements: on this path the ORM's bulk delete alone cost ~0.2 ms a call (measured).
_INSERT = text(
    "INSERT INTO calls_in_flight (id, worker, started_at, row) VALUES (:id, :worker, :started_at, :row)"
).bindparams(bindparam("started_at", type_=_TABLE.c.started_at.type))
_DELETE = text("DELETE FROM calls_in_flight WHERE id = :id")
_EXCLUDED = {"response", "verify_detail"}  # unknown at the start, and possibly large
IDLE_EXIT_S = 5.0  # the writer thread stops after this long without notes (and restarts on demand)

# One writer thread per process serves every ledger (tests build hundreds of them).
_ledgers: weakref.WeakSet[InFlightNotes] = weakref.WeakSet()
_writer: list[threading.Thread] = []
_writer_lock = threading.Lock()


def _ensure_writer(notes: InFlightNotes) -> None:
    with _writer_lock:
        _ledgers.add(notes)
        if not _writer:
            thread = threading.Thread(target=_write_loop, name="tierwise-inflight", daemon=True)
            _writer.append(thread)
            thread.start()


def _write_loop() -> None:
    # Only notes whose synchronous write failed get here; polling keeps it free of any wake-up cost.
    idle_since = time.monotonic()
    while True:
        busy = [n for n in list(_ledgers) if n._pending]
        time.sleep(POLL_BUSY_S if busy else POLL_IDLE_S)
        for notes in busy:
            if notes.retry_at <= time.monotonic():
                try:
                    notes.flush()
                except SQLAlchemyError:  # logged; kept pending, tried again after a pause
                    notes.retry_at = time.monotonic() + RETRY_S
        if busy:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE_EXIT_S:
            with _writer_lock:
                if not any(n._pending for n in list(_ledgers)):
                    _writer.clear()
                    return


class InFlightNotes:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        # id → (when the note is due, the row, the worker); the row is serialised only when due
        self._pending: dict[str, tuple[float, RequestRow, str]] = {}
        self._written: set[str] = set()
        self.retry_at = 0.0  # after a failed write, not before this (time.monotonic())
        self._lock = threading.Lock()  # held while a batch is written: settle() waits for it

    def start(self, row: RequestRow, worker: str) -> None:
        """Note the call before it starts; on a database error, keep it for the writer thread."""
        note = {
            "id": row.id,
            "worker": worker,
            "started_at": row.created_at,
            "row": row.model_dump_json(exclude=_EXCLUDED),
        }
        try:
            self._insert([note])
        except SQLAlchemyError as exc:  # the answer matters more than the note: retried off the path
            log.warning("could not note call %s in flight (kept, retried): %s", row.id, type(exc).__name__)
            with self._lock:
                self._pending[row.id] = (time.monotonic() + COALESCE_S, row, worker)
                self.retry_at = time.monotonic() + RETRY_S
            _ensure_writer(self)
            return
        with self._lock:
            self._written.add(row.id)

    def _insert(self, notes: list[dict[str, object]]) -> None:
        engine = self.ledger.engine
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            conn.execute(_INSERT, notes)

    def settle(self, session: Session, request_id: str) -> None:
        """In the transaction recording the request: the call is no longer in flight."""
        with self._lock:
            if self._pending.pop(request_id, None) is not None:
                return  # never written
            if request_id in self._written:
                session.connection().execute(_DELETE, {"id": request_id})

    def committed(self, request_id: str) -> None:
        with self._lock:
            self._written.discard(request_id)

    def flush(self, everything: bool = False) -> None:
        """Write the notes kept after a failed write that are due (all of them with `everything`)."""
        now = time.monotonic()
        with self._lock:
            due = [
                (k, row, worker) for k, (at, row, worker) in self._pending.items() if everything or at <= now
            ]
            if not due:
                return
            notes: list[dict[str, object]] = [
                {
                    "id": k,
                    "worker": worker,
                    "started_at": row.created_at,
                    "row": row.model_dump_json(exclude=_EXCLUDED),
                }
                for k, row, worker in due
            ]
            try:
                self._insert(notes)
            except SQLAlchemyError as exc:  # kept pending; the answer matters more than the note
                log.warning("could not note %d call(s) in flight: %s", len(notes), type(exc).__name__)
                raise
            for k, _, _ in due:
                self._pending.pop(k, None)
                self._written.add(k)
