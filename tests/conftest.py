"""Shared fixtures: an isolated working directory and settings, engines with scripted models."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import build_engine
from bot.testing import Script
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fake_slack import fake_slack  # noqa: F401  (a fixture, re-exported for every test)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in its own folder with no TIERWISE_/SLACK_ variables leaking in."""
    for key in list(os.environ):
        # slack_sdk honours HTTP(S)_PROXY even for 127.0.0.1 (it ignores NO_PROXY): clear them too.
        if key.startswith(("TIERWISE_", "SLACK_")) or key.lower() in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIERWISE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture(autouse=True)
def postgres_database(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str | None]:
    """With TIERWISE_TEST_DATABASE_URL set, each test's ledger is a fresh Postgres database."""
    from tests import pg

    if not pg.on_postgres:
        yield None
        return
    name = pg.fresh_database()
    url = pg.url_for(name)
    monkeypatch.setenv("TIERWISE_DATABASE_URL", url)
    yield url
    pg.drop(name)


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def make_engine(script: Script) -> Callable[..., Any]:
    """Build a real Engine (real packs, skills, ledger, litellm path) whose model replies are scripted."""
    from bot.config import load_settings
    from bot.models.llm import LLM
    from bot.pipeline.engine import Engine

    def build(mock: Any = None, **overrides: Any) -> Engine:
        settings = load_settings(**overrides)
        return build_engine(settings, llm=LLM(settings.tiers, mock_response=mock or script))

    return build


@pytest.fixture
def engine(make_engine: Callable[..., Any]) -> Any:
    return make_engine()


@pytest.fixture(scope="session")
def shared_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai(shared_openai: FakeOpenAI) -> FakeOpenAI:
    """One server for the whole run (stopping one takes ~0.5 s), reset for every test."""
    shared_openai.reset()
    return shared_openai
