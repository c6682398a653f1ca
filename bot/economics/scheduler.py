"""The weekly digest job (APScheduler, cron in the configured time zone, SQLAlchemy job store).

- A restart neither skips nor repeats a week: the job store keeps the next run time, an existing
  job is never replaced on start (only re-timed if the cron changed), missed runs fire once
  (coalesce, generous misfire grace), and a `digest_runs` row per period is claimed first.
- Two processes on one database post one digest per period: the claim is a primary-key insert.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.core.periods import days_before, last_complete_week
from bot.ledger.db import affected
from bot.ledger.models import DigestRun, utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from bot.economics.context import EconomicsContext

log = logging.getLogger(__name__)

JOB_ID = "tierwise-weekly-digest"
ROLLUP_JOB_ID = "tierwise-nightly-rollups"
PURGE_JOB_ID = "tierwise-nightly-purge"
ROLLUP_DAYS = 40  # covers a 28-day review plus the digest's two weeks
MISFIRE_GRACE_S = 3 * 24 * 3600  # a digest up to three days late is better than none

# The running process's economics context and poster; APScheduler stores the job by reference, not by value.
_runtime: dict[str, Any] = {}


def claim_period(ctx: EconomicsContext, period: str, owner: str | None = None) -> bool:
    """Claim a period for this process; a period whose earlier run failed may be claimed again."""
    owner = owner or f"{socket.gethostname()}:{os.getpid()}"
    with ctx.ledger.session() as s:
        s.add(DigestRun(period=period, claimed_by=owner))
        try:
            s.commit()
            return True
        except IntegrityError:
            s.rollback()
        retried = s.execute(
            update(DigestRun)
            .where(col(DigestRun.period) == period, col(DigestRun.status) == "failed")
            .values(status="running", claimed_by=owner, started_at=utcnow(), finished_at=None)
        )
        s.commit()
        return bool(affected(retried))


def finish_period(ctx: EconomicsContext, period: str, status: str, detail: str = "") -> None:
    with ctx.ledger.session() as s:
        row = s.get(DigestRun, period)
        if row is not None:
            row.status, row.finished_at, row.detail = status, utcnow(), detail[:2000]
            s.add(row)
            s.commit()


def run_digest(ctx: EconomicsContext, post: Callable[[Any], dict[str, Any]] | None, period: str) -> bool:
    """Build, store recommendations, auto-apply, post. False when another process has this period."""
    from bot.economics.digest import publish_digest

    if not claim_period(ctx, period):
        log.info("digest %s already claimed by another run; skipping", period)
        return False
    try:
        published = publish_digest(ctx, period, post, auto_apply=True)
        if published.applied:
            log.info("auto-applied: %s", "; ".join(published.applied))
        finish_period(ctx, period, "posted" if post else "built", str(published.detail))
    except Exception as exc:
        finish_period(ctx, period, "failed", f"{type(exc).__name__}: {exc}")
        raise
    return True


def weekly_digest_job() -> None:
    """Entry point APScheduler calls (by reference)."""
    ctx: EconomicsContext = _runtime["ctx"]
    run_digest(ctx, _runtime.get("post"), last_complete_week(utcnow(), ctx.settings.timezone))


def nightly_rollups_job() -> None:
    """Roll up the days that just closed, so the digest and the review never scan raw history."""
    from bot.ledger import rollups

    ctx: EconomicsContext = _runtime["ctx"]
    now = utcnow()
    with ctx.ledger.session() as s:
        days, _ = rollups.split(days_before(now, ROLLUP_DAYS), now, now)
        rollups.ensure(s, days)


def nightly_purge_job() -> None:
    """Blank expired text (retention); figures are never touched."""
    from bot.ledger.retention import purge

    ctx: EconomicsContext = _runtime["ctx"]
    report = purge(ctx.ledger, ctx.settings, actor="scheduler")
    log.info("%s", report.summary())


def build_scheduler(
    ctx: EconomicsContext, post: Callable[[Any], dict[str, Any]] | None
) -> BackgroundScheduler:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    _runtime["ctx"], _runtime["post"] = ctx, post
    store = SQLAlchemyJobStore(engine=ctx.ledger.engine, tablename="apscheduler_jobs")
    return BackgroundScheduler(jobstores={"default": store}, timezone=ctx.settings.timezone)


def start_scheduler(
    ctx: EconomicsContext, post: Callable[[Any], dict[str, Any]] | None
) -> BackgroundScheduler:
    from apscheduler.triggers.cron import CronTrigger

    scheduler = build_scheduler(ctx, post)
    trigger = CronTrigger.from_crontab(ctx.settings.digest_cron, timezone=ctx.settings.timezone)
    scheduler.start(paused=True)
    existing = scheduler.get_job(JOB_ID)
    if existing is None:
        scheduler.add_job(
            "bot.economics.scheduler:weekly_digest_job",
            trigger=trigger,
            id=JOB_ID,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=MISFIRE_GRACE_S,
        )
    elif (str(existing.trigger), str(existing.trigger.timezone)) != (str(trigger), str(trigger.timezone)):
        scheduler.reschedule_job(JOB_ID, trigger=trigger)
    # Idempotent and cheap: replacing it on start loses nothing (a missed night is rolled up lazily).
    scheduler.add_job(
        "bot.economics.scheduler:nightly_rollups_job",
        trigger=CronTrigger(hour=0, minute=10, timezone="UTC"),
        id=ROLLUP_JOB_ID,
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=24 * 3600,
    )
    # Expired text is blanked nightly (bot.ledger.retention); figures are never touched.
    scheduler.add_job(
        "bot.economics.scheduler:nightly_purge_job",
        trigger=CronTrigger.from_crontab(ctx.settings.retention.purge_cron, timezone="UTC"),
        id=PURGE_JOB_ID,
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=24 * 3600,
    )
    scheduler.resume()
    return scheduler
