"""SQLite writers of one process queue on a `WriteGate` instead of SQLite's sleeping busy handler."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.ledger import db


def _engine(path: Path, busy_ms: int = 30000) -> Engine:
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)"))
    engine.dispose()

    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _busy(dbapi_conn: object, _record: object) -> None:
        dbapi_conn.execute(f"PRAGMA busy_timeout={busy_ms}")  # type: ignore[attr-defined]

    return engine


def test_writers_of_one_process_never_meet_sqlites_lock(tmp_path: Path) -> None:
    """With SQLite's busy timeout at 0, any two writers that met at its lock would fail at once
    ("database is locked"); queued on the gate, 8 threads × 40 writes all land."""
    engine = _engine(tmp_path / "gate.db", busy_ms=0)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(40):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": f"{worker}-{i}"})
                    conn.execute(text("UPDATE t SET v = v || '!' WHERE v = :v"), {"v": f"{worker}-{i}"})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t WHERE v LIKE '%!'")).scalar() == 320


def test_a_waiting_writer_queues_on_the_gate_and_readers_do_not(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "gate.db")
    gate = db.gate_for(str(tmp_path / "gate.db"))
    assert gate is not None
    holding, release, wrote = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES ('first')"))
            holding.set()
            release.wait(10)

    def second() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (v) VALUES ('second')"))
        wrote.set()

    a = threading.Thread(target=first)
    a.start()
    assert holding.wait(10)
    assert gate.owner == a.ident
    b = threading.Thread(target=second)
    b.start()
    with engine.connect() as conn:  # a reader passes the gate (WAL: it sees the last commit)
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
    assert not wrote.wait(0.3)  # the second writer waits for the first one's commit
    release.set()
    assert wrote.wait(10)
    a.join(10)
    b.join(10)
    assert gate.owner is None
    with engine.connect() as conn:
        assert [r[0] for r in conn.execute(text("SELECT v FROM t ORDER BY id"))] == ["first", "second"]


def test_a_failed_write_lets_the_gate_go(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "gate.db")
    gate = db.gate_for(str(tmp_path / "gate.db"))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t (id, v) VALUES (1, 'one')"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO t (id, v) VALUES (1, 'again')"))
    assert gate is not None and gate.owner is None

    done = threading.Event()

    def other() -> None:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO t (id, v) VALUES (2, 'two')"))
        done.set()

    threading.Thread(target=other).start()
    assert done.wait(10)


@pytest.mark.timeout(20)
def test_one_thread_writing_through_two_connections_meets_sqlite_not_a_deadlock(tmp_path: Path) -> None:
    """The gate is not taken twice by one thread: its second connection meets SQLite's own lock and
    SQLite's busy timeout (here 200 ms), as it would without the gate, instead of waiting forever."""
    engine = _engine(tmp_path / "gate.db", busy_ms=200)
    with engine.begin() as outer:
        outer.execute(text("INSERT INTO t (v) VALUES ('outer')"))
        started = time.monotonic()
        with pytest.raises(OperationalError, match="locked"), engine.begin() as inner:
            inner.execute(text("INSERT INTO t (v) VALUES ('inner')"))
        assert time.monotonic() - started < 5


def test_one_gate_per_database_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert db.gate_for("ledger.db") is db.gate_for(str(tmp_path / "ledger.db"))
    assert db.gate_for("ledger.db") is not db.gate_for("other.db")
    assert db.gate_for(":memory:") is None
    assert db.gate_for("file:mem?mode=memory&cache=shared") is None
    assert db.gate_for("") is None
