"""How a tier recommendation reads, on every surface: one formatter for the CLI, the digest (text,
markdown, Slack), the `/tierwise review` reply and App Home.

Pure: surfaces that need mrkdwn escaping pass their `escape`, which is applied to every field that
comes from data (skill, tiers, reason, note), never to the template's own markup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

ACTION_ICON: dict[str, str] = {"downgrade": "⬇️", "upgrade": "⬆️", "keep": "✅", "fix": "🛠️"}
OTHER_ICON = "•"  # an action without an icon (a row written by a newer version)

Style = Literal["line", "text", "markdown", "slack_digest", "slack_review", "slack_home"]

# {move} is "medium → small" (or "medium" without a target); {target} is " medium → small" (or
# " (on medium)"), {stays} the same with " (stays on medium)"; {note} is caller-supplied context such
# as the period and status.
_TEMPLATES: dict[Style, str] = {
    "line": "{skill}: {action} {move} — {reason}",  # CLI `review`, benchmarks, logs
    "text": "{ACTION:<9} {skill}{target}: {reason}",  # the plain-text digest
    "markdown": "- **{action}** `{skill}`{stays}: {reason}",
    "slack_digest": "{icon} *{action}* `{skill}`{target}\n{reason}",
    "slack_review": "{icon} *{skill}*: {action} {move} — {reason}",
    "slack_home": "{icon} *{skill}* {action} {move} {note} — {reason}",
}


class RecommendationLike(Protocol):
    """A `TierRecommendation`, a stored `Recommendation` row or an App Home card."""

    @property
    def skill(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def current_tier(self) -> str: ...
    @property
    def target_tier(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


def _same(text: str) -> str:
    return text


def tier_move(rec: RecommendationLike, escape: Callable[[str], str] = _same) -> str:
    """ "medium → small", or just "medium" when the advice keeps the tier."""
    current = escape(rec.current_tier)
    return f"{current} → {escape(rec.target_tier)}" if rec.target_tier else current


def format_recommendation(
    rec: RecommendationLike,
    style: Style = "line",
    *,
    escape: Callable[[str], str] = _same,
    note: str = "",
) -> str:
    """One recommendation in `style`, e.g. "label-email: downgrade medium → small — <reason>"."""
    current = escape(rec.current_tier)
    move = tier_move(rec, escape)
    target = f" {move}" if rec.target_tier else f" (on {current})"
    stays = f" {move}" if rec.target_tier else f" (stays on {current})"
    return _TEMPLATES[style].format(
        skill=escape(rec.skill),
        action=rec.action,
        ACTION=rec.action.upper(),
        icon=ACTION_ICON.get(rec.action, OTHER_ICON),
        move=move,
        target=target,
        stays=stays,
        reason=escape(rec.reason),
        note=note,
    )
