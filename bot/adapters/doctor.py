"""`tierwise doctor`: is this installation ready to serve? One line per check, nothing changed.

Checks the database (reachable, migrations current, WAL on SQLite), every tier (a one-token ping,
with where its price comes from), the Slack bot token (auth.test), the embedded model file when a
tier uses it, and the weekly digest's next run. Meant for a first install and a container's start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from bot.config import Settings, redacted_url

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    status: str  # ok | warn | FAIL
    name: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<16}  {self.detail}"


def _guard(name: str, run: Callable[[], Check]) -> Check:
    try:
        return run()
    except Exception as exc:  # a check that breaks is a failed check, said in one line
        reason = str(exc).strip().splitlines()
        return Check(FAIL, name, f"{type(exc).__name__}: {reason[0][:200] if reason else ''}")


def check_database(settings: Settings) -> Check:
    from alembic.script import ScriptDirectory

    from bot.ledger import db

    url = settings.effective_database_url
    shown = redacted_url(url)
    engine = db.make_engine(url)
    try:
        try:
            with engine.connect() as conn:
                current = db.current_revision(engine)
                wal = (
                    conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                    if engine.dialect.name == "sqlite"
                    else None
                )
        except Exception as exc:
            raise db.unavailable(url, exc) from None
        script = ScriptDirectory.from_config(db.alembic_config(url))
        head = script.get_current_head()
        if current is None:
            return Check(
                WARN, "database", f"{shown} is empty: tierwise serve (or tierwise db upgrade) migrates it"
            )
        if current != head:
            try:
                script.get_revision(current)
            except Exception:  # a revision this code does not know: a newer version wrote it
                return Check(
                    FAIL, "database", f"{shown} is at {current}, unknown to this version (head {head})"
                )
            return Check(WARN, "database", f"{shown} is at {current}; migrated to {head} on the next start")
        if wal is not None and str(wal).lower() != "wal":
            return Check(FAIL, "database", f"{shown} at {head}, but journal_mode is {wal}, not WAL")
        return Check(OK, "database", f"{shown} at {head}" + (", WAL" if wal else ""))
    finally:
        engine.dispose()


def check_tier(settings: Settings, tier: str, llm: Any) -> Check:
    from bot.models.llm import ModelCallError

    conf = settings.tiers[tier]
    start = time.perf_counter()
    try:
        result = llm.complete(tier, [{"role": "user", "content": "Reply with OK."}], 1)
    except ModelCallError as exc:
        return Check(FAIL, f"tier {tier}", f"{conf.model}: {exc.kind}: {exc.message[:200]}")
    took = time.perf_counter() - start
    price = result.price_source or ("unknown price" if not result.cost_known else "-")
    return Check(OK, f"tier {tier}", f"{conf.model} answered in {took:.1f}s; price: {price}")


def check_slack(settings: Settings) -> Check:
    from bot.adapters.slack.client import make_client

    if settings.slack_bot_token is None:
        return Check(WARN, "slack", "SLACK_BOT_TOKEN is not set (needed by tierwise serve)")
    client = make_client(settings, timeout=10)
    from slack_sdk.errors import SlackApiError

    try:
        auth = client.auth_test()
    except SlackApiError as exc:
        return Check(FAIL, "slack", f"auth.test: {exc.response.get('error') or exc.response.status_code}")
    mode = "Socket Mode" if settings.slack_app_token else "HTTP"
    if not settings.slack_app_token and settings.slack_signing_secret is None:
        return Check(FAIL, "slack", "HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN)")
    return Check(
        OK, "slack", f"bot {auth.get('user_id')} in team {auth.get('team') or auth.get('team_id')}; {mode}"
    )


def check_embedded(settings: Settings) -> Check:
    import importlib.util

    from bot.models.embedded import gguf_path

    tiers = settings.embedded_tiers()
    if not tiers:
        return Check(OK, "embedded model", "not used by any tier")
    path = gguf_path(settings.embedded_model_path)
    if not path.is_file():
        return Check(FAIL, "embedded model", f"{path} is missing (tiers {', '.join(tiers)})")
    if importlib.util.find_spec("llama_cpp") is None:
        return Check(
            FAIL, "embedded model", "llama-cpp-python is not installed: pip install 'tierwise[local]'"
        )
    return Check(
        OK, "embedded model", f"{path} ({path.stat().st_size / 2**20:.0f} MiB) for {', '.join(tiers)}"
    )


def check_scheduler(settings: Settings, now: datetime | None = None) -> Check:
    from apscheduler.triggers.cron import CronTrigger

    from bot.economics.scheduler import JOB_ID
    from bot.ledger import db

    trigger = CronTrigger.from_crontab(settings.digest_cron, timezone=settings.timezone)
    upcoming = trigger.get_next_fire_time(None, now or datetime.now(trigger.timezone))
    stored = ""
    engine = db.make_engine(settings.effective_database_url)
    try:
        if "apscheduler_jobs" in db.table_names(engine):
            from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

            job = SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs").lookup_job(JOB_ID)
            if job is not None and job.next_run_time is not None:
                stored = f"; stored job runs {job.next_run_time:%Y-%m-%d %H:%M %Z}"
    except Exception:  # no stored job yet is fine: serve creates it
        stored = ""
    finally:
        engine.dispose()
    return Check(
        OK,
        "scheduler",
        f"digest '{settings.digest_cron}' ({settings.timezone}) next {upcoming:%Y-%m-%d %H:%M %Z}{stored}",
    )


def run(settings: Settings, llm: Any | None = None) -> Iterator[Check]:
    """Every check in order (lazily, so a slow tier ping shows the lines before it)."""
    database = _guard("database", lambda: check_database(settings))
    yield database
    if llm is None:
        from bot.models.llm import LLM

        llm = LLM(settings.tiers)
    for tier in settings.tier_names:
        yield _guard(f"tier {tier}", partial(check_tier, settings, tier, llm))
    yield _guard("slack", lambda: check_slack(settings))
    yield _guard("embedded model", lambda: check_embedded(settings))
    if database.status != FAIL:
        yield _guard("scheduler", lambda: check_scheduler(settings))
    else:
        yield Check(FAIL, "scheduler", "needs the database")
