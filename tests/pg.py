"""The database suites on a real PostgreSQL server: TIERWISE_TEST_DATABASE_URL selects it.

Every test gets a fresh database cloned from a migrated template (CREATE DATABASE … TEMPLATE is a
file copy, far faster than migrating each time) and TIERWISE_DATABASE_URL pointing at it; the
database is dropped after the test. Without the variable, everything runs on SQLite as before.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from typing import Any

import pytest

BASE_URL = os.environ.get("TIERWISE_TEST_DATABASE_URL") or None
TEMPLATE = "tw_template"
SEEDED = "tw_seeded"
_ready: set[str] = set()

on_postgres = BASE_URL is not None
sqlite_only = pytest.mark.skipif(on_postgres, reason="SQLite-specific (the run is on Postgres)")


def url_for(name: str) -> str:
    from sqlalchemy.engine import make_url

    from bot.ledger.db import normalize_url

    assert BASE_URL is not None
    return make_url(normalize_url(BASE_URL)).set(database=name).render_as_string(hide_password=False)


def _admin() -> Any:
    from sqlalchemy import create_engine

    return create_engine(url_for(make_admin_db()), isolation_level="AUTOCOMMIT", poolclass=_null_pool())


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool


def make_admin_db() -> str:
    from sqlalchemy.engine import make_url

    from bot.ledger.db import normalize_url

    assert BASE_URL is not None
    return make_url(normalize_url(BASE_URL)).database or "postgres"


def _execute(sql: str) -> None:
    engine = _admin()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def drop(name: str) -> None:
    _execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _template(name: str, fill: Callable[[str], None]) -> str:
    if name not in _ready:
        drop(name)
        _execute(f'CREATE DATABASE "{name}"')
        fill(url_for(name))
        _ready.add(name)
    return name


def _migrate(url: str) -> None:
    from bot.ledger.store import Ledger

    Ledger(url).engine.dispose()


def fresh_database(template: str = TEMPLATE, fill: Callable[[str], None] = _migrate) -> str:
    """A new database cloned from `template`; returns its name."""
    source = _template(template, fill)
    name = f"tw_{secrets.token_hex(6)}"
    _execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return name


def _seeded_fill(seed: Callable[[Any], None]) -> Callable[[str], None]:
    def fill(template_url: str) -> None:
        from bot.ledger.store import Ledger

        ledger = Ledger(template_url)
        seed(ledger)
        ledger.engine.dispose()

    return fill


def seeded_database(seed: Callable[[Any], None]) -> str:
    """The URL of a new database that is a copy of one seeded once per run (the week-46 ledger)."""
    return url_for(fresh_database(SEEDED, _seeded_fill(seed)))


def replace_with_seeded(url: str, seed: Callable[[Any], None]) -> None:
    """Make the test's own database such a copy."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    assert name
    drop(name)
    source = _template(SEEDED, _seeded_fill(seed))
    _execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
