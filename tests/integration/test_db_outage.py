"""The database away while serving (issue 13, "Bad input"): the PostgreSQL server of the run is
stopped under a serving bot, then started again.

Needs TIERWISE_TEST_DATABASE_URL on a throwaway cluster that this process may stop and start (the
one `.ci/postgres.sh` starts: a Unix socket directory holding the cluster's `data`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.ledger.work import WorkQueue
from tests import pg
from tests.slack_helpers import (
    USER,
    BotEnv,
    answers,
    event_body,
    http_bot_fixture,  # noqa: F401 (fixture)
    mention,
    slack_fixture,  # noqa: F401 (fixture)
)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not pg.on_postgres, reason="stops and starts the run's PostgreSQL server"),
]


def _data_dir() -> Path | None:
    from sqlalchemy.engine import make_url

    from bot.ledger.db import normalize_url

    host = make_url(normalize_url(pg.BASE_URL or "")).query.get("host")
    data = Path(str(host)) / "data" if host else None
    return data if data is not None and (data / "postmaster.opts").exists() else None


def _pg_ctl(data: Path, *args: str) -> None:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    command = [str(bins[-1]) if bins else "pg_ctl", "-D", str(data), "-w", *args]
    if os.getuid() == 0:  # the cluster belongs to `postgres` (see .ci/postgres.sh)
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.fixture
def server() -> Iterator[tuple[Path, list[str]]]:
    data = _data_dir()
    if data is None:
        pytest.skip("the server is not a local throwaway cluster")
    # postmaster.opts: the server binary, then its options as started (socket dir, fsync off, …).
    opts = shlex.split((data / "postmaster.opts").read_text())[1:]
    yield data, opts
    if not (data / "postmaster.pid").exists():  # never leave the run without its server
        _pg_ctl(data, "-l", str(data.parent / "server.log"), "-o", shlex.join(opts), "start")


def test_an_event_arriving_while_postgres_is_down_is_acked_and_answered_once_it_is_back(
    http_bot: BotEnv, script: Any, server: tuple[Path, list[str]], postgres_database: str | None
) -> None:
    data, opts = server
    slack = http_bot.slack
    ts = slack.add_message("C111", "<@UBOT> where is the office?", USER)
    _pg_ctl(data, "-m", "fast", "stop")
    started = time.monotonic()
    restart = threading.Timer(
        3.0, _pg_ctl, (data, "-l", str(data.parent / "server.log"), "-o", shlex.join(opts), "start")
    )
    restart.start()
    try:
        acked = http_bot.event(event_body(mention("where is the office?", ts), "EvPGDOWN"))
        ack_s = time.monotonic() - started
        assert acked.status == 200 and ack_s < 2.5  # Slack's limit is 3 s; the server is still down
        http_bot.settle(timeout=60)
    finally:
        restart.join()
    [answer] = answers(slack)
    assert answer["thread_ts"] == ts and "Sorry" not in answer["text"]
    took = time.monotonic() - started
    item = WorkQueue(http_bot.engine.ledger).get("EvPGDOWN")  # persisted once the server was back
    assert item is not None and (item.status, item.stage) == ("done", "delivered")
    [row] = http_bot.rows()
    assert row.status == "ok" and row.event_id == "EvPGDOWN"
    assert len(script.calls) == 1
    # A redelivery of the same event is still a duplicate.
    assert http_bot.event(event_body(mention("where is the office?", ts), "EvPGDOWN"), retry=1).status == 200
    http_bot.settle()
    assert len(answers(slack)) == 1
    print(f"\nPostgres down 3 s: ack {ack_s * 1000:.0f} ms; answered {took:.1f} s after the stop")


def test_postgres_down_during_the_model_call_loses_nothing_and_asks_the_model_once(
    http_bot: BotEnv, script: Any, server: tuple[Path, list[str]], postgres_database: str | None
) -> None:
    """The server stops while the model answers and is back 6 s later: the answer's ledger row is
    written when it returns (the call is not made again), the work is closed, the answer posted once."""
    data, opts = server
    restart = threading.Timer(
        6.0, _pg_ctl, (data, "-l", str(data.parent / "server.log"), "-o", shlex.join(opts), "start")
    )

    def reply(tier: str, messages: list[dict[str, Any]]) -> str:
        _pg_ctl(data, "-m", "fast", "stop")
        restart.start()
        return "The office is on floor 2."

    script.default = reply
    slack = http_bot.slack
    ts = slack.add_message("C111", "<@UBOT> where is the office?", USER)
    started = time.monotonic()
    try:
        assert http_bot.event(event_body(mention("where is the office?", ts), "EvPGMID")).status == 200
        http_bot.settle(timeout=90)
    finally:
        if restart.is_alive() or restart.finished.is_set():
            restart.join()
    [answer] = answers(slack)
    assert "floor 2" in answer["text"]
    assert len(script.calls) == 1  # the row was written again, not the model asked again
    [row] = http_bot.rows()
    assert row.status == "ok" and row.event_id == "EvPGMID"
    item = WorkQueue(http_bot.engine.ledger).get("EvPGMID")
    assert item is not None and (item.status, item.stage) == ("done", "delivered")
    with http_bot.engine.ledger.session() as s:
        from sqlmodel import select

        from bot.ledger.models import CallInFlight

        assert list(s.exec(select(CallInFlight))) == []
    print(f"\nPostgres down 6 s mid-call: answered {time.monotonic() - started:.1f} s after the mention")
