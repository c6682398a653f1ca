"""A visible queue in Slack (issue 14): while a question waits for the embedded model, its placeholder
says how many questions are ahead; the wait lands in the ledger's queue_ms. And the built-in model's
label goes on the first answer of a thread only."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bot.context.grounding import EMBEDDED_LABEL
from bot.models import embedded
from tests.slack_helpers import (
    USER,
    BotEnv,
    answers,
    event_body,
    http_bot_fixture,  # noqa: F401 (fixture)
    mention,
    message,
    slack_fixture,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.timeout(60)


def _hold_queue(started: threading.Event, release: threading.Event) -> threading.Thread:
    """Another question being answered by the embedded model (it holds the one llama context)."""

    def work() -> None:
        with embedded.QUEUE.turn():
            started.set()
            release.wait(30)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def _wait_text(slack: Any, text: str) -> Any:
    for _ in range(100):
        for call in [*slack.calls_to("chat.postMessage"), *slack.calls_to("chat.update")]:
            if call.params.get("text") == text:
                return call
        threading.Event().wait(0.1)
    raise AssertionError(f"no message or update saying {text!r}")


def test_waiting_question_shows_its_position_then_its_answer(http_bot: BotEnv, script: Any) -> None:
    slack = http_bot.slack

    def answer(tier: str, messages: list[dict[str, Any]]) -> str:
        with embedded.QUEUE.turn():  # the scripted model queues like the embedded one
            return "Request Zscaler Private Access in the Okta dashboard."

    script.default = answer
    first_in, release_first = threading.Event(), threading.Event()
    second_in, release_second = threading.Event(), threading.Event()
    first = _hold_queue(first_in, release_first)
    first_in.wait(5)
    second = _hold_queue(second_in, release_second)  # queued behind the first
    try:
        ts = slack.add_message("C111", "<@UBOT> how do I get VPN access?", USER)
        http_bot.event(event_body(mention("how do I get VPN access?", ts), "EvQ1"))
        # The placeholder (posted at once, or by the progress timer first and then updated) says it.
        shown = _wait_text(slack, "2 questions ahead of yours. Working on it…")
        assert shown.method in ("chat.postMessage", "chat.update")
        placeholder = slack.calls_to("chat.postMessage")[0]
        assert placeholder.params["thread_ts"] == ts
        release_first.set()
        update = slack.wait_for(
            "chat.update", lambda c: "1 question ahead" in str(c.params.get("text")), timeout=10
        )
        assert update.params["text"] == "1 question ahead of yours. Working on it…"
        release_second.set()
        http_bot.settle(20)
    finally:
        release_first.set()
        release_second.set()
        first.join(5)
        second.join(5)
    texts = [c.params.get("text") for c in slack.calls_to("chat.update")]
    assert "Working on it…" in texts  # our turn came: the position is replaced
    [posted] = answers(slack)
    assert posted["text"].startswith("Request Zscaler Private Access")
    [row] = http_bot.rows()
    assert row.queue_ms > 0


def test_label_on_the_first_answer_of_a_thread_only(http_bot: BotEnv, script: Any) -> None:
    slack = http_bot.slack
    script.on("small", "Request Zscaler Private Access in the Okta dashboard.", "Usually within a day.")
    root = slack.add_message("C111", "<@UBOT> how do I get VPN access?", USER)
    http_bot.event(event_body(mention("how do I get VPN access?", root), "EvL1"))
    http_bot.settle()
    follow = slack.add_message("C111", "is it quick?", USER, thread_ts=root)
    http_bot.event(event_body(message("is it quick?", follow, thread_ts=root), "EvL2"))
    http_bot.settle()
    first, second = answers(slack)
    assert EMBEDDED_LABEL in str(first["blocks"])
    assert "it/vpn-access.md" in str(first["blocks"])  # the sources, under the answer
    assert EMBEDDED_LABEL not in str(second["blocks"])
