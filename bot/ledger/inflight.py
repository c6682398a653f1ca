"""Notes of model calls under way (`calls_in_flight`), written off the request's critical path.

`start` hands the note to a writer thread and returns at once; the thread commits waiting notes in
one transaction 20 to 70 ms later, long before a real model answers. `settle` runs in
the transaction that records the call's `requests` row: a note not written yet is simply dropped
(nothing to undo), a written one is deleted in the same commit. So a call costs the engine no
extra commit, and a process killed during a call leaves its note behind for a sweep to close as
`interrupted` (bot.ledger.work).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from bot.ledger.models import CallInFlight, RequestRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from bot.ledger.store import Ledger

log = logging.getLogger(__name__)

RETRY_S = 1.0  # after a failed write (the database away), try again this much later
# Notes wait this long and are written together: a call that ends sooner never costs a write, and
# a real model call (hundreds of ms to minutes) is noted long before it can answer.
COALESCE_S = 0.02
POLL_BUSY_S = 0.01
POLL_IDLE_S = 0.05  # so a note is on disk at most ~70 ms after its call started
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
    # It polls rather than being woken: waking a thread on every call would hand it the GIL in the
    # middle of the request (measured: ~1 ms p50 in bench_engine); a poll costs the request nothing.
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
        with self._lock:
            self._pending[row.id] = (time.monotonic() + COALESCE_S, row, worker)
        if not _writer or self not in _ledgers:
            _ensure_writer(self)

    def settle(self, session: Session, request_id: str) -> None:
        """In the transaction recording the request: the call is no longer in flight."""
        with self._lock:
            if self._pending.pop(request_id, None) is not None:
                return  # never written
            if request_id in self._written:
                session.execute(delete(CallInFlight).where(col(CallInFlight.id) == request_id))

    def committed(self, request_id: str) -> None:
        with self._lock:
            self._written.discard(request_id)

    def flush(self, everything: bool = False) -> None:
        """Write the notes that are due (all of them with `everything`, as tests do)."""
        now = time.monotonic()
        with self._lock:
            due = [
                (k, row, worker) for k, (at, row, worker) in self._pending.items() if everything or at <= now
            ]
            if not due:
                return
            notes = [
                CallInFlight(
                    id=k,
                    worker=worker,
                    started_at=row.created_at,
                    row=row.model_dump_json(exclude={"response", "verify_detail"}),
                )
                for k, row, worker in due
            ]
            try:
                with self.ledger.session() as s:
                    s.add_all(notes)
                    s.commit()
            except SQLAlchemyError as exc:  # kept pending; the answer matters more than the note
                log.warning("could not note %d call(s) in flight: %s", len(notes), type(exc).__name__)
                raise
            for k, _, _ in due:
                self._pending.pop(k, None)
                self._written.add(k)
