"""`/tierwise …`: parse the text into an action, and render the answers. Pure: no Slack, no database.

A user mistake gets a one-line usage hint (`Invalid`), never a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.adapters.slack.mrkdwn import escape
from bot.core.rec_format import RecommendationLike, format_recommendation

COMMAND = "/tierwise"
USAGE = (
    "Usage: `/tierwise help` · `/tierwise skills` · `/tierwise usage [7d]` · admins: "
    "`/tierwise tier set SKILL TIER reason…` · `/tierwise tier history [SKILL]` · `/tierwise review` · "
    "`/tierwise value SKILL USD` · `/tierwise digest now` · `/tierwise data`"
)
VALUE_USAGE = (
    "Usage: `/tierwise value SKILL USD` (what a good answer is worth, e.g. 0.40; `default` to reset)"
)
TIER_SET_USAGE = "Usage: `/tierwise tier set SKILL TIER reason…` (the reason is kept in the tier history)"
MAX_DAYS = 366


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class ListSkills:
    pass


@dataclass(frozen=True)
class Usage:
    days: int = 7


@dataclass(frozen=True)
class TierSet:
    skill: str
    tier: str
    reason: str


@dataclass(frozen=True)
class TierHistory:
    skill: str | None = None


@dataclass(frozen=True)
class Review:
    pass


@dataclass(frozen=True)
class DigestNow:
    pass


@dataclass(frozen=True)
class DataView:
    """Retention in force, the last purge and the ledger's size (admins)."""


@dataclass(frozen=True)
class ValueSet:
    skill: str
    usd: str


@dataclass(frozen=True)
class Invalid:
    message: str


Action = (
    Help | ListSkills | Usage | TierSet | TierHistory | Review | DigestNow | ValueSet | DataView | Invalid
)
ADMIN_ACTIONS = (TierSet, TierHistory, Review, DigestNow, ValueSet, DataView)


def parse(text: str) -> Action:
    """`/tierwise` text → the action it asks for."""
    words = text.split()
    if not words or words[0].lower() == "help":
        return Help()
    head, rest = words[0].lower(), words[1:]
    if head == "skills":
        return ListSkills() if not rest else Invalid("Usage: `/tierwise skills` (no arguments).")
    if head == "usage":
        return _usage(rest)
    if head == "tier":
        return _tier(rest)
    if head == "review":
        return Review() if not rest else Invalid("Usage: `/tierwise review` (no arguments).")
    if head == "value":
        return ValueSet(rest[0], rest[1]) if len(rest) == 2 else Invalid(VALUE_USAGE)
    if head == "digest":
        if [w.lower() for w in rest] == ["now"]:
            return DigestNow()
        return Invalid("Usage: `/tierwise digest now` (posts last week's digest to the admin channel).")
    if head == "data":
        return DataView() if not rest else Invalid("Usage: `/tierwise data` (no arguments).")
    return Invalid(f"Unknown subcommand `{escape(words[0][:40])}`. {USAGE}")


def _usage(rest: list[str]) -> Action:
    if not rest:
        return Usage()
    match = re.fullmatch(r"(\d{1,3})d?", rest[0].lower())
    if len(rest) > 1 or match is None or not 1 <= int(match.group(1)) <= MAX_DAYS:
        return Invalid(f"Usage: `/tierwise usage [DAYS]`, e.g. `/tierwise usage 30d` (1–{MAX_DAYS} days).")
    return Usage(int(match.group(1)))


def _tier(rest: list[str]) -> Action:
    sub = rest[0].lower() if rest else ""
    if sub == "set":
        if len(rest) < 4:
            return Invalid(TIER_SET_USAGE)
        return TierSet(skill=rest[1], tier=rest[2], reason=" ".join(rest[3:]))
    if sub == "history":
        if len(rest) > 2:
            return Invalid("Usage: `/tierwise tier history [SKILL]`")
        return TierHistory(rest[1] if len(rest) == 2 else None)
    return Invalid(
        f"Usage: `/tierwise tier set SKILL TIER reason…` or `/tierwise tier history [SKILL]`. {USAGE}"
    )


# Rendering -----------------------------------------------------------------------------------


class SkillLike(Protocol):
    # Members here and below are read-only, so frozen dataclasses (Skill, SkillUsage, ...) match.
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def examples(self) -> tuple[str, ...]: ...
    @property
    def shortcut(self) -> str | None: ...
    @property
    def slash(self) -> str: ...


class UsageLike(Protocol):
    @property
    def skill(self) -> str: ...
    @property
    def requests(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def unknown_cost(self) -> int: ...
    @property
    def thumbs_up(self) -> int: ...
    @property
    def thumbs_down(self) -> int: ...


class AssignmentLike(Protocol):
    created_at: datetime
    skill: str
    previous_tier: str | None
    tier: str
    assigned_by: str
    reason: str


def help_text(skills: Sequence[SkillLike], is_admin: bool) -> str:
    lines = [
        "*Tierwise* answers with the right model tier plus curated context. Mention me in a channel "
        "(I answer in a thread, and follow-ups in that thread need no new mention), DM me, or use a command:",
        *(f"• `{s.slash}` — {escape(_first_sentence(s.description))}" for s in skills),
        "• `/tierwise skills` — skills with examples · `/tierwise usage [7d]` — requests, cost, 👍 rate",
    ]
    if is_admin:
        lines.append(
            "• Admins: `/tierwise tier set SKILL TIER reason…` · `/tierwise tier history [SKILL]` · "
            "`/tierwise review` · `/tierwise value SKILL USD` · `/tierwise digest now` · `/tierwise data`"
        )
    lines.append("Rate answers with 👍/👎 (buttons or reactions): it decides which tier each skill deserves.")
    return "\n".join(lines)


def skills_text(skills: Sequence[SkillLike]) -> str:
    if not skills:
        return "No skills are loaded."
    lines = []
    for s in skills:
        lines.append(f"*`{s.slash}`* — {escape(s.description)}")
        if s.examples:
            lines.append("    e.g. " + " · ".join(f"`{s.slash} {escape(e)}`" for e in s.examples[:3]))
        if s.shortcut:
            lines.append(f"    Message shortcut: *{escape(s.shortcut)}*")
    return "\n".join(lines)


def thumbs_rate(up: int, down: int) -> str:
    total = up + down
    return f"{round(100 * up / total)}% ({up}/{total})" if total else "—"


def usage_text(rows: Sequence[UsageLike], days: int) -> str:
    if not rows:
        return f"No requests in the last {days} days."
    lines = [f"*Usage, last {days} days*"]
    for r in rows:
        cost = f"${r.cost_usd:.4f}" + (f" (+{r.unknown_cost} unpriced)" if r.unknown_cost else "")
        lines.append(
            f"• *{escape(r.skill)}*: {r.requests} requests, {r.errors} not ok, {cost}, "
            f"👍 {thumbs_rate(r.thumbs_up, r.thumbs_down)}"
        )
    return "\n".join(lines)


def history_text(rows: Sequence[AssignmentLike], skill: str | None) -> str:
    if not rows:
        return f"No tier changes recorded{f' for {escape(skill)}' if skill else ''}."
    lines = ["*Tier history* (newest first)"]
    for r in rows[:30]:
        lines.append(
            f"• {r.created_at:%Y-%m-%d %H:%M} UTC · *{escape(r.skill)}* {escape(r.previous_tier or '-')} → "
            f"{escape(r.tier)} by {_who(r.assigned_by)}: {escape(r.reason[:200])}"
        )
    if len(rows) > 30:
        lines.append(f"…and {len(rows) - 30} older changes (`tierwise tier history` shows all).")
    return "\n".join(lines)


def _who(user: str) -> str:
    """Slack user ids become mentions; CLI users and other sources stay plain."""
    return f"<@{user}>" if re.fullmatch(r"[UW][A-Z0-9]{2,}", user) else escape(user)


def _first_sentence(text: str, limit: int = 120) -> str:
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def review_text(recs: Sequence[RecommendationLike]) -> str:
    if not recs:
        return "No skills to review."
    lines = ["*Tier review* (advice; apply from the weekly digest or with `/tierwise tier set`)"]
    for r in recs:
        lines.append(format_recommendation(r, "slack_review", escape=escape))
    return "\n".join(lines)
