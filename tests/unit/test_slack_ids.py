"""The Block Kit ids live in bot.adapters.slack.ids: the builders write them, the handlers match them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.adapters.slack import digest as digest_blocks
from bot.adapters.slack import ids
from bot.adapters.slack.blocks import feedback_block, feedback_modal, progress_message
from bot.core.evidence import TierRecommendation
from bot.economics.digest import Digest, Totals

ACTIONS = (
    ids.FEEDBACK_UP,
    ids.FEEDBACK_DOWN,
    ids.FEEDBACK_NATIVE,
    ids.STOP_ACTION,
    ids.REC_APPLY,
    ids.REC_DISMISS,
)


def _actions(blocks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(b["block_id"], e["action_id"]) for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_every_button_has_its_own_action_id() -> None:
    # bolt dispatches on action_id alone: two buttons sharing one would reach the same handler.
    assert len(set(ACTIONS)) == len(ACTIONS)


def test_the_wire_values_are_unchanged() -> None:
    # Messages already posted carry these: a new value would leave their buttons unanswered.
    assert (ids.REC_APPLY, ids.REC_DISMISS, ids.rec_block_id(7)) == (
        "tierwise_rec_apply",
        "tierwise_rec_dismiss",
        "rec_7",
    )
    assert (ids.FEEDBACK_NATIVE, ids.STOP_ACTION, ids.FEEDBACK_MODAL) == (
        "tierwise_feedback",
        "tierwise_stop",
        "feedback_modal",
    )


def test_answer_builders_write_the_shared_ids() -> None:
    assert feedback_block("r1")["block_id"] == ids.FEEDBACK_BLOCK
    assert {e["action_id"] for e in feedback_block("r1")["elements"]} == {ids.FEEDBACK_NATIVE}
    stop = progress_message(stop_key="k1")
    assert (ids.STOP_BLOCK, ids.STOP_ACTION) in _actions(stop.blocks)
    modal = feedback_modal("r1")
    assert modal["callback_id"] == ids.FEEDBACK_MODAL
    comment = next(b for b in modal["blocks"] if b["type"] == "input")
    assert (comment["block_id"], comment["element"]["action_id"]) == (ids.COMMENT_BLOCK, ids.COMMENT_ACTION)


def test_digest_buttons_write_the_shared_ids() -> None:
    rec = TierRecommendation("ask", "upgrade", "small", "medium", "better", {})
    start = datetime(2026, 11, 9, tzinfo=UTC)
    d = Digest(
        period="2026-W46",
        start=start,
        end=start,
        timezone="UTC",
        totals=Totals(0, 0, 0.0, 0, 0.0, 0, 0, 0),
        skills=[],
        recommendations=[rec],
        comments=[],
        side_spend={},
        recommendation_ids={"ask": 5},
    )
    assert _actions(digest_blocks.to_blocks(d)) == [
        (ids.rec_block_id(5), ids.REC_APPLY),
        (ids.rec_block_id(5), ids.REC_DISMISS),
    ]
