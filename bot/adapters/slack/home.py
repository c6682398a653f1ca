"""The App Home tab, built from plain data (no engine, no Slack calls).

Everyone sees the skills, their commands and examples; admins also see this week's usage per skill
and the tier each skill runs on. Slack allows 100 blocks per view: skills that do not fit are named
in one closing line instead of breaking the publish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.adapters.slack.blocks import truncate
from bot.adapters.slack.commands import thumbs_rate
from bot.adapters.slack.mrkdwn import escape
from bot.core.rec_format import format_recommendation

VIEW_BLOCKS_MAX = 100


@dataclass(frozen=True)
class SkillCard:
    name: str
    command: str
    description: str
    examples: tuple[str, ...] = ()
    shortcut: str | None = None


@dataclass(frozen=True)
class SkillAdminRow:
    skill: str
    tier: str
    tier_source: str
    requests: int = 0
    cost_usd: float = 0.0
    unknown_cost: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0


@dataclass(frozen=True)
class RecommendationCard:
    skill: str
    action: str
    current_tier: str
    target_tier: str | None
    reason: str
    period: str
    status: str


def home_view(
    cards: Sequence[SkillCard],
    admin_rows: Sequence[SkillAdminRow] | None = None,
    *,
    days: int = 7,
    max_blocks: int = VIEW_BLOCKS_MAX,
    recommendations: Sequence[RecommendationCard] = (),
) -> dict[str, Any]:
    """The Home tab view; `admin_rows` is None for non-admins (and then nothing of it is shown)."""
    intro = [
        HeaderBlock(text=PlainTextObject(text="Tierwise")).to_dict(),
        _section(
            "Mention me in a channel (I answer in a thread; follow-ups there need no new mention), "
            "DM me, or use a command. Rate answers with 👍/👎: ratings decide which tier each skill deserves."
        ),
        DividerBlock().to_dict(),
    ]
    admin = _admin_blocks(admin_rows, days) if admin_rows is not None else []
    if admin_rows is not None and recommendations:
        admin += _recommendation_blocks(recommendations)
    budget = max_blocks - len(intro) - len(admin)
    return View(type="home", blocks=[*intro, *_skill_blocks(cards, budget), *admin]).to_dict()


def _skill_blocks(cards: Sequence[SkillCard], budget: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for index, card in enumerate(cards):
        group = [_section(f"*`{escape(card.command)}`* — {escape(card.description)}")]
        hints = [f"Try `{escape(card.command)} {escape(e)}`" for e in card.examples[:3]]
        if card.shortcut:
            hints.append(f"Message shortcut: *{escape(card.shortcut)}*")
        if hints:
            group.append(_context(hints))
        left = len(cards) - index
        if len(blocks) + len(group) + (1 if left > 1 else 0) > budget:
            names = ", ".join(f"`{escape(c.command)}`" for c in cards[index:])
            blocks.append(_context([truncate(f"{left} more: {names} (`/tierwise skills` lists all)", 2000)]))
            break
        blocks.extend(group)
    return blocks


def _admin_blocks(rows: Sequence[SkillAdminRow], days: int) -> list[dict[str, Any]]:
    blocks = [
        DividerBlock().to_dict(),
        HeaderBlock(text=PlainTextObject(text=f"Admin · last {days} days")).to_dict(),
    ]
    budget = VIEW_BLOCKS_MAX // 2 - len(blocks) - 1  # keep half the view for the skills themselves
    for row in rows[:budget]:
        cost = f"${row.cost_usd:.4f}" + (f" (+{row.unknown_cost} unpriced)" if row.unknown_cost else "")
        fields = [
            f"*{escape(row.skill)}*\ntier `{escape(row.tier)}` ({escape(row.tier_source)})",
            f"*Requests*\n{row.requests}",
            f"*Cost*\n{cost}",
            f"*👍 rate*\n{thumbs_rate(row.thumbs_up, row.thumbs_down)}",
        ]
        blocks.append(SectionBlock(fields=[MarkdownTextObject(text=f) for f in fields]).to_dict())
    if len(rows) > budget:
        blocks.append(_context([f"{len(rows) - budget} more skills: `/tierwise usage` lists all."]))
    blocks.append(
        _context(["Change a tier: `/tierwise tier set SKILL TIER reason…` · `/tierwise tier history`"])
    )
    return blocks


def _recommendation_blocks(recs: Sequence[RecommendationCard]) -> list[dict[str, Any]]:
    lines = []
    for r in recs[:20]:
        note = f"_({escape(r.period)}, {escape(r.status)})_"
        lines.append(format_recommendation(r, "slack_home", escape=escape, note=note))
    return [
        HeaderBlock(text=PlainTextObject(text="Latest tier recommendations")).to_dict(),
        _section("\n".join(lines)),
    ]


def _section(text: str) -> dict[str, Any]:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, 3000))).to_dict()


def _context(texts: Sequence[str]) -> dict[str, Any]:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(t, 2000)) for t in texts[:10]]).to_dict()
