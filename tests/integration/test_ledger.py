"""The ledger: migrations, SQLite pragmas, feedback, event claims, tier history and usage figures."""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from bot.config import load_settings
from bot.core.types import AlsoWrite
from bot.ledger import db, retention
from bot.ledger.models import Feedback, RequestRow, utcnow
from bot.ledger.store import Ledger, UnknownRequest
from tests.pg import sqlite_only


@pytest.fixture
def url(tmp_path: Path, postgres_database: str | None) -> str:
    if postgres_database:  # the Postgres run (tests/pg.py): a fresh database per test
        return postgres_database
    return f"sqlite:///{(tmp_path / 'db' / 'ledger.db').as_posix()}"


@pytest.fixture
def ledger(url: str) -> Ledger:
    return Ledger(url)


def head_revision(url: str) -> str:
    return ScriptDirectory.from_config(db.alembic_config(url)).get_current_head()


# ---------------------------------------------------------------------------------------------
# Migrations


def test_upgrade_creates_every_table(ledger: Ledger, url: str) -> None:
    tables = set(db.table_names(ledger.engine))
    assert set(SQLModel.metadata.tables) <= tables
    assert {"requests", "feedback", "tier_assignments", "seen_events"} <= tables
    assert tables - set(SQLModel.metadata.tables) == {"alembic_version"}
    assert db.current_revision(ledger.engine) == head_revision(url)


def test_migrations_match_the_models(ledger: Ledger) -> None:
    with ledger.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


@sqlite_only
def test_upgrade_is_idempotent_and_keeps_data(ledger: Ledger, url: str) -> None:
    ledger.record(RequestRow(id="keepme", skill="ask"))
    head = head_revision(url)
    assert db.upgrade(ledger.engine) == head
    assert db.upgrade(db.make_engine(url)) == head  # a second process / engine
    again = Ledger(url)
    assert again.get_request("keepme") is not None
    with sqlite3.connect(url.split("///", 1)[1]) as raw:
        assert raw.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone() == (head,)


@sqlite_only
def test_ledger_without_migration_does_not_create_tables(url: str) -> None:
    bare = Ledger(url, migrate=False)
    assert db.table_names(bare.engine) == []
    assert db.current_revision(bare.engine) is None


@sqlite_only
def test_sqlite_uses_wal_and_a_busy_timeout(ledger: Ledger, url: str) -> None:
    with ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # WAL is persistent in the file: a plain sqlite3 connection sees it too.
    with sqlite3.connect(url.split("///", 1)[1]) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@sqlite_only
def test_make_engine_creates_the_parent_folder(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.db"
    Ledger(f"sqlite:///{target.as_posix()}")
    assert target.is_file()


def test_rows_round_trip_with_aware_times(ledger: Ledger) -> None:
    row = ledger.record(RequestRow(skill="ask", tier="small", cost_usd=0.25, prompt_tokens=3))
    back = ledger.get_request(row.id)
    assert back is not None
    assert back.created_at.tzinfo is not None
    assert abs(back.created_at - row.created_at) < timedelta(seconds=1)
    assert (back.skill, back.tier, back.cost_usd, back.prompt_tokens) == ("ask", "small", 0.25, 3)
    assert ledger.get_request("missing") is None


def _record_together(
    ledger: Ledger, rows: list[RequestRow], also: dict[str, AlsoWrite] | None = None
) -> dict[str, BaseException | None]:
    """Record `rows` from a thread each, released at once: they queue while the write turn is held."""
    outcome: dict[str, BaseException | None] = {}

    def record(row: RequestRow) -> None:
        try:
            ledger.record(row, (also or {}).get(row.id))
            outcome[row.id] = None
        except Exception as exc:
            outcome[row.id] = exc

    with ledger._write_turn:
        threads = [threading.Thread(target=record, args=(row,)) for row in rows]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(ledger._queued) < len(rows) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(ledger._queued) == len(rows)
    for thread in threads:
        thread.join(10)
    return outcome


def test_rows_recorded_together_share_one_commit_and_settle_their_calls(ledger: Ledger) -> None:
    """Answers that end together are written in one transaction (group commit), each call's
    in-flight note deleted in it, and every caller returns only once its row is committed."""
    rows = [RequestRow(skill="ask", tier="small", prompt_tokens=i) for i in range(8)]
    for row in rows:
        ledger.start_call(row, "replica-1")
    commits: list[int] = []
    event.listen(ledger.engine, "commit", lambda _conn: commits.append(1))
    outcome = _record_together(ledger, rows)
    assert outcome == {row.id: None for row in rows}
    assert len(commits) == 1
    assert all(ledger.get_request(row.id) is not None for row in rows)
    with ledger.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM calls_in_flight")).scalar() == 0


def test_a_bad_row_in_a_group_commit_fails_only_its_own_caller(ledger: Ledger) -> None:
    first = ledger.record(RequestRow(skill="ask", tier="small"))
    good = [RequestRow(skill="ask", tier="small") for _ in range(3)]
    again = RequestRow(id=first.id, skill="ask", tier="large")  # the same primary key: refused
    outcome = _record_together(ledger, [good[0], again, *good[1:]])
    assert isinstance(outcome[first.id], IntegrityError)
    assert [outcome[row.id] for row in good] == [None, None, None]
    assert all(ledger.get_request(row.id) is not None for row in good)
    stored = ledger.get_request(first.id)
    assert stored is not None and stored.tier == "small"


def _rating(row: RequestRow, told: list[str], fail: bool = False) -> AlsoWrite:
    """A caller's write that refers to the row (a rating of it); `told` lists the committed ones."""

    def write(s: Session) -> Callable[[], None]:
        if fail:
            raise ValueError("the caller's write is broken")
        s.add(Feedback(request_id=row.id, user_id="U1", score=1, source="test"))
        return lambda: told.append(row.id)

    return write


def _ratings(ledger: Ledger) -> set[str]:
    with ledger.session() as s:
        return {f.request_id for f in s.exec(select(Feedback))}


def test_a_callers_write_is_committed_with_the_row_and_told_after(ledger: Ledger) -> None:
    """Durable work keeps its reply this way: the caller's write in the commit of the row (which it
    may refer to), and the caller told only once that commit is done."""
    row = RequestRow(skill="ask", tier="small")
    told: list[str] = []
    commits: list[int] = []

    def write(s: Session) -> Callable[[], None]:
        _rating(row, told)(s)
        return lambda: told.append(f"after {len(commits)} commit(s)")

    event.listen(ledger.engine, "commit", lambda _conn: commits.append(1))
    ledger.record(row, write)
    assert told == ["after 1 commit(s)"]
    assert _ratings(ledger) == {row.id}
    assert ledger.get_request(row.id) is not None


@sqlite_only
def test_a_row_whose_commit_was_refused_is_inserted_on_the_next_try(
    ledger: Ledger, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver refused the commit (not the row): the connection, whose transaction may still be
    open, is not used again, and the retry inserts the row anew (after the rollback it is a detached
    object with an identity, which `add` alone would not insert)."""
    import bot.ledger.store as store

    monkeypatch.setattr(store, "RECORD_BACKOFF", (0.01,))
    refusals = [1]
    commit = db.GatedConnection.commit

    def refuse_once(conn: db.GatedConnection) -> None:
        if refusals[0]:
            refusals[0] -= 1
            raise sqlite3.OperationalError("disk I/O error")
        commit(conn)

    monkeypatch.setattr(db.GatedConnection, "commit", refuse_once)
    row = ledger.record(RequestRow(skill="ask", tier="small"))
    assert refusals == [0]
    assert ledger.get_request(row.id) is not None
    gate = db.gate_for(url.split("///", 1)[1])
    assert gate is not None and gate.owner is None  # the refused connection let the gate go


def test_a_callers_write_that_fails_leaves_the_row_recorded_alone(ledger: Ledger) -> None:
    """The request row is the record of a paid call: a caller's broken write must not lose it."""
    row = RequestRow(skill="ask", tier="small")
    told: list[str] = []
    assert ledger.record(row, _rating(row, told, fail=True)) is row
    assert told == []
    assert ledger.get_request(row.id) is not None
    assert _ratings(ledger) == set()


def test_in_a_group_commit_only_the_failing_callers_write_is_left_out(ledger: Ledger) -> None:
    rows = [RequestRow(skill="ask", tier="small") for _ in range(4)]
    told: list[str] = []
    also = {row.id: _rating(row, told, fail=i == 1) for i, row in enumerate(rows)}
    outcome = _record_together(ledger, rows, also)
    assert outcome == {row.id: None for row in rows}
    assert all(ledger.get_request(row.id) is not None for row in rows)
    expected = {rows[0].id, rows[2].id, rows[3].id}
    assert _ratings(ledger) == expected
    assert sorted(told) == sorted(expected)


# ---------------------------------------------------------------------------------------------
# Feedback


def test_feedback_is_one_per_user_per_request(ledger: Ledger) -> None:
    req = ledger.record(RequestRow(skill="ask"))
    row, created = ledger.add_feedback(req.id, "U1", 1, "great")
    assert created and row.score == 1
    row, created = ledger.add_feedback(req.id, "U1", -1, None, source="slack")
    assert not created
    [only] = ledger.feedback_for(req.id)
    assert (only.user_id, only.score, only.comment, only.source) == ("U1", -1, "great", "slack")
    assert only.updated_at >= only.created_at
    ledger.add_feedback(req.id, "U1", -1, "actually wrong")
    assert [f.comment for f in ledger.feedback_for(req.id)] == ["actually wrong"]
    _, created = ledger.add_feedback(req.id, "U2", 1)
    assert created
    assert sorted((f.user_id, f.score) for f in ledger.feedback_for(req.id)) == [("U1", -1), ("U2", 1)]


def test_feedback_for_unknown_request_raises(ledger: Ledger) -> None:
    with pytest.raises(UnknownRequest):
        ledger.add_feedback("no-such-id", "U1", 1)
    with ledger.session() as s:
        assert s.query(Feedback).count() == 0


@pytest.mark.parametrize("score", [0, 2, -2])
def test_feedback_score_must_be_plus_or_minus_one(ledger: Ledger, score: int) -> None:
    req = ledger.record(RequestRow(skill="ask"))
    with pytest.raises(ValueError):
        ledger.add_feedback(req.id, "U1", score)


# ---------------------------------------------------------------------------------------------
# Events


def test_claim_event_once_then_again_after_expiry(ledger: Ledger, url: str) -> None:
    assert ledger.claim_event("Ev1", ttl_hours=72)
    assert not ledger.claim_event("Ev1", ttl_hours=72)
    assert not Ledger(url).claim_event("Ev1")  # another process, same database
    assert ledger.claim_event("Ev2")
    assert ledger.claim_event("Old", ttl_hours=-1)  # already expired when stored
    # The nightly purge (bot.ledger.retention) deletes event ids past their use.
    assert retention.purge(ledger, load_settings()).deleted["seen_events"] == 1
    assert ledger.claim_event("Old")  # a new delivery long after: handled again
    assert not ledger.claim_event("Old")


# ---------------------------------------------------------------------------------------------
# Tier assignments


def test_tier_assignments_newest_wins(ledger: Ledger) -> None:
    assert ledger.current_tier("ask") is None
    ledger.assign_tier("ask", "medium", by="U1", reason="r1", previous="small")
    ledger.assign_tier("summarize", "large", by="U2", reason="r2", previous="small", source="slack")
    ledger.assign_tier("ask", "large", by="U1", reason="r3", previous="medium")
    assert ledger.current_tier("ask") == "large"
    assert ledger.current_tiers() == {"ask": "large", "summarize": "large"}
    assert [(h.skill, h.tier, h.reason) for h in ledger.tier_history()] == [
        ("ask", "large", "r3"),
        ("summarize", "large", "r2"),
        ("ask", "medium", "r1"),
    ]
    assert [h.reason for h in ledger.tier_history("ask")] == ["r3", "r1"]
    assert [h.reason for h in ledger.tier_history(limit=1)] == ["r3"]
    assert ledger.last_assignment_at("ask") is not None
    assert ledger.last_assignment_at("nothing") is None


# ---------------------------------------------------------------------------------------------
# Usage figures


def nearest_rank(values: list[int], fraction: float) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(fraction * len(ordered)) - 1]


def test_usage_figures(ledger: Ledger) -> None:
    # ask: three user requests, one of which escalated (two rows); one error; one refused.
    a1 = ledger.record(
        RequestRow(
            skill="ask",
            status="invalid",
            cost_usd=0.01,
            prompt_tokens=100,
            completion_tokens=10,
            latency_ms=100,
        )
    )
    ledger.record(
        RequestRow(
            skill="ask",
            status="ok",
            cost_usd=0.05,
            prompt_tokens=200,
            completion_tokens=20,
            latency_ms=400,
            escalated_from=a1.id,
        )
    )
    a2 = ledger.record(
        RequestRow(
            skill="ask", status="ok", cost_usd=0.02, prompt_tokens=50, completion_tokens=5, latency_ms=200
        )
    )
    ledger.record(RequestRow(skill="ask", status="error", cost_usd=0.0, latency_ms=300, cost_known=False))
    ledger.record(RequestRow(skill="ask", status="refused", latency_ms=0))
    # Not user traffic: never counted.
    ledger.record(RequestRow(skill="ask", purpose="shadow", cost_usd=9.0, latency_ms=9999, prompt_tokens=999))
    ledger.record(RequestRow(skill="ask", purpose="eval", cost_usd=9.0, latency_ms=9999))
    # Another skill.
    s1 = ledger.record(
        RequestRow(
            skill="summarize", cost_usd=0.5, prompt_tokens=1000, completion_tokens=100, latency_ms=1500
        )
    )
    ledger.add_feedback(a2.id, "U1", 1)
    ledger.add_feedback(a2.id, "U2", 1)
    ledger.add_feedback(a1.id, "U1", -1)
    ledger.add_feedback(s1.id, "U3", -1)

    usage = {u.skill: u for u in ledger.usage(utcnow() - timedelta(days=7))}
    assert sorted(usage) == ["ask", "summarize"]
    ask = usage["ask"]
    assert ask.requests == 4  # the escalation row is not a separate request
    assert ask.escalations == 1
    assert ask.errors == 3  # invalid + error + refused rows
    assert ask.prompt_tokens == 350 and ask.completion_tokens == 35
    assert ask.cost_usd == pytest.approx(0.08, rel=1e-12)  # escalation rows cost money too
    assert ask.unknown_cost == 1
    latencies = [100, 400, 200, 300, 0]
    assert ask.mean_latency_ms == pytest.approx(sum(latencies) / 5)
    assert ask.p95_latency_ms == nearest_rank(latencies, 0.95) == 400
    assert (ask.thumbs_up, ask.thumbs_down) == (2, 1)
    summarize = usage["summarize"]
    assert (summarize.requests, summarize.cost_usd, summarize.p95_latency_ms) == (1, 0.5, 1500)
    assert (summarize.thumbs_up, summarize.thumbs_down) == (0, 1)
    assert summarize.as_dict()["skill"] == "summarize"


@pytest.mark.parametrize("n", [1, 2, 7, 19, 20, 21, 40, 101])
def test_usage_p95_is_nearest_rank(ledger: Ledger, n: int) -> None:
    latencies = [(i * 37) % 1009 for i in range(1, n + 1)]
    for value in latencies:
        ledger.record(RequestRow(skill="ask", latency_ms=value))
    [ask] = ledger.usage(utcnow() - timedelta(hours=1))
    assert ask.p95_latency_ms == nearest_rank(latencies, 0.95)
    assert ask.requests == n


def test_usage_window(ledger: Ledger) -> None:
    old = RequestRow(skill="ask", cost_usd=1.0)
    old.created_at = utcnow() - timedelta(days=10)
    ledger.record(old)
    ledger.record(RequestRow(skill="ask", cost_usd=2.0))
    [recent] = ledger.usage(utcnow() - timedelta(days=7))
    assert (recent.requests, recent.cost_usd) == (1, 2.0)
    [everything] = ledger.usage(utcnow() - timedelta(days=30))
    assert (everything.requests, everything.cost_usd) == (2, 3.0)
    assert ledger.usage(utcnow() + timedelta(hours=1)) == []
    assert ledger.usage(utcnow() - timedelta(days=30), until=utcnow() - timedelta(days=7))[0].requests == 1
    assert [r.cost_usd for r in ledger.requests_since(utcnow() - timedelta(days=30))] == [2.0, 1.0]
    assert ledger.requests_since(utcnow() - timedelta(days=30), purpose="shadow") == []
