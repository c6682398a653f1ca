"""The typed statuses and purposes in bot.core.types name the ledger's strings (the schema is text)."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.core.evidence import Action
from bot.core.rec_format import ACTION_ICON
from bot.core.types import PURPOSES, REQUEST_STATUSES
from bot.core.verify import STATUSES as CHECK_STATUSES
from bot.observability.metrics import FINAL
from tests.paths import ROOT


def test_the_wire_strings_are_unchanged() -> None:
    assert REQUEST_STATUSES == (
        "ok",
        "error",
        "invalid",
        "refused",
        "duplicate",
        "rejected",
        "stopped",
        "interrupted",
    )
    assert PURPOSES == ("user", "shadow", "judge", "eval")
    assert CHECK_STATUSES == ("passed", "failed", "not_run")


def test_metrics_count_only_known_final_statuses() -> None:
    assert set(REQUEST_STATUSES) >= FINAL


def test_every_action_has_an_icon() -> None:
    assert set(ACTION_ICON) == set(Action.__args__)  # type: ignore[attr-defined]


def _literal_keywords(name: str) -> set[str]:
    """Every string literal passed as the keyword argument `name=` anywhere under bot/."""
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == name and isinstance(node.value, ast.Constant):
                found.add(node.value.value)
    return found


def test_the_code_uses_only_declared_purposes() -> None:
    assert _literal_keywords("purpose") <= set(PURPOSES)
