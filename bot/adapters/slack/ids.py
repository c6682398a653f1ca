"""Every Block Kit id Tierwise puts on the wire and matches on the way back, in one place.

The block builders write these and the handlers (bolt matchers) listen for them: one constant each
means a rename cannot leave a button nobody answers. Changing a value breaks buttons on messages
already posted, so the values are part of the wire format.
"""

from __future__ import annotations

# Feedback on an answer.
FEEDBACK_BLOCK = "feedback"
FEEDBACK_UP = "feedback_up"  # the custom buttons of answers posted before native feedback buttons
FEEDBACK_DOWN = "feedback_down"
FEEDBACK_NATIVE = "tierwise_feedback"  # feedback_buttons; value "up:<request id>" / "down:<request id>"
FEEDBACK_MODAL = "feedback_modal"  # the 👎 comment modal's callback_id
COMMENT_BLOCK = "comment"
COMMENT_ACTION = "comment"

# The placeholder's Stop button; value: the running answer's key.
STOP_BLOCK = "stop"
STOP_ACTION = "tierwise_stop"

# The weekly digest's tier recommendations; value = recommendation id, block id = rec_<id>.
REC_APPLY = "tierwise_rec_apply"
REC_DISMISS = "tierwise_rec_dismiss"
REC_BLOCK_PREFIX = "rec_"


def rec_block_id(rec_id: int) -> str:
    """The actions block holding one recommendation's Apply/Dismiss buttons."""
    return f"{REC_BLOCK_PREFIX}{rec_id}"
