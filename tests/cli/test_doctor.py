"""`tierwise doctor`, and the database errors at start: unreachable, or Postgres without its driver."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fake_slack import BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.paths import ROOT
from tests.slack_helpers import slack_fixture  # noqa: F401 (fixture)

CLI = [sys.executable, "-c", "from bot.adapters.cli import main; main()"]


def _tiers(monkeypatch: pytest.MonkeyPatch, openai: FakeOpenAI) -> None:
    for tier, model in (("SMALL", "fast"), ("MEDIUM", "mid"), ("LARGE", "big")):
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__MODEL", f"openai/{model}")
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__API_BASE", openai.url)
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__DATA_BOUNDARY", "local")
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__MAX_RETRIES", "0")
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__INPUT_COST_PER_TOKEN", "0.000001")


def _doctor() -> Any:
    from typer.testing import CliRunner

    from bot.adapters.cli import app

    return CliRunner().invoke(app, ["doctor"])


def test_doctor_passes_on_a_ready_installation(
    monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI, slack: FakeSlack
) -> None:
    from bot.config import load_settings
    from bot.ledger.store import Ledger

    _tiers(monkeypatch, fake_openai)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_API_URL", slack.api_url)
    Ledger(load_settings().effective_database_url)  # migrated, as serve leaves it
    result = _doctor()
    lines = result.output.strip().splitlines()
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in lines] == ["ok"] * 7
    assert lines[0].split()[1] == "database"
    assert "tier small" in lines[1] and "price: tier-config" in lines[1]
    assert "WAL" in lines[0] or "postgresql" in lines[0]
    assert "bot UBOT" in lines[4] or "bot U" in lines[4]
    assert "next" in lines[6]
    assert len(fake_openai.requests) == 3 and all(r["max_tokens"] == 1 for r in fake_openai.requests)


def test_doctor_fails_on_a_broken_tier_and_a_bad_token(
    monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI, slack: FakeSlack
) -> None:
    _tiers(monkeypatch, fake_openai)
    fake_openai.script("big", {"status": 500, "content": "down"})
    slack.fail_next("auth.test", status=200, error="invalid_auth")  # a revoked token
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("SLACK_API_URL", slack.api_url)
    result = _doctor()
    assert result.exit_code == 1
    lines = {
        line.split()[1] + (" " + line.split()[2] if line.split()[1] == "tier" else ""): line
        for line in result.output.splitlines()
    }
    assert lines["tier large"].startswith("FAIL")
    assert lines["tier small"].startswith("ok")
    assert lines["slack"].startswith("FAIL") and "invalid_auth" in lines["slack"]
    assert lines["database"].startswith("warn")  # empty: serve migrates it


def _cli(env_extra: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIERWISE_", "SLACK_"))}
    env.update({"PYTHONPATH": str(ROOT), "TIERWISE_DATA_DIR": str(cwd / "data"), **env_extra})
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_unreachable_database_at_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = "postgresql://tierwise:s3cret@127.0.0.1:1/tierwise"
    result = _cli({"TIERWISE_DATABASE_URL": url}, "usage", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tierwise: cannot reach the database postgresql")
    assert "tierwise:********@127.0.0.1:1/tierwise" in lines[0] and "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_postgres_without_its_driver_names_the_extra(tmp_path: Path) -> None:
    # A stand-in `psycopg` that cannot be imported, as when the extra is not installed.
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "psycopg.py").write_text("raise ImportError('No module named psycopg')\n")
    result = _cli(
        {"TIERWISE_DATABASE_URL": "postgresql://u:pw@db/x", "PYTHONPATH": f"{blocker}:{ROOT}"},
        "usage",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "pip install 'tierwise[postgres]'" in result.stderr
    assert "pw@" not in result.stderr and "Traceback" not in result.stderr
