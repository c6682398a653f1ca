"""The `testbot` fixture shipped to skill authors (bot.testing, a pytest plugin): one-line skill tests
over the real pipeline, with only the model's words scripted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bot.core.skills import Skill
from bot.testing import TestBot
from tests.paths import TESTS

PLUGIN = TESTS / "plugins" / "tierwise-glossary"
PHISH = "From: it-desk@larkspur-okta.example.org\nSubject: Password expires\n\nKeep your password: http://x.example"


def test_one_line_structured_skill_test(testbot: TestBot) -> None:
    testbot.replies(
        "small",
        json.dumps(
            {
                "category": "phishing",
                "priority": "high",
                "team": "security-ops",
                "reason": "Lookalike domain.",
            }
        ),
    )
    assert testbot.ask(PHISH, skill="label-email").structured["team"] == "security-ops"


def test_invalid_output_escalates_and_the_calls_are_visible(testbot: TestBot) -> None:
    good = {"category": "phishing", "priority": "high", "team": "security-ops", "reason": "Lookalike."}
    testbot.replies("small", "I think it is phishing.").replies("medium", json.dumps(good))

    reply = testbot.ask(PHISH, skill="label-email")

    assert reply.ok and reply.escalated and reply.tier == "medium"
    assert [tier for tier, _ in testbot.calls] == ["small", "medium"]
    assert "Email taxonomy: categories, priorities, routing" in testbot.prompt(0)  # the always-included doc


def test_answer_asserts_success_and_routes_without_a_skill(testbot: TestBot) -> None:
    testbot.default("Open the Okta dashboard and request Zscaler Private Access.")
    assert "Zscaler" in testbot.answer("How do I get VPN access?")
    assert "vpn" in testbot.prompt().lower()  # the handbook's VPN page reached the prompt
    with pytest.raises(AssertionError, match="rejected"):
        testbot.answer("", skill="ask")


def test_a_skill_object_and_its_pack_handed_over_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(PLUGIN))
    from tierwise_glossary import glossary

    bot = TestBot(
        tmp_path / "data", skills=[glossary], pack_dirs=[PLUGIN / "tierwise_glossary" / "context_packs"]
    )
    bot.replies("small", json.dumps({"term": "BRB", "team": "platform", "definition": "The kill switch."}))

    reply = bot.ask("define BRB", skill="glossary")

    assert reply.structured == {"term": "BRB", "team": "platform", "definition": "The kill switch."}
    assert "Big Red Button" in bot.prompt()
    sys.modules.pop("tierwise_glossary", None)


def test_a_skill_with_an_unknown_pack_is_refused_clearly(tmp_path: Path) -> None:
    broken = Skill(name="broken", description="d", instructions="i", packs=("nowhere",))
    with pytest.raises(ValueError, match="skill 'broken': unknown pack nowhere"):
        TestBot(tmp_path / "data", skills=[broken])
