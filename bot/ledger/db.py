"""Database engine and migrations. SQLite gets WAL and a busy timeout so the Slack workers,
the scheduler and the CLI can share one file; Postgres works through the same URL setting."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, inspect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.config import ConfigError, redacted_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_upgraded: set[str] = set()
_lock = threading.Lock()


def affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE (without RETURNING) touched. `Session.execute()` is typed to return a
    `Result`, but for such a statement it returns a `CursorResult`: SQLAlchemy's advice is this cast
    (sqlalchemy/sqlalchemy#12913)."""
    return cast(CursorResult[Any], result).rowcount


class DatabaseUnavailable(ConfigError):
    """The database cannot be reached (or refuses us): one line naming it, password masked."""


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 (the `postgres` extra), not psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def check_driver(url: str) -> None:
    if url.startswith("postgresql+psycopg"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"{redacted_url(url)} needs the Postgres driver: pip install 'tierwise[postgres]'"
            ) from None


def unavailable(url: str, exc: BaseException) -> DatabaseUnavailable:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return DatabaseUnavailable(
        f"cannot reach the database {redacted_url(url)}: {reason[0][:200] if reason else type(exc).__name__}"
    )


GATE_WAIT_S = 30.0  # as long as SQLite's own busy timeout: past it, SQLite itself decides
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_gates: dict[str, WriteGate] = {}
_gates_lock = threading.Lock()


class WriteGate:
    """One writer at a time for one SQLite file in this process, handed over the moment it is free.

    SQLite has one write lock per file; a connection that finds it taken waits in SQLite's busy
    handler, which polls with sleeps growing to 100 ms. With many threads writing small rows (request
    rows, work notes, delivery notes of concurrent answers) those sleeps, not the writes, were most of
    the time from a model's last token to the answer's end in Slack. Writers of this process queue on
    a Python lock instead (woken at once on release); other processes still meet SQLite's lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.owner: int | None = None

    def acquire(self) -> bool:
        me = threading.get_ident()
        if self.owner == me:  # this thread writes through a second connection: SQLite arbitrates
            return False
        if not self._lock.acquire(timeout=GATE_WAIT_S):
            return False
        self.owner = me
        return True

    def release(self) -> None:
        self.owner = None
        self._lock.release()


def gate_for(database: str) -> WriteGate | None:
    """The gate of a database file (shared by every engine on it in this process); None in memory."""
    if not database or database == ":memory:" or "mode=memory" in database:
        return None
    key = database if database.startswith("file:") else os.path.realpath(database)
    with _gates_lock:
        return _gates.setdefault(key, WriteGate())


class GatedConnection(sqlite3.Connection):
    """A sqlite3 connection that holds its file's `WriteGate` from its first write to commit/rollback."""

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.gate = gate_for(str(database))
        self.holding = False

    def cursor(self, factory: Any = None) -> Any:  # SQLAlchemy runs every statement through one
        return super().cursor(factory or GatedCursor)

    def hold(self) -> None:
        if self.gate is not None and not self.holding:
            self.holding = self.gate.acquire()

    def let_go(self) -> None:
        if self.holding:
            self.holding = False
            assert self.gate is not None
            self.gate.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.let_go()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.let_go()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.let_go()


class GatedCursor(sqlite3.Cursor):
    """Takes the gate before a statement that opens a write transaction (sqlite3 begins one implicitly
    before INSERT/UPDATE/DELETE/REPLACE); lets go when the statement left no transaction open."""

    def _gated(self, run: Callable[[], Any], sql: str) -> Any:
        conn = self.connection
        assert isinstance(conn, GatedConnection)
        if not conn.in_transaction and sql.lstrip()[:7].upper().startswith(_WRITE_VERBS):
            conn.hold()
        try:
            return run()
        finally:
            if not conn.in_transaction:
                conn.let_go()

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self._gated(lambda: super(GatedCursor, self).execute(sql, parameters), sql)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        return self._gated(lambda: super(GatedCursor, self).executemany(sql, seq_of_parameters), sql)


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    check_driver(url)
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30, "factory": GatedConnection}
    else:
        # A pool big enough for the Slack workers (48) without queueing; pre-ping drops dead links.
        kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=50, pool_timeout=10)
        kwargs["connect_args"] = {"connect_timeout": 5}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> str:
    """Bring the schema to the newest revision (idempotent, once per process per URL)."""
    url = str(engine.url)
    with _lock:
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = alembic_config(engine.url.render_as_string(hide_password=False))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        try:
            engine.connect().close()  # the pool keeps it: reachability costs no extra connection
        except DBAPIError as exc:
            raise unavailable(engine.url.render_as_string(hide_password=False), exc) from None
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Replicas starting together: one migrates, the others wait, then see the new head.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(724310813)")
            current = MigrationContext.configure(conn).get_current_revision()
            if current != head:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        _upgraded.add(url)
        return head or ""


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def table_names(engine: Engine) -> list[str]:
    return inspect(engine).get_table_names()


T = TypeVar("T")


def retry(
    run: Callable[[], T],
    what: str,
    pauses: tuple[float, ...],
    errors: type[Exception] | tuple[type[Exception], ...] = SQLAlchemyError,
) -> T:
    """Run `run`, and again after each pause when it raises one of `errors` (the database away for a
    while); the last try's error propagates, other errors at once."""
    for pause in pauses:
        try:
            return run()
        except errors as exc:
            logging.getLogger(__name__).warning(
                "database error on %s (%s); trying again in %.1f s", what, type(exc).__name__, pause
            )
            time.sleep(pause)
    return run()
