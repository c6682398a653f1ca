"""A first-come, first-served queue in front of a model that answers one request at a time (the
embedded model: one llama.cpp context on two cores), which tells each waiter its position.

The adapter that is showing a request to a person says how to show the position
(`watching(on_position)`); the engine reads how long the call waited (`Watch.waited_s`) for the
ledger's `queue_ms`. Both travel with the request in a context variable, so the model edge needs
no new parameters.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

PositionCallback = Callable[[int], None]


@dataclass
class Watch:
    on_position: PositionCallback | None = None
    waited_s: float = 0.0


_current: ContextVar[Watch | None] = ContextVar("tierwise_model_queue_watch", default=None)


@contextmanager
def watching(on_position: PositionCallback | None = None) -> Iterator[Watch]:
    """Watch the model calls made inside the block; an inner watch keeps the outer callback."""
    outer = _current.get()
    watch = Watch(on_position=on_position or (outer.on_position if outer else None))
    token = _current.set(watch)
    try:
        yield watch
    finally:
        _current.reset(token)
        if outer is not None:
            outer.waited_s += watch.waited_s


def position_text(ahead: int) -> str:
    """The position as people read it: "2 questions ahead of yours" (Slack and the shell alike)."""
    return f"{ahead} question{'s' if ahead != 1 else ''} ahead of yours"


class ModelQueue:
    """Serves one caller at a time, in arrival order; waiters hear their position when it changes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()

    @property
    def length(self) -> int:
        with self._cond:
            return len(self._waiting)

    @contextmanager
    def turn(self) -> Iterator[float]:
        """Wait for this caller's turn; yields the seconds waited. Callbacks run outside the lock."""
        watch = _current.get()
        ticket = object()
        started = time.monotonic()
        told: int | None = None
        with self._cond:
            self._waiting.append(ticket)
        try:
            while True:
                with self._cond:
                    ahead = self._waiting.index(ticket)
                    if ahead == 0:
                        break
                    if ahead == told:
                        self._cond.wait()
                        ahead = self._waiting.index(ticket)
                        if ahead == 0:
                            break
                if ahead != told and watch is not None and watch.on_position is not None:
                    told = ahead
                    with contextlib.suppress(Exception):  # showing it must never cost the answer
                        watch.on_position(ahead)
                elif ahead != told:
                    told = ahead
            if told and watch is not None and watch.on_position is not None:
                with contextlib.suppress(Exception):
                    watch.on_position(0)  # our turn: the person sees the work start
            waited = time.monotonic() - started
            if watch is not None:
                watch.waited_s += waited
            yield waited
        finally:
            with self._cond:
                self._waiting.remove(ticket)
                self._cond.notify_all()
