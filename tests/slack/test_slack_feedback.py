"""👍/👎 from buttons, the 👎 modal and reactions: one rating per user per request, on the right request."""

from __future__ import annotations

from typing import Any

import pytest

from bot.adapters.slack.ids import FEEDBACK_DOWN, FEEDBACK_UP
from tests.slack_helpers import (
    USER,
    BotEnv,
    answers,
    bot_env_fixture,  # noqa: F401 (fixture)
    button_click,
    event_body,
    http_bot_fixture,  # noqa: F401 (fixture)
    mention,
    modal_submission,
    reaction,
    slack_fixture,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.timeout(60)


def _answer(env: BotEnv, question: str, event_id: str) -> tuple[dict[str, Any], str]:
    """Ask in C111 and return the bot's answer message and its request id."""
    ts = env.slack.add_message("C111", f"<@UBOT> {question}", USER)
    env.event(event_body(mention(question, ts), event_id))
    env.settle()
    answer = next(a for a in answers(env.slack) if a["thread_ts"] == ts)
    return answer, env.engine.ledger.request_for_message("C111", answer["ts"])


def _votes(env: BotEnv) -> list[tuple[str, str, int, str | None, str]]:
    return sorted((f.request_id, f.user_id, f.score, f.comment, f.source) for f in env.feedback())


def test_buttons_and_modal_land_on_the_right_request(bot_env: BotEnv) -> None:
    slack = bot_env.slack
    first, first_id = _answer(bot_env, "how do I get VPN access?", "EvA1")
    second, second_id = _answer(bot_env, "how many days of leave?", "EvA2")
    # Answers carry native feedback_buttons now (issue 11); this test clicks the custom buttons that
    # answers posted before still carry, which must keep working.
    assert first["blocks"][-1]["elements"][0]["positive_button"]["value"] == f"up:{first_id}"

    assert bot_env.interactive(button_click(FEEDBACK_UP, second_id, second, slack)).status == 200
    bot_env.settle()
    assert _votes(bot_env) == [(second_id, USER, 1, None, "slack-button")]
    assert slack.ephemerals[-1]["text"] == "Thanks for the 👍." and slack.ephemerals[-1]["user"] == USER

    # the same user changes their mind: still one row, now 👎, and the modal asks why
    acked = bot_env.interactive(button_click(FEEDBACK_DOWN, second_id, second, slack))
    assert acked.status == 200 and acked.latency < 1.0
    bot_env.settle()
    assert _votes(bot_env) == [(second_id, USER, -1, None, "slack-button")]
    [opened] = slack.calls_to("views.open")
    view = opened.json_field("view")
    assert view["private_metadata"] == second_id
    assert slack.ephemerals[-1]["text"].startswith("Updated your rating to 👎.")

    assert bot_env.interactive(modal_submission(view, "It cited the wrong policy.")).status == 200
    bot_env.settle()
    assert _votes(bot_env) == [(second_id, USER, -1, "It cited the wrong policy.", "slack-modal")]

    # another user's vote is a second row; the first answer is untouched
    bot_env.interactive(button_click(FEEDBACK_UP, second_id, second, slack, user="UOTHER"))
    bot_env.settle()
    assert len(_votes(bot_env)) == 2
    assert all(vote[0] == second_id for vote in _votes(bot_env))


def test_an_empty_modal_keeps_the_vote(http_bot: BotEnv) -> None:
    answer, request_id = _answer(http_bot, "where is the office?", "EvA3")
    http_bot.interactive(button_click(FEEDBACK_DOWN, request_id, answer, http_bot.slack))
    http_bot.settle()
    view = http_bot.slack.calls_to("views.open")[0].json_field("view")
    http_bot.interactive(modal_submission(view, None))
    http_bot.settle()
    assert _votes(http_bot) == [(request_id, USER, -1, None, "slack-modal")]


def test_reactions_count_as_feedback(http_bot: BotEnv) -> None:
    slack = http_bot.slack
    answer, request_id = _answer(http_bot, "who do I page for a SEV1?", "EvA4")
    http_bot.event(event_body(reaction("+1", "C111", answer["ts"]), "EvR1"))
    http_bot.settle()
    assert _votes(http_bot) == [(request_id, USER, 1, None, "slack-reaction")]
    http_bot.event(event_body(reaction("thumbsdown::skin-tone-3", "C111", answer["ts"]), "EvR2"))
    http_bot.settle()
    assert _votes(http_bot) == [(request_id, USER, -1, None, "slack-reaction")]
    # not a thumb, or not on an answer: nothing
    question = slack.add_message("C111", "unrelated", USER)
    http_bot.event(event_body(reaction("heart", "C111", answer["ts"]), "EvR3"))
    http_bot.event(event_body(reaction("thumbsup", "C111", question), "EvR4"))
    http_bot.settle()
    assert len(_votes(http_bot)) == 1
    assert slack.ephemerals == []  # reactions need no confirmation


def test_click_on_an_unknown_request(http_bot: BotEnv) -> None:
    msg = {"channel": "C111", "ts": "1700000000.000900", "type": "message", "text": "old"}
    http_bot.interactive(button_click(FEEDBACK_UP, "0000000000000000", msg, http_bot.slack))
    http_bot.settle()
    assert http_bot.feedback() == []
    assert http_bot.slack.ephemerals[-1]["text"] == "I can't find that answer any more."
