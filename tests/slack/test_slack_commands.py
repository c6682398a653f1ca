"""`/tierwise` text → action, and the texts it answers with (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bot.adapters.slack import commands
from bot.adapters.slack.commands import (
    Help,
    Invalid,
    ListSkills,
    TierHistory,
    TierSet,
    Usage,
    ValueSet,
    parse,
)


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("", Help()),
        ("  help ", Help()),
        ("HELP", Help()),
        ("skills", ListSkills()),
        ("usage", Usage(7)),
        ("usage 30d", Usage(30)),
        ("usage 14", Usage(14)),
        ("tier set ask medium answers too shallow", TierSet("ask", "medium", "answers too shallow")),
        ("tier history", TierHistory(None)),
        ("tier history ask", TierHistory("ask")),
        ("value ask 0.40", ValueSet("ask", "0.40")),
        ("value ask", Invalid(commands.VALUE_USAGE)),
        ("value ask 1 2", Invalid(commands.VALUE_USAGE)),
    ],
)
def test_parse(text: str, action: commands.Action) -> None:
    assert parse(text) == action


@pytest.mark.parametrize(
    "text",
    ["frobnicate", "tier", "tier set", "tier set ask", "tier set ask medium", "tier bump ask", "usage 0d",
     "usage 400d", "usage soon", "skills extra", "tier history a b"],
)  # fmt: skip
def test_mistakes_get_a_one_line_hint(text: str) -> None:
    action = parse(text)
    assert isinstance(action, Invalid)
    assert "\n" not in action.message and "Usage" in action.message


def test_unknown_subcommand_is_named_and_escaped() -> None:
    action = parse("<script>")
    assert isinstance(action, Invalid)
    assert action.message.startswith("Unknown subcommand `&lt;script&gt;`.")


def test_admin_actions() -> None:
    assert isinstance(parse("tier set a b c"), commands.ADMIN_ACTIONS)
    assert isinstance(parse("tier history"), commands.ADMIN_ACTIONS)
    assert not isinstance(parse("usage"), commands.ADMIN_ACTIONS)


@dataclass
class _Skill:
    name: str
    description: str
    examples: tuple[str, ...] = ()
    shortcut: str | None = None

    @property
    def slash(self) -> str:
        return f"/{self.name}"


SKILLS = [
    _Skill("ask", "Answer questions. From the handbook.", ("How do I get VPN?",)),
    _Skill("sum", "Sum.", (), "Sum thread"),
]


def test_help_shows_admin_commands_only_to_admins() -> None:
    assert "/ask` — Answer questions." in commands.help_text(SKILLS, is_admin=False)
    assert "tier set" not in commands.help_text(SKILLS, is_admin=False)
    assert "tier set" in commands.help_text(SKILLS, is_admin=True)
    assert "`/tierwise value SKILL USD`" in commands.help_text(SKILLS, is_admin=True)
    assert "value SKILL" not in commands.help_text(SKILLS, is_admin=False)


def test_skills_text_lists_examples_and_shortcuts() -> None:
    text = commands.skills_text(SKILLS)
    assert "`/ask How do I get VPN?`" in text and "Message shortcut: *Sum thread*" in text


@dataclass
class _Usage:
    skill: str = "ask"
    requests: int = 3
    errors: int = 1
    cost_usd: float = 0.5
    unknown_cost: int = 0
    thumbs_up: int = 1
    thumbs_down: int = 1


@dataclass
class _Assignment:
    skill: str = "ask"
    previous_tier: str | None = "small"
    tier: str = "medium"
    assigned_by: str = "UADMIN"
    reason: str = "too shallow"
    created_at: datetime = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def test_usage_and_history_texts() -> None:
    assert commands.usage_text([_Usage()], 7) == (
        "*Usage, last 7 days*\n• *ask*: 3 requests, 1 not ok, $0.5000, 👍 50% (1/2)"
    )
    assert commands.usage_text([], 7) == "No requests in the last 7 days."
    assert commands.history_text([_Assignment()], None) == (
        "*Tier history* (newest first)\n• 2026-11-02 09:30 UTC · *ask* small → medium by <@UADMIN>: too shallow"
    )
    assert "by cli:" in commands.history_text([_Assignment(assigned_by="cli")], None)
