"""The weekly digest job: one post per period (also with two processes), the APScheduler job kept in
the database across restarts, and the period chosen in the configured time zone.

Nothing sleeps for the schedule: jobs are forced due with `modify_job(next_run_time=now)` and the
tests poll with short timeouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from sqlalchemy import select, text

from bot.app import build_engine
from bot.config import load_settings
from bot.core.periods import last_complete_week
from bot.economics.context import EconomicsContext
from bot.economics.digest import Digest
from bot.economics.scheduler import (
    JOB_ID,
    PURGE_JOB_ID,
    ROLLUP_JOB_ID,
    build_scheduler,
    run_digest,
    start_scheduler,
)
from bot.ledger.models import DigestRun, utcnow
from bot.models.llm import LLM
from bot.pipeline.engine import Engine
from tests.ledger_builder import W46, at, scenario_settings, seeded_engine


class Poster:
    """A `post` callable that records digests (optionally failing first)."""

    def __init__(self, fail: int = 0, delay: float = 0.0) -> None:
        self.digests: list[Digest] = []
        self.fail = fail
        self.delay = delay
        self.lock = threading.Lock()
        self.posted = threading.Event()

    def __call__(self, d: Digest) -> dict[str, Any]:
        time.sleep(self.delay)
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise RuntimeError("slack said no")
            self.digests.append(d)
        self.posted.set()
        return {"ts": f"{len(self.digests)}.0", "channel": "C_ADMIN", "file": None}


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def new_engine(**overrides: Any) -> Engine:
    """Another "process": its own settings, ledger connection pool and engine on the same database."""
    settings = load_settings(**overrides)
    return build_engine(settings, llm=LLM(settings.tiers, mock_response="unused"))


def digest_run(engine: Engine, period: str) -> DigestRun | None:
    with engine.ledger.session() as s:
        return s.get(DigestRun, period)


def job_rows(engine: Engine) -> list[tuple[str, float]]:
    with engine.ledger.engine.connect() as conn:
        # The digest job's rows (the nightly rollup job lives in the same store).
        rows = conn.execute(
            text("SELECT id, next_run_time FROM apscheduler_jobs WHERE id = :id"), {"id": JOB_ID}
        )
        return [tuple(r) for r in rows]


# run_digest ------------------------------------------------------------------------------------------


def test_run_digest_posts_a_period_once(make_engine: Any) -> None:
    engine = seeded_engine(make_engine)
    post = Poster()
    assert run_digest(EconomicsContext.of(engine), post, W46) is True
    assert run_digest(EconomicsContext.of(engine), post, W46) is False
    (d,) = post.digests
    assert d.period == W46 and d.totals.requests == 18
    assert set(d.recommendation_ids) == {"label-email", "ask"}  # the open ones carry stored ids
    row = digest_run(engine, W46)
    assert row.status == "posted" and row.finished_at is not None
    assert row.detail == str({"ts": "1.0", "channel": "C_ADMIN", "file": None})


def test_without_a_poster_the_digest_is_built_but_not_posted(make_engine: Any) -> None:
    engine = make_engine()
    assert run_digest(EconomicsContext.of(engine), None, W46) is True
    assert digest_run(engine, W46).status == "built"


def test_two_processes_racing_post_once(make_engine: Any) -> None:
    first = seeded_engine(make_engine)
    engines = [first, new_engine(**scenario_settings())]
    assert engines[0].ledger is not engines[1].ledger
    post = Poster(delay=0.05)
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def run(engine: Engine) -> None:
        barrier.wait(5)
        results.append(run_digest(EconomicsContext.of(engine), post, W46))

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False, True]
    assert len(post.digests) == 1


def test_a_failed_post_is_recorded_and_the_period_can_be_retried(make_engine: Any) -> None:
    """Slack was down: the failure is recorded; the next run for that period must still post it
    (otherwise the week is silently skipped for good)."""
    engine = make_engine()
    post = Poster(fail=1)
    with pytest.raises(RuntimeError, match="slack said no"):
        run_digest(EconomicsContext.of(engine), post, W46)
    row = digest_run(engine, W46)
    assert (row.status, row.detail) == ("failed", "RuntimeError: slack said no")
    assert run_digest(EconomicsContext.of(engine), post, W46) is True
    assert len(post.digests) == 1 and digest_run(engine, W46).status == "posted"


# The scheduler ----------------------------------------------------------------------------------------


@pytest.fixture
def schedulers() -> Any:
    """Started schedulers, shut down after the test whatever happens."""
    started: list[Any] = []
    yield started
    for scheduler in started:
        if scheduler.running:
            scheduler.shutdown(wait=True)


def start(engine: Engine, post: Poster, started: list[Any]) -> tuple[Any, threading.Event]:
    scheduler = start_scheduler(EconomicsContext.of(engine), post)
    started.append(scheduler)
    ran = threading.Event()
    scheduler.add_listener(lambda event: ran.set(), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return scheduler, ran


def test_job_fires_and_posts_once_then_survives_a_restart(make_engine: Any, schedulers: list[Any]) -> None:
    engine = make_engine(digest_cron="0 9 * * mon")
    post = Poster()
    scheduler, ran = start(engine, post, schedulers)
    assert sorted(job.id for job in scheduler.get_jobs()) == sorted([JOB_ID, ROLLUP_JOB_ID, PURGE_JOB_ID])

    scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
    assert post.posted.wait(10) and ran.wait(10)
    expected = last_complete_week(utcnow(), "UTC")
    assert [d.period for d in post.digests] == [expected]
    wait_until(lambda: scheduler.get_job(JOB_ID).next_run_time > datetime.now(UTC))
    next_run = scheduler.get_job(JOB_ID).next_run_time
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (0, 9, 0)
    scheduler.shutdown(wait=True)

    # restart: a new process on the same database
    engine2 = new_engine(digest_cron="0 9 * * mon")
    scheduler2, ran2 = start(engine2, post, schedulers)
    assert sorted(job.id for job in scheduler2.get_jobs()) == sorted([JOB_ID, ROLLUP_JOB_ID, PURGE_JOB_ID])
    assert len(job_rows(engine2)) == 1
    assert scheduler2.get_job(JOB_ID).next_run_time == next_run

    scheduler2.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
    assert ran2.wait(10)  # it ran, found the period claimed, and did not post again
    assert len(post.digests) == 1
    assert digest_run(engine2, expected).status == "posted"


def set_stored_next_run(engine: Engine, when: datetime) -> None:
    """Edit the stored job while no scheduler runs (as if the process had been down at `when`)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    store = SQLAlchemyJobStore(engine=engine.ledger.engine, tablename="apscheduler_jobs")
    store.start(build_scheduler(EconomicsContext.of(engine), None), "default")
    job = store.lookup_job(JOB_ID)
    state = job.__getstate__()
    state["next_run_time"] = when
    job.__setstate__(state)
    store.update_job(job)


def test_a_run_missed_while_down_fires_once_on_start(make_engine: Any, schedulers: list[Any]) -> None:
    engine = make_engine()
    post = Poster()
    scheduler, _ = start(engine, post, schedulers)
    scheduler.shutdown(wait=True)
    set_stored_next_run(engine, datetime.now(UTC) - timedelta(hours=2))  # down over the run time

    engine2 = new_engine()
    _, ran2 = start(engine2, post, schedulers)
    assert post.posted.wait(10) and ran2.wait(10)
    assert len(post.digests) == 1 and len(job_rows(engine2)) == 1
    assert post.digests[0].period == last_complete_week(utcnow(), "UTC")


def test_a_changed_cron_re_times_the_stored_job(make_engine: Any, schedulers: list[Any]) -> None:
    engine = make_engine(digest_cron="0 9 * * mon")
    scheduler, _ = start(engine, Poster(), schedulers)
    scheduler.shutdown(wait=True)
    engine2 = new_engine(digest_cron="30 7 * * tue")
    scheduler2, _ = start(engine2, Poster(), schedulers)
    assert len(job_rows(engine2)) == 1
    next_run = scheduler2.get_job(JOB_ID).next_run_time
    assert (next_run.weekday(), next_run.hour, next_run.minute) == (1, 7, 30)


def test_a_changed_time_zone_re_times_the_stored_job(make_engine: Any, schedulers: list[Any]) -> None:
    """Same cron, new TIERWISE_TIMEZONE: "Monday 09:00" now means 09:00 in New York."""
    engine = make_engine(digest_cron="0 9 * * mon", timezone="UTC")
    scheduler, _ = start(engine, Poster(), schedulers)
    scheduler.shutdown(wait=True)
    engine2 = new_engine(digest_cron="0 9 * * mon", timezone="America/New_York")
    scheduler2, _ = start(engine2, Poster(), schedulers)
    job = scheduler2.get_job(JOB_ID)
    assert str(job.trigger.timezone) == "America/New_York"
    local = job.next_run_time.astimezone(job.trigger.timezone)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


def test_the_stored_run_state_is_in_the_ledger_database(make_engine: Any, schedulers: list[Any]) -> None:
    engine = make_engine()
    scheduler, _ = start(engine, Poster(), schedulers)
    ((job_id, next_run_ts),) = job_rows(engine)
    assert job_id == JOB_ID
    assert next_run_ts == pytest.approx(scheduler.get_job(JOB_ID).next_run_time.timestamp())
    with engine.ledger.session() as s:
        assert s.execute(select(DigestRun)).first() is None


# The period ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "tz", "period"),
    [
        (at(2026, 11, 16, 9, 0), "UTC", "2026-W46"),  # Monday's run reports the week just ended
        (at(2026, 11, 22, 23, 59), "UTC", "2026-W46"),  # Sunday night: W47 is not complete yet
        (at(2026, 11, 16, 0, 30), "UTC", "2026-W46"),
        (at(2026, 11, 16, 0, 30), "America/Los_Angeles", "2026-W45"),  # still Sunday 16:30 there
        (at(2026, 11, 15, 23, 30), "UTC", "2026-W45"),
        (at(2026, 11, 15, 23, 30), "Pacific/Auckland", "2026-W46"),  # already Monday 12:30 there
        (at(2027, 1, 4, 9, 0), "UTC", "2026-W53"),  # 2026 has 53 ISO weeks
        (at(2026, 1, 5, 9, 0), "Europe/Berlin", "2026-W01"),
    ],
)
def test_digest_period_is_the_last_complete_iso_week_in_the_zone(now: datetime, tz: str, period: str) -> None:
    assert last_complete_week(now, tz) == period
