"""bot.core.rec_format: every surface's wording of a tier recommendation, from one formatter."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.core.evidence import TierRecommendation
from bot.core.rec_format import ACTION_ICON, OTHER_ICON, format_recommendation, tier_move

DOWN = TierRecommendation("label-email", "downgrade", "medium", "small", "small is as good", {})
KEEP = TierRecommendation("ask", "keep", "small", None, "no pairs yet", {})


@dataclass(frozen=True)
class Row:
    """A stored row or App Home card: any object with the five fields."""

    skill: str
    action: str
    current_tier: str
    target_tier: str | None
    reason: str


def shout(text: str) -> str:
    return f"[{text}]"


@pytest.mark.parametrize(
    ("style", "down", "keep"),
    [
        ("line", "label-email: downgrade medium → small — small is as good", "ask: keep small — no pairs yet"),
        ("text", "DOWNGRADE label-email medium → small: small is as good", "KEEP      ask (on small): no pairs yet"),
        ("markdown", "- **downgrade** `label-email` medium → small: small is as good", "- **keep** `ask` (stays on small): no pairs yet"),
        ("slack_digest", "⬇️ *downgrade* `label-email` medium → small\nsmall is as good", "✅ *keep* `ask` (on small)\nno pairs yet"),
        ("slack_review", "⬇️ *label-email*: downgrade medium → small — small is as good", "✅ *ask*: keep small — no pairs yet"),
        ("slack_home", "⬇️ *label-email* downgrade medium → small  — small is as good", "✅ *ask* keep small  — no pairs yet"),
    ],
)  # fmt: skip
def test_each_style(style: str, down: str, keep: str) -> None:
    assert format_recommendation(DOWN, style) == down  # type: ignore[arg-type]
    assert format_recommendation(KEEP, style) == keep  # type: ignore[arg-type]


def test_escape_applies_to_the_data_not_the_markup() -> None:
    assert format_recommendation(DOWN, "slack_review", escape=shout) == (
        "⬇️ *[label-email]*: downgrade [medium] → [small] — [small is as good]"
    )
    assert (
        format_recommendation(KEEP, "slack_digest", escape=shout)
        == "✅ *keep* `[ask]` (on [small])\n[no pairs yet]"
    )


def test_home_note_sits_between_the_move_and_the_reason() -> None:
    line = format_recommendation(KEEP, "slack_home", note="_(2026-W46, open)_")
    assert line == "✅ *ask* keep small _(2026-W46, open)_ — no pairs yet"


def test_rows_and_unknown_actions() -> None:
    row = Row("hunt", "retire", "large", None, "a {brace} is kept")
    assert (
        format_recommendation(row, "slack_review")
        == f"{OTHER_ICON} *hunt*: retire large — a {{brace}} is kept"
    )
    assert set(ACTION_ICON) == {"downgrade", "upgrade", "keep", "fix"}


def test_tier_move() -> None:
    assert tier_move(DOWN) == "medium → small"
    assert tier_move(KEEP) == "small"
    assert tier_move(DOWN, shout) == "[medium] → [small]"
