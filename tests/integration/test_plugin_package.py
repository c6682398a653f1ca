"""A third-party skill package (tests/plugins/tierwise-glossary, a real folder laid out as pip installs
it) ships its own context pack and golden set: both are found through its entry point alone, and
`tierwise eval` runs its golden set with no extra settings."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.paths import TESTS

PLUGIN = TESTS / "plugins" / "tierwise-glossary"

ANSWERS = {
    "define BRB": {"term": "BRB", "team": "platform", "definition": "The kill switch for deploys."},
    "define blue hour": {"term": "Blue hour", "team": "people", "definition": "No meetings."},
    # Wrong team: the comparator must fail this case.
    "define paper cut": {"term": "Paper cut", "team": "platform", "definition": "A small defect."},
}


@pytest.fixture
def plugin_installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(PLUGIN))
    yield
    sys.modules.pop("tierwise_glossary", None)


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    question = body["messages"][-1]["content"].strip()
    return {"content": json.dumps(ANSWERS[question]), "prompt_tokens": 100, "completion_tokens": 20}


@pytest.fixture
def cli(fake_openai: Any, monkeypatch: pytest.MonkeyPatch, plugin_installed: None) -> Iterator[CliRunner]:
    fake_openai.default = _answer
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__MODEL", "openai/cheap")
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__API_BASE", fake_openai.url)
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__MAX_RETRIES", "0")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield CliRunner()
    root.handlers[:] = handlers
    root.setLevel(level)


def _run(runner: CliRunner, *args: str) -> Any:
    from bot.adapters.cli import app

    return runner.invoke(app, list(args), catch_exceptions=False)


def test_the_plugin_skill_and_its_pack_load_from_the_entry_point(
    plugin_installed: None, make_engine: Any
) -> None:
    engine = make_engine()
    skill = engine.registry.get("glossary")
    assert skill is not None, [str(p) for p in engine.registry.problems]
    assert skill.home == (PLUGIN / "tierwise_glossary").resolve()
    assert skill.module == "tierwise_glossary:glossary (entry point glossary)"
    assert (
        engine.packs["acme-glossary"].root
        == (PLUGIN / "tierwise_glossary/context_packs/acme-glossary").resolve()
    )
    assert "ask" in engine.registry.names()  # built-ins still load beside it


def test_tierwise_packs_lists_the_plugin_pack(cli: CliRunner) -> None:
    result = _run(cli, "packs", "--json")
    assert result.exit_code == 0, result.stderr
    names = [p["name"] for p in json.loads(result.stdout)["packs"]]
    assert "acme-glossary" in names and "company-handbook" in names


def test_tierwise_eval_runs_the_plugin_golden_set(cli: CliRunner, fake_openai: Any) -> None:
    result = _run(cli, "eval", "--skill", "glossary", "--tiers", "small", "--json")

    assert result.exit_code == 0, result.stderr
    [run] = json.loads(result.stdout)["runs"]
    assert (run["skill"], run["tier"], run["cases"], run["passed"]) == ("glossary", "small", 3, 2)
    assert run["failed_cases"] == ["gl-3"]
    assert run["critical_failures"] == 0
    # Every case's prompt carried the plugin's own pack.
    assert len(fake_openai.requests) == 3
    assert all("Big Red Button" in json.dumps(r["messages"]) for r in fake_openai.requests[:1])


def test_without_the_package_there_is_no_glossary_skill(make_engine: Any) -> None:
    engine = make_engine()
    assert engine.registry.get("glossary") is None
    assert "acme-glossary" not in engine.packs
