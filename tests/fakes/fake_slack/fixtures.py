"""The Slack fixture files (tests/fixtures/slack) and the tokens the fake accepts."""

from __future__ import annotations

import json
from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "slack"

BOT_TOKEN = "xoxb-111-222-faketierwisebot"
APP_TOKEN = "xapp-1-A111-111-fakeapptoken"


def _fixture_path(relpath: str | Path) -> Path:
    path = FIXTURES_DIR / relpath
    if not path.exists() and not str(relpath).endswith(".json"):
        candidate = FIXTURES_DIR / f"{relpath}.json"
        if candidate.exists():
            return candidate
    return path


def load_fixture(relpath: str | Path) -> dict:
    """Parsed JSON of a file under tests/fixtures/slack/ (e.g. ``"events/app_mention.json"``).

    A fresh object every call, so tests may mutate it.
    """
    return json.loads(_fixture_path(relpath).read_text(encoding="utf-8"))


def load_form_fixture(relpath: str | Path) -> bytes:
    """Raw bytes of a form-encoded fixture (e.g. ``"interactivity/slash_command.form.txt"``)."""
    return _fixture_path(relpath).read_bytes()
