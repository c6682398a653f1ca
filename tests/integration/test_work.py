"""The durable work queue and in-flight model calls (bot/ledger/work.py, bot/pipeline/worker.py).

Runs on SQLite, and on Postgres when TIERWISE_TEST_DATABASE_URL is set (tests/pg.py).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.adapters.slack.blocks import PROGRESS_TEXT
from bot.core.types import AlsoWrite
from bot.ledger.models import CallInFlight, Replica, RequestRow, WorkItem, utcnow
from bot.ledger.store import Ledger
from bot.ledger.work import REPLICA_ID, WorkQueue
from bot.pipeline.worker import APOLOGY, LATE_NOTE
from tests.slack_helpers import (
    USER,
    BotEnv,
    answers,
    event_body,
    http_bot_fixture,  # noqa: F401 (fixture)
    mention,
    slack_fixture,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.timeout(60)


def _ledger(engine: Any) -> Ledger:
    return engine.ledger


def _age(ledger: Ledger, replica: str, seconds: float = 3600) -> None:
    """Make a replica look dead: its last heartbeat long ago."""
    with ledger.session() as s:
        s.execute(
            update(Replica)
            .where(Replica.id == replica)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )
        s.commit()


def test_accept_is_atomic_with_the_event_claim(engine: Any) -> None:
    queue = WorkQueue(_ledger(engine), replica="A")
    first = queue.accept("Ev1", "mention", {"body": {}}, event_id="Ev1", channel="C1", thread_ts="1.0")
    assert not first.duplicate
    assert queue.accept("Ev1", "mention", {"body": {}}, event_id="Ev1").duplicate
    assert WorkQueue(_ledger(engine), replica="B").accept("Ev1", "mention", {}, event_id="Ev1").duplicate
    assert not _ledger(engine).claim_event("Ev1")  # the engine's own dedupe sees the claim
    [item] = queue.open_items()
    assert (item.key, item.owner, item.stage, item.channel, item.thread_ts) == (
        "Ev1",
        "A",
        "accepted",
        "C1",
        "1.0",
    )


def test_begin_is_for_the_owner_and_only_once(engine: Any) -> None:
    a, b = WorkQueue(_ledger(engine), replica="A"), WorkQueue(_ledger(engine), replica="B")
    a.accept("Ev1", "mention", {})
    assert b.begin("Ev1") is None
    started = a.begin("Ev1")
    assert started is not None and started.stage == "started"
    assert a.begin("Ev1") is None  # a redelivery racing the first listener
    assert a.mark(started.id, message_ts="9.9")
    assert a.finish(started.id)
    assert a.get("Ev1").status == "done"  # type: ignore[union-attr]
    assert not a.mark(started.id, message_ts="1.1")  # closed work takes no more notes


def test_work_of_a_dead_replica_is_taken_over_once(engine: Any) -> None:
    ledger = _ledger(engine)
    dead = WorkQueue(ledger, replica="dead")
    dead.heartbeat()
    for n in range(20):
        dead.accept(f"Ev{n}", "mention", {"n": n})
    alive = [WorkQueue(Ledger(engine.settings.effective_database_url), replica=f"R{i}") for i in range(4)]
    for queue in alive:
        queue.heartbeat()
    assert all(q.take_over() == [] for q in alive)  # the owner's heartbeat is fresh
    _age(ledger, "dead")
    taken: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def sweep(queue: WorkQueue) -> None:
        try:
            taken[queue.replica] = [i.key for i in queue.take_over(limit=8)] + [
                i.key for i in queue.take_over(limit=8)
            ]
        except BaseException as exc:  # a thread's error would otherwise only show as missing keys
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(q,)) for q in alive]
    for t in threads:
        t.start()
    for t in threads:
        t.join(45)
    assert not errors and not any(t.is_alive() for t in threads)
    # 8 calls of up to 8 cover the 20 items only because a call that loses its candidates to a
    # racing sweeper looks again (below); before, on SQLite, it could come back empty.
    keys = [k for ks in taken.values() for k in ks]
    assert sorted(keys) == sorted(f"Ev{n}" for n in range(20))  # every item, each exactly once
    owners = {i.key: i.owner for i in dead.open_items()}
    assert all(owners[k] == r for r, ks in taken.items() for k in ks)
    item = dead.get("Ev0")
    assert item is not None and item.attempts == 1
    assert not dead.mark(item.id, stage="replied")  # the dead one cannot deliver any more


def test_a_sweeper_that_loses_its_candidates_to_another_looks_again(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving behind a once-in-four flake: replica A selects the dead replica's oldest
    work, replica B claims those same rows before A's compare-and-set. A must take the next ones
    instead of returning nothing (on Postgres B skips A's locked rows: the outcome is the same)."""
    from bot.ledger import work

    ledger = _ledger(engine)
    dead = WorkQueue(ledger, replica="dead")
    dead.heartbeat()
    for n in range(10):
        dead.accept(f"Ev{n}", "mention", {"n": n})
    a = WorkQueue(ledger, replica="A")
    b = WorkQueue(Ledger(engine.settings.effective_database_url), replica="B")
    a.heartbeat()
    b.heartbeat()
    _age(ledger, "dead")
    by_b: list[str] = []
    b_swept = threading.Event()
    real_update = work.update

    def update_after_b(*args: Any, **kwargs: Any) -> Any:
        # A has run its select; B sweeps now (once), before A's first claim is even built.
        if threading.current_thread().name == "A" and not b_swept.is_set():
            b_swept.set()
            by_b.extend(i.key for i in b.take_over(limit=5))
        return real_update(*args, **kwargs)

    monkeypatch.setattr(work, "update", update_after_b)
    by_a: list[str] = []
    sweeper = threading.Thread(target=lambda: by_a.extend(i.key for i in a.take_over(limit=5)), name="A")
    sweeper.start()
    sweeper.join(30)
    assert len(by_b) == 5 and len(by_a) == 5
    assert sorted(by_a + by_b) == sorted(f"Ev{n}" for n in range(10))
    owners = {i.key: i.owner for i in dead.open_items()}
    assert all(owners[k] == "A" for k in by_a) and all(owners[k] == "B" for k in by_b)


def test_calls_left_in_flight_by_a_dead_replica_are_interrupted(engine: Any) -> None:
    ledger = _ledger(engine)
    old = utcnow() - timedelta(minutes=5)
    dead, live = WorkQueue(ledger, replica="dead"), WorkQueue(ledger, replica="live")
    dead.heartbeat()
    live.heartbeat()
    _age(ledger, "dead")
    rows = {
        "dead": ("dead", old),
        "live": ("live", old),
        "cli": ("cli:1", old),  # a process that never registered: given an hour
        "gone": ("cli:2", utcnow() - timedelta(hours=2)),
    }
    ids = {}
    with ledger.session() as s:
        for name, (worker, started) in rows.items():
            row = RequestRow(skill="ask", tier="small", model_requested="openai/fast", created_at=started)
            row.user_id, row.channel = "U1", "C1"
            s.add(CallInFlight(id=row.id, worker=worker, started_at=started, row=row.model_dump_json()))
            ids[name] = row.id
        s.commit()
    assert live.close_interrupted() == 2
    with ledger.session() as s:
        left = {c.id for c in s.exec(select(CallInFlight))}
    assert left == {ids["live"], ids["cli"]}
    for name in ("dead", "gone"):
        closed = ledger.get_request(ids[name])
        assert closed is not None and closed.status == "interrupted" and not closed.cost_known
        assert (closed.tier, closed.model_requested, closed.user_id, closed.channel) == (
            "small",
            "openai/fast",
            "U1",
            "C1",
        )
        assert "interrupted" in (closed.error or "")
    assert abs(ledger.get_request(ids["dead"]).created_at - old) < timedelta(seconds=1)  # type: ignore[union-attr]
    assert ledger.get_request(ids["live"]) is None
    assert live.close_interrupted() == 0
    from bot.ledger import rollups

    with ledger.session() as s:  # the digest and the review count them: errors of unknown cost
        figures = rollups.raw_figures(s, utcnow() - timedelta(days=1), utcnow())[("ask", "small")]
    assert (figures.requests, figures.errors, figures.unknown_cost) == (2, 2, 2)


def test_a_model_call_is_on_the_ledger_while_it_runs(engine: Any, script: Any) -> None:
    from bot.core.types import Request

    seen: list[tuple[str, str]] = []

    def reply(tier: str, messages: list[dict[str, Any]]) -> str:
        engine.ledger.calls.flush(everything=True)  # nothing pending: the note was written before the call
        with engine.ledger.session() as s:
            seen.extend(
                (c.worker, RequestRow.model_validate_json(c.row).skill) for c in s.exec(select(CallInFlight))
            )
        return "fine"

    script.default = reply
    answer = engine.handle(Request(text="where is the office?"))
    assert answer.ok
    assert seen == [(REPLICA_ID, "ask")]
    with engine.ledger.session() as s:
        assert list(s.exec(select(CallInFlight))) == []  # gone in the commit of the request row
    [row] = engine.ledger.requests_since(utcnow() - timedelta(minutes=1))
    assert (row.id, row.status, row.response, row.worker) == (answer.request_id, "ok", "fine", REPLICA_ID)


def test_the_note_is_on_disk_before_the_model_is_asked(engine: Any, script: Any) -> None:
    """No window: a second connection sees the note the moment the model is called (issue 13)."""
    from bot.core.types import Request

    other = Ledger(engine.settings.effective_database_url, migrate=False)
    seen: list[int] = []

    def reply(tier: str, messages: list[dict[str, Any]]) -> str:
        with other.session() as s:  # no flush: whatever is committed, as a sweeping replica sees it
            seen.append(len(list(s.exec(select(CallInFlight)))))
        return "fine"

    script.default = reply
    assert engine.handle(Request(text="where is the office?")).ok
    assert seen == [1]
    with other.session() as s:
        assert list(s.exec(select(CallInFlight))) == []


def test_a_note_that_cannot_be_written_does_not_stop_the_call(
    engine: Any, script: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database away at the call's start: the call goes on, the note is written once it is back."""
    from sqlalchemy.exc import OperationalError

    from bot.core.types import Request

    calls = engine.ledger.calls
    insert, failures = calls._insert, [1]

    def flaky(notes: list[dict[str, object]]) -> None:
        if failures[0] > 0:
            failures[0] -= 1
            raise OperationalError("INSERT", {}, Exception("database is locked"))
        insert(notes)

    monkeypatch.setattr(calls, "_insert", flaky)
    seen: list[int] = []

    def reply(tier: str, messages: list[dict[str, Any]]) -> str:
        calls.flush(everything=True)  # the writer thread's retry, done here at once
        with engine.ledger.session() as s:
            seen.append(len(list(s.exec(select(CallInFlight)))))
        return "fine"

    script.default = reply
    assert engine.handle(Request(text="where is the office?")).ok
    assert seen == [1]
    with engine.ledger.session() as s:
        assert list(s.exec(select(CallInFlight))) == []


def test_a_quick_call_writes_its_note_and_removes_it_in_the_request_rows_commit(engine: Any) -> None:
    """Even the quickest call is noted before the model is asked (no grace period), and the note
    goes in the very commit that records the request row: never a row without its note gone, nor
    a note left behind."""
    from sqlalchemy import event

    from bot.core.types import Request

    log: list[tuple[str, int]] = []  # (statement or "COMMIT", connection) in the order they ran

    def executed(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        log.append((" ".join(statement.split()[:3]).upper(), id(conn.connection.dbapi_connection)))

    def committed(conn: Any) -> None:
        log.append(("COMMIT", id(conn.connection.dbapi_connection)))

    db = engine.ledger.engine
    event.listen(db, "before_cursor_execute", executed)
    event.listen(db, "commit", committed)
    try:
        answer = engine.handle(Request(text="where is the office?"))
    finally:
        event.remove(db, "before_cursor_execute", executed)
        event.remove(db, "commit", committed)
    assert answer.ok
    statements = [s for s, _ in log]
    assert statements.count("INSERT INTO CALLS_IN_FLIGHT") == 1  # written, though the call was quick
    noted = statements.index("INSERT INTO CALLS_IN_FLIGHT")
    assert statements[noted + 1] == "COMMIT"  # committed on its own, before the call
    removed = statements.index("DELETE FROM CALLS_IN_FLIGHT")
    recorded = statements.index("INSERT INTO REQUESTS")
    assert noted < removed and noted < recorded
    connection = log[removed][1]
    assert log[recorded][1] == connection  # one transaction: same connection, no commit between
    first, last = min(removed, recorded), max(removed, recorded)
    assert ("COMMIT", connection) not in log[first:last]
    assert ("COMMIT", connection) in log[last:]
    with engine.ledger.session() as s:
        assert list(s.exec(select(CallInFlight))) == []
    assert not engine.ledger.calls._written and not engine.ledger.calls._pending  # nothing kept in memory


# Take-over through the Slack listeners ---------------------------------------------------------


def _dead_mention(http_bot: BotEnv, event_id: str, *, age_s: float = 0, placeholder: bool = True) -> str:
    """A mention accepted by a replica that died after posting its placeholder."""
    slack = http_bot.slack
    ts = slack.add_message("C111", "<@UBOT> where is the office?", USER)
    body = event_body(mention("where is the office?", ts), event_id)
    ledger = http_bot.engine.ledger
    dead = WorkQueue(ledger, replica="dead")
    dead.heartbeat()
    item = dead.accept(
        event_id, "mention", {"body": body, "bot_user_id": "UBOT", "bot_id": "B1"}, event_id=event_id
    ).item
    assert item is not None
    dead.begin(event_id)
    if placeholder:
        posted = http_bot.app.client.chat_postMessage(channel="C111", thread_ts=ts, text=PROGRESS_TEXT)
        dead.mark(item.id, message_ts=posted["ts"])
    with ledger.session() as s:
        s.execute(
            update(WorkItem)
            .where(WorkItem.id == item.id)
            .values(created_at=utcnow() - timedelta(seconds=age_s))
        )
        s.commit()
    _age(ledger, "dead")
    return ts


def test_a_dead_replicas_mention_is_answered_once_replacing_its_placeholder(
    http_bot: BotEnv, script: Any
) -> None:
    ts = _dead_mention(http_bot, "EvDEAD1")
    bot = http_bot.app.tierwise
    assert bot.work.sweep() == 1
    http_bot.settle()
    [answer] = answers(http_bot.slack)
    assert answer["thread_ts"] == ts
    assert LATE_NOTE in str(answer["blocks"])
    assert not [m for m in http_bot.slack.bot_messages("C111") if m["text"] == PROGRESS_TEXT]
    assert bot.work.sweep() == 0
    # Slack's redelivery of the same event changes nothing.
    assert http_bot.event(event_body(mention("where is the office?", ts), "EvDEAD1"), retry=1).status == 200
    http_bot.settle()
    assert len(answers(http_bot.slack)) == 1
    assert len(script.calls) == 1
    [row] = http_bot.rows()
    assert row.status == "ok" and row.event_id == "EvDEAD1"


def test_work_past_the_age_limit_gets_an_apology(http_bot: BotEnv, script: Any) -> None:
    _dead_mention(http_bot, "EvOLD1", age_s=http_bot.engine.settings.work_max_age_s + 60)
    assert http_bot.app.tierwise.work.sweep() == 1
    http_bot.settle()
    texts = [m["text"] for m in http_bot.slack.bot_messages("C111")]
    assert texts == [APOLOGY]  # the placeholder became the apology
    assert script.calls == []
    item = WorkQueue(http_bot.engine.ledger).get("EvOLD1")
    assert item is not None and item.status == "done"


def test_a_mentions_reply_is_kept_in_the_commit_that_records_its_request(http_bot: BotEnv) -> None:
    """No moment where the request is recorded but its reply is not kept (a kill there would ask
    the model again), and one commit fewer between the model's last token and the answer's end."""
    from sqlalchemy import event

    log: list[tuple[str, int]] = []  # ("INSERT INTO REQUESTS" | "REPLIED" | "COMMIT", connection)

    def executed(conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        head = " ".join(statement.split()[:3]).upper()
        if head.startswith("UPDATE WORK_ITEMS") and "replied" in repr(params):
            head = "REPLIED"
        log.append((head, id(conn.connection.dbapi_connection)))

    def committed(conn: Any) -> None:
        log.append(("COMMIT", id(conn.connection.dbapi_connection)))

    db = http_bot.engine.ledger.engine
    event.listen(db, "before_cursor_execute", executed)
    event.listen(db, "commit", committed)
    try:
        ts = http_bot.slack.add_message("C111", "<@UBOT> where is the office?", USER)
        assert http_bot.event(event_body(mention("where is the office?", ts), "EvKEPT")).status == 200
        http_bot.settle()
    finally:
        event.remove(db, "before_cursor_execute", executed)
        event.remove(db, "commit", committed)
    [answer] = answers(http_bot.slack)
    [row] = http_bot.rows()
    heads = [head for head, _ in log]
    assert heads.count("REPLIED") == 1  # written once: no second `replied` note after the engine
    recorded, kept = heads.index("INSERT INTO REQUESTS"), heads.index("REPLIED")
    connection = log[recorded][1]
    assert recorded < kept and log[kept][1] == connection
    assert ("COMMIT", connection) not in log[recorded:kept]
    item = WorkQueue(http_bot.engine.ledger).get("EvKEPT")
    assert item is not None and item.request_id == row.id and item.status == "done"
    assert http_bot.engine.ledger.request_for_message("C111", answer["ts"]) == row.id


def test_a_reply_made_before_the_crash_is_delivered_without_a_second_model_call(
    http_bot: BotEnv, script: Any
) -> None:
    from bot.core.types import Request

    _dead_mention(http_bot, "EvREPLIED", placeholder=False)
    ledger = http_bot.engine.ledger
    reply = http_bot.engine.handle(Request(text="where is the office?", event_id="EvREPLIED", claimed=True))
    from bot.pipeline.worker import Job

    dead = WorkQueue(ledger, replica="dead")
    item = dead.get("EvREPLIED")
    assert item is not None
    with ledger.session() as s:  # what the dead replica noted just before it died
        s.execute(update(WorkItem).where(WorkItem.id == item.id).values(owner="dead"))
        s.commit()
    assert Job(dead, item).replied(reply)
    calls = len(script.calls)
    assert http_bot.app.tierwise.work.sweep() == 1
    http_bot.settle()
    [answer] = answers(http_bot.slack)
    assert len(script.calls) == calls
    assert http_bot.engine.ledger.request_for_message("C111", answer["ts"]) == reply.request_id
    assert len(http_bot.rows()) == 1


def test_events_are_persisted_before_the_ack(http_bot: BotEnv, script: Any, tmp_path: Path) -> None:
    ts = http_bot.slack.add_message("C111", "<@UBOT> hi", USER)
    assert http_bot.event(event_body(mention("hi", ts), "EvACK1")).status == 200
    # The row exists the moment the ack is back (the listener may not have started yet).
    item = WorkQueue(http_bot.engine.ledger).get("EvACK1")
    assert item is not None and item.kind == "mention"
    http_bot.settle()
    item = WorkQueue(http_bot.engine.ledger).get("EvACK1")
    assert item is not None and (item.status, item.stage) == ("done", "delivered")
    assert item.request_id == http_bot.rows()[0].id


# The database away while serving, and concurrent replicas ----------------------------------------


class FlakyQueue(WorkQueue):
    """A queue whose database is down for the first `down` calls to accept()."""

    def __init__(self, ledger: Ledger, down: int) -> None:
        super().__init__(ledger, replica="flaky")
        self.down = down

    def accept(self, *args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import OperationalError

        if self.down > 0:
            self.down -= 1
            raise OperationalError("INSERT", {}, Exception("database is unreachable"))
        return super().accept(*args, **kwargs)


def test_an_ack_survives_the_database_being_down_and_the_work_is_persisted_later(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.pipeline.worker as worker_mod
    from bot.pipeline.worker import Worker

    monkeypatch.setattr(worker_mod, "PERSIST_BACKOFF", (0.01, 0.01, 0.01))
    queue = FlakyQueue(_ledger(engine), down=2)
    work = Worker(queue)
    assert work.accept("EvDOWN", "mention", {"body": {}}, event_id="EvDOWN")  # the ack goes out
    assert queue.get("EvDOWN") is None  # not persisted yet
    with work.running("EvDOWN") as job:
        assert job is not None and job.tracked  # persisted by the listener, after one more failure
        item = queue.get("EvDOWN")
        assert item is not None and item.stage == "started"
    assert queue.get("EvDOWN").status == "done"  # type: ignore[union-attr]
    # Down for good: the work is still answered, without durability.
    flaky = Worker(FlakyQueue(_ledger(engine), down=100))
    assert flaky.accept("EvGONE", "mention", {})
    with flaky.running("EvGONE") as job:
        assert job is not None and not job.tracked


def test_replicas_rolling_up_the_same_days_at_once(engine: Any) -> None:
    from datetime import date

    from bot.ledger import rollups
    from bot.ledger.models import DailyRollup, RollupDay

    ledger = _ledger(engine)
    days = [date(2026, 11, d) for d in range(2, 9)]
    for n, day in enumerate(days):
        for k in range(3):
            stamp = rollups.day_start(day) + timedelta(hours=k + 1)
            ledger.record(RequestRow(skill="ask", tier="small", cost_usd=0.01 * (n + 1), created_at=stamp))
    replicas = [Ledger(engine.settings.effective_database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def roll(other: Ledger) -> None:
        try:
            with other.session() as s:
                rollups.ensure(s, days)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=roll, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with ledger.session() as s:
        assert len(list(s.exec(select(RollupDay)))) == len(days)
        rolled = list(s.exec(select(DailyRollup)))
    assert sorted((r.day, r.requests) for r in rolled) == [(d.isoformat(), 3) for d in days]
    assert sum(r.cost_sum for r in rolled) == pytest.approx(3 * 0.01 * sum(range(1, 8)))


def test_a_dead_replicas_slash_command_is_answered_through_its_response_url(
    http_bot: BotEnv, script: Any
) -> None:
    from tests.slack_helpers import slash

    body = slash("/ask", "How do I get VPN access?", http_bot.slack, channel="CNOTIN")
    dead = WorkQueue(http_bot.engine.ledger, replica="dead")
    dead.heartbeat()
    assert not dead.accept(f"command:{body['trigger_id']}", "command", {"body": body}).duplicate
    _age(http_bot.engine.ledger, "dead")
    http_bot.slack.fail_next("chat.postMessage", status=200, error="not_in_channel", times=3)
    assert http_bot.app.tierwise.work.sweep() == 1
    http_bot.settle()
    [posted] = [c for c in http_bot.slack.calls if c.method.startswith("response_url:")]
    assert posted.params["response_type"] == "in_channel"
    assert LATE_NOTE in str(posted.params["blocks"])
    [row] = http_bot.rows()
    assert row.status == "ok" and row.channel == "CNOTIN"


def test_durable_work_is_retried_while_the_database_fails(
    http_bot: BotEnv, script: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    import bot.pipeline.worker as worker_mod

    monkeypatch.setattr(worker_mod, "DB_RETRY_BACKOFF", (0.05, 0.05, 0.05))
    ledger = http_bot.engine.ledger
    record, failures = ledger.record, [2]

    def flaky_record(row: RequestRow, also: AlsoWrite | None = None) -> RequestRow:
        if failures[0] > 0:
            failures[0] -= 1
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return record(row, also)

    monkeypatch.setattr(ledger, "record", flaky_record)
    ts = http_bot.slack.add_message("C111", "<@UBOT> where is the office?", USER)
    assert http_bot.event(event_body(mention("where is the office?", ts), "EvFLAKY")).status == 200
    http_bot.settle()
    [answer] = answers(http_bot.slack)
    assert "Sorry" not in answer["text"]
    assert len(script.calls) == 3  # asked again after each failed write
    [row] = http_bot.rows()
    assert row.status == "ok" and row.event_id == "EvFLAKY"


def test_a_reply_kept_for_delivery_round_trips_with_its_sources() -> None:
    """A reply made before a crash is stored as JSON and delivered as is: citations come back typed."""
    import dataclasses
    import json

    from bot.context.packs import Citation
    from bot.core.types import Reply
    from bot.pipeline.worker import reply_from

    cited = Citation(pack="company-handbook", doc="it/vpn-access.md", title="VPN", section="Steps")
    reply = Reply(
        text="Use ZPA.", status="ok", skill="ask", sources=("it/vpn-access.md",), citations=(cited,)
    )
    stored = json.loads(json.dumps(dataclasses.asdict(reply), default=str))
    assert reply_from(stored) == reply


def test_queue_depth_and_oldest_age_for_the_metrics(make_engine: Any) -> None:
    ledger = Ledger(make_engine().settings.effective_database_url)
    queue = WorkQueue(ledger)
    assert (queue.open_count(), queue.oldest_open_age()) == (0, 0.0)
    with ledger.session() as s:
        s.add(
            WorkItem(
                key="Ev1",
                kind="mention",
                payload="{}",
                owner="r1",
                created_at=utcnow() - timedelta(seconds=90),
            )
        )
        s.add(WorkItem(key="Ev2", kind="mention", payload="{}", owner="r1"))
        s.add(WorkItem(key="Ev3", kind="mention", payload="{}", owner="r1", status="done"))
        s.commit()
    assert queue.open_count() == 2
    assert 89 <= queue.oldest_open_age() < 200


# Delivery retried after Slack failed ---------------------------------------------------------------


def _slack_down_for(http_bot: BotEnv, attempts: int) -> None:
    """chat.postMessage answers 500 for `attempts` deliveries (each is 3 calls: slack_sdk retries 5xx twice)."""
    http_bot.app.tierwise.progress_delay = 60  # no placeholder: every postMessage is the answer
    http_bot.slack.fail_next("chat.postMessage", status=500, times=3 * attempts)


def test_an_answer_slack_would_not_take_is_posted_again_without_a_second_model_call(
    http_bot: BotEnv, script: Any
) -> None:
    work = http_bot.app.tierwise.work
    work.delivery_backoff_s = 0.01
    _slack_down_for(http_bot, 2)
    ts = http_bot.slack.add_message("C111", "<@UBOT> where is the office?", USER)
    assert http_bot.event(event_body(mention("where is the office?", ts), "EvSLACKDOWN")).status == 200
    http_bot.settle()
    assert answers(http_bot.slack) == []
    item = WorkQueue(http_bot.engine.ledger).get("EvSLACKDOWN")
    assert item is not None and (item.status, item.stage) == ("open", "replied") and item.reply
    assert "undelivered (try 1 of 6)" in (item.detail or ""), [
        c.status for c in http_bot.slack.calls_to("chat.postMessage")
    ]
    for expected_try in (2, None):  # one more failure, then Slack is back
        time.sleep(0.05)
        assert work.redeliver_due() == 1
        http_bot.settle()
        item = WorkQueue(http_bot.engine.ledger).get("EvSLACKDOWN")
        assert item is not None
        if expected_try is not None:
            calls = [(c.status, c.params.get("text")) for c in http_bot.slack.calls_to("chat.postMessage")]
            assert answers(http_bot.slack) == [] and f"(try {expected_try} of 6)" in (item.detail or ""), (
                calls
            )
    [answer] = answers(http_bot.slack)
    assert answer["thread_ts"] == ts and LATE_NOTE not in str(answer["blocks"])
    assert (item.status, item.stage) == ("done", "delivered")
    assert len(script.calls) == 1  # the kept reply was posted, the model asked once
    assert len(http_bot.slack.calls_to("chat.postMessage")) == 3 * 2 + 1
    assert work.redeliver_due(now=time.monotonic() + 3600) == 0  # nothing left to retry
    [row] = http_bot.rows()
    assert row.status == "ok" and row.delivery == "post"
    assert http_bot.engine.ledger.request_for_message("C111", answer["ts"]) == row.id


def test_delivery_gives_up_after_the_configured_tries(
    http_bot: BotEnv, script: Any, caplog: pytest.LogCaptureFixture
) -> None:
    work = http_bot.app.tierwise.work
    work.delivery_backoff_s, work.delivery_tries = 0.01, 2
    _slack_down_for(http_bot, 5)
    ts = http_bot.slack.add_message("C111", "<@UBOT> where is the office?", USER)
    assert http_bot.event(event_body(mention("where is the office?", ts), "EvSLACKGONE")).status == 200
    http_bot.settle()
    time.sleep(0.05)
    with caplog.at_level("ERROR", logger="bot.pipeline.worker"):
        assert work.redeliver_due() == 1
        http_bot.settle()
    assert "giving up delivering work" in caplog.text and "after 2 tries" in caplog.text
    item = WorkQueue(http_bot.engine.ledger).get("EvSLACKGONE")
    assert item is not None and item.status == "failed" and "undelivered after 2 tries" in (item.detail or "")
    [row] = http_bot.rows()
    assert row.status == "ok" and row.delivery == "undelivered"  # the ledger says it never reached Slack
    assert len(script.calls) == 1
    time.sleep(0.05)
    assert work.redeliver_due() == 0
    assert answers(http_bot.slack) == []
