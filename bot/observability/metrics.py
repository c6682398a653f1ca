"""Prometheus metrics (the official client), fed by the ledger's own writes.

Every request, escalation, refusal, shadow or judge call is a ledger row, and every rating a
feedback row: a session hook observes them when their transaction commits, so the metrics count
exactly what the ledger records, whichever code path wrote it, and a rolled-back write counts
nothing. A request row counts once, when its status first becomes final (ok, error, invalid,
refused, interrupted), so a row written before its model call and completed after is not counted twice.
Work queues register a depth and an oldest-age function and are read at scrape time.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from bot.ledger.models import Feedback, RequestRow

if TYPE_CHECKING:
    from bot.core.types import RequestStatus
    from bot.ledger.store import Ledger

# "interrupted": a call left in flight by a process that died (closed on the next start).
FINAL: frozenset[RequestStatus] = frozenset({"ok", "error", "invalid", "refused", "interrupted"})
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# `*_created` series double the exposition and Prometheus' text format has no use for them.
disable_created_metrics()


class _Queues(Collector):
    """Depth and oldest-item age of every registered work queue, read at scrape time."""

    def __init__(self) -> None:
        self.queues: dict[str, tuple[Callable[[], int], Callable[[], float]]] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "tierwise_work_queue_depth", "Work items waiting to start.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "tierwise_work_queue_oldest_age_seconds",
            "Age of the oldest work item waiting to start (0 when none waits).",
            labels=["queue"],
        )
        for name, (depth_of, age_of) in sorted(self.queues.items()):
            depth.add_metric([name], float(depth_of()))
            age.add_metric([name], float(age_of()))
        yield depth
        yield age


class Metrics:
    """One registry of Tierwise's metrics (its own, so tests and several ledgers stay apart)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        by = ["skill", "tier", "purpose"]
        by_tier = ["skill", "tier"]  # user-path figures: escalations, refusals, time to first token
        self.requests = Counter(
            "tierwise_requests",
            "Requests by final status (model calls, and requests refused before one).",
            [*by, "status"],
            registry=r,
        )
        self.errors = Counter(
            "tierwise_request_errors", "Requests that failed (model error or invalid output).", by, registry=r
        )
        self.escalations = Counter(
            "tierwise_escalations",
            "Retries on a stronger tier after an invalid answer (tier: the stronger one).",
            by_tier,
            registry=r,
        )
        self.refusals = Counter(
            "tierwise_refusals",
            "Requests refused (channel, budget, data boundary).",
            by_tier,
            registry=r,
        )
        self.latency = Histogram(
            "tierwise_request_duration_seconds",
            "Model call latency, queue wait included.",
            by,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "tierwise_time_to_first_token_seconds",
            "Time to the model's first token.",
            by_tier,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.visible_ttft = Histogram(
            "tierwise_visible_time_to_first_token_seconds",
            "Time from receipt to the first text a user saw.",
            by_tier,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("tierwise_tokens", "Tokens sent and received.", [*by, "direction"], registry=r)
        self.cost = Counter("tierwise_cost_usd", "Spend in US dollars (known prices).", by, registry=r)
        self.unpriced = Counter(
            "tierwise_unpriced_requests", "Model calls whose price is unknown.", by, registry=r
        )
        self.shadow_cost = Counter(
            "tierwise_shadow_cost_usd",
            "Spend on shadow and judge calls, in US dollars.",
            ["skill"],
            registry=r,
        )
        self.feedback = Counter(
            "tierwise_feedback", "Ratings given (score: up or down).", ["score"], registry=r
        )
        self.redactions = Counter(
            "tierwise_redactions",
            "Spans redacted before storage or before an external tier.",
            ["skill"],
            registry=r,
        )
        self._queues = _Queues()
        r.register(self._queues)

    def register_queue(self, name: str, depth: Callable[[], int], oldest_age: Callable[[], float]) -> None:
        self._queues.queues[name] = (depth, oldest_age)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # Observations -----------------------------------------------------------------------------

    def observe_request(self, row: RequestRow) -> None:
        skill, tier, purpose = row.skill, row.tier or "none", row.purpose
        self.requests.labels(skill, tier, purpose, row.status).inc()
        if row.status in ("error", "invalid"):
            self.errors.labels(skill, tier, purpose).inc()
        if row.status == "refused":
            self.refusals.labels(skill, tier).inc()
            return
        if row.escalated_from:
            self.escalations.labels(skill, tier).inc()
        self.latency.labels(skill, tier, purpose).observe(row.latency_ms / 1000)
        if row.ttft_ms is not None:
            self.ttft.labels(skill, tier).observe(row.ttft_ms / 1000)
        if row.visible_ttft_ms is not None:
            self.visible_ttft.labels(skill, tier).observe(row.visible_ttft_ms / 1000)
        self.tokens.labels(skill, tier, purpose, "input").inc(row.prompt_tokens)
        self.tokens.labels(skill, tier, purpose, "output").inc(row.completion_tokens)
        if row.cost_known:
            self.cost.labels(skill, tier, purpose).inc(row.cost_usd)
            if purpose in ("shadow", "judge"):
                self.shadow_cost.labels(skill).inc(row.cost_usd)
        else:
            self.unpriced.labels(skill, tier, purpose).inc()
        if row.redactions:
            self.redactions.labels(skill).inc(row.redactions)

    def observe_feedback(self, row: Feedback) -> None:
        self.feedback.labels("up" if row.score > 0 else "down").inc()


_attached: weakref.WeakKeyDictionary[Any, Metrics] = weakref.WeakKeyDictionary()
_PENDING = "tierwise_metrics_pending"


def attach(ledger: Ledger, metrics: Metrics | None = None) -> Metrics:
    """Count this ledger's writes into `metrics` (a new registry unless given); idempotent."""
    existing = _attached.get(ledger.engine)
    if existing is not None and metrics is None:
        return existing
    _attached[ledger.engine] = metrics = metrics or Metrics()
    return metrics


def _became_final(obj: RequestRow) -> bool:
    state = inspect(obj)
    if state.pending:
        return obj.status in FINAL
    history = state.attrs.status.history
    return bool(history.added) and obj.status in FINAL and not any(v in FINAL for v in history.deleted)


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    bind = session.bind
    if bind is None or bind not in _attached:
        return
    pending = session.info.setdefault(_PENDING, [])
    for obj in [*session.new, *session.dirty]:
        if isinstance(obj, RequestRow) and _became_final(obj):
            pending.append(("request", obj))
        elif isinstance(obj, Feedback):
            state = inspect(obj)
            if state.pending or state.attrs.score.history.added:
                pending.append(("feedback", obj))


@event.listens_for(Session, "after_commit")
def _observe(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    metrics = _attached.get(session.bind) if session.bind is not None else None
    if not pending or metrics is None:
        return
    for kind, obj in pending:
        if kind == "request":
            metrics.observe_request(obj)
        else:
            metrics.observe_feedback(obj)


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING, None)


# Work queues ----------------------------------------------------------------------------------


class TrackedExecutor(ThreadPoolExecutor):
    """A thread pool that knows how many submitted items wait for a thread, and since when."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._waiting: dict[int, float] = {}
        self._seq = itertools.count()
        self._wait_lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        key = next(self._seq)
        with self._wait_lock:
            self._waiting[key] = time.monotonic()

        def started(*a: Any, **kw: Any) -> Any:
            with self._wait_lock:
                self._waiting.pop(key, None)
            return fn(*a, **kw)

        return super().submit(started, *args, **kwargs)

    def depth(self) -> int:
        with self._wait_lock:
            return len(self._waiting)

    def oldest_age(self) -> float:
        with self._wait_lock:
            oldest = min(self._waiting.values(), default=None)
        return 0.0 if oldest is None else time.monotonic() - oldest


def serve_metrics(metrics: Metrics, host: str, port: int) -> Any:
    """A separate /metrics listener (Socket Mode has no HTTP server of its own). Raises OSError
    when the port is taken; the caller names the setting."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return server
