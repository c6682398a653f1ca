"""Mentions, DMs, thread follow-ups and redeliveries, driven through the real transports."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.slack.blocks import PROGRESS_TEXT
from tests.fakes.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack, load_fixture
from tests.slack_helpers import (
    USER,
    BotEnv,
    answers,
    bot_env_fixture,  # noqa: F401 (fixture)
    event_body,
    http_bot_fixture,  # noqa: F401 (fixture)
    mention,
    message,
    slack_fixture,  # noqa: F401 (fixture)
    start_bot,
)

pytestmark = pytest.mark.timeout(60)


def _slow(seconds: float, text: str = "**VPN**: use the GlobalProtect client.") -> Any:
    def reply(tier: str, messages: list[dict[str, Any]]) -> str:
        time.sleep(seconds)
        return text

    return reply


def test_mention_is_acked_at_once_and_answered_in_its_thread(bot_env: BotEnv, script: Any) -> None:
    script.default = _slow(2.0)
    slack = bot_env.slack
    ts = slack.add_message("C111", "<@UBOT> how do I get VPN access?", USER)
    acked = bot_env.event(event_body(mention("how do I get VPN access?", ts), "EvSLOW1"))
    assert acked.status == 200 and acked.latency < 1.0
    assert answers(slack) == []  # the model is still working

    update = slack.wait_for("chat.update", timeout=10)
    placeholder = slack.calls_to("chat.postMessage")[0]
    assert placeholder.params["thread_ts"] == ts and placeholder.params["text"] == PROGRESS_TEXT
    assert update.params["ts"] == placeholder.response["ts"]
    bot_env.settle()
    [answer] = answers(slack)
    assert answer["thread_ts"] == ts and answer["text"].startswith("**VPN**: use the GlobalProtect client.")
    [row] = bot_env.rows()
    assert (row.event_id, row.thread_ts, row.channel, row.user_id, row.status) == (
        "EvSLOW1",
        ts,
        "C111",
        USER,
        "ok",
    )
    assert bot_env.engine.ledger.request_for_message("C111", answer["ts"]) == row.id
    assert script.calls[-1][1][-1]["content"].endswith("how do I get VPN access?")  # mention stripped


def test_redelivered_event_gets_no_second_answer(bot_env: BotEnv, script: Any) -> None:
    slack = bot_env.slack
    ts = slack.add_message("C111", "<@UBOT> where is the office?", USER)
    body = event_body(mention("where is the office?", ts), "EvRETRY1")
    assert bot_env.event(body).status == 200
    bot_env.settle()
    assert bot_env.event(body, retry=1).status == 200
    bot_env.settle()
    assert len(answers(slack)) == 1
    assert len(bot_env.rows()) == 1
    assert len(script.calls) == 1


def test_redelivery_while_the_first_is_still_working(http_bot: BotEnv, script: Any) -> None:
    script.default = _slow(1.2)
    slack = http_bot.slack
    ts = slack.add_message("C111", "<@UBOT> expense a monitor?", USER)
    body = event_body(mention("expense a monitor?", ts), "EvRETRY2")
    http_bot.event(body)
    time.sleep(0.1)
    http_bot.event(body, retry=1)
    http_bot.settle()
    assert len(answers(slack)) == 1 and len(http_bot.rows()) == 1
    assert [m for m in slack.bot_messages() if m["text"] == PROGRESS_TEXT] == []  # no stray placeholder


def test_redelivery_after_a_restart(slack: FakeSlack, make_engine: Any, tmp_path: Path, script: Any) -> None:
    first = start_bot(slack, make_engine, tmp_path)
    ts = slack.add_message("C111", "<@UBOT> leave days?", USER)
    body = event_body(mention("leave days?", ts), "EvRESTART")
    first.event(body)
    first.settle()
    first.stop()
    second = start_bot(slack, make_engine, tmp_path)  # same data dir: same ledger
    try:
        assert second.event(body, retry=2).status == 200
        second.settle()
        assert len(answers(slack)) == 1 and len(second.rows()) == 1
    finally:
        second.stop()


def test_dm_is_answered_in_the_dm(http_bot: BotEnv, script: Any) -> None:
    slack = http_bot.slack
    ts = slack.add_message("DUSER", "How many days of leave do I get?", USER)
    http_bot.event(event_body(message("How many days of leave do I get?", ts, channel="DUSER"), "EvDM1"))
    http_bot.settle()
    [answer] = answers(slack, "DUSER")
    assert "thread_ts" not in answer  # the user did not thread, neither do we
    assert http_bot.rows()[0].channel == "DUSER"


def test_threaded_dm_uses_assistant_status_and_history(http_bot: BotEnv, script: Any) -> None:
    script.on("small", "First answer.").default = _slow(0.5, "Second answer.")
    slack = http_bot.slack
    first = slack.add_message("DUSER", "What is the hotel cap in Toronto?", USER)
    http_bot.event(event_body(message("What is the hotel cap in Toronto?", first, channel="DUSER"), "EvDM2"))
    http_bot.settle()
    root = answers(slack, "DUSER")[0]["ts"]  # the user replies in a thread under our answer
    reply = slack.add_message("DUSER", "And in Paris?", USER, thread_ts=root)
    http_bot.event(event_body(message("And in Paris?", reply, channel="DUSER", thread_ts=root), "EvDM3"))
    http_bot.settle()
    status = slack.calls_to("assistant.threads.setStatus")
    assert status and status[0].params["thread_ts"] == root
    last = answers(slack, "DUSER")[-1]
    assert last["thread_ts"] == root and last["text"] == "Second answer."
    sent = script.calls[-1][1]
    turns = [(m["role"], m["content"]) for m in sent if m["role"] in ("user", "assistant")]
    assert turns[-2] == ("assistant", "First answer.")
    assert turns[-1][0] == "user" and "And in Paris?" in turns[-1][1]


def test_follow_up_in_an_answered_thread_needs_no_mention(bot_env: BotEnv, script: Any) -> None:
    script.on("small", "Use the IT portal.", "Yes, within a day.")
    slack = bot_env.slack
    root = slack.add_message("C111", "<@UBOT> how do I get VPN access?", USER)
    bot_env.event(event_body(mention("how do I get VPN access?", root), "EvF1"))
    bot_env.settle()
    follow = slack.add_message("C111", "is it quick?", USER, thread_ts=root)
    bot_env.event(event_body(message("is it quick?", follow, thread_ts=root), "EvF2"))
    bot_env.settle()
    texts = [a["text"] for a in answers(slack)]
    assert texts == ["Use the IT portal.", "Yes, within a day."]
    assert all(a["thread_ts"] == root for a in answers(slack))
    history = [(m["role"], m["content"]) for m in script.calls[-1][1] if m["role"] in ("user", "assistant")]
    assert ("assistant", "Use the IT portal.") in history
    # a reply in a thread the bot never answered is not for us
    other = slack.add_message("C111", "lunch?", "UOTHER")
    reply = slack.add_message("C111", "sure", USER, thread_ts=other)
    bot_env.event(event_body(message("sure", reply, thread_ts=other), "EvF3"))
    bot_env.settle()
    assert len(answers(slack)) == 2 and len(bot_env.rows()) == 2


def test_mention_inside_a_thread_is_answered_once(http_bot: BotEnv, script: Any) -> None:
    """Slack sends app_mention and message for the same text, with different event ids."""
    script.on("small", "First.", "Second.")
    slack = http_bot.slack
    root = slack.add_message("C111", "<@UBOT> who is on call?", USER)
    http_bot.event(event_body(mention("who is on call?", root), "EvT1"))
    http_bot.settle()
    ts = slack.add_message("C111", "<@UBOT> and tonight?", USER, thread_ts=root)
    http_bot.event(event_body(mention("and tonight?", ts, thread_ts=root), "EvT2"))
    http_bot.event(event_body(message("<@UBOT> and tonight?", ts, thread_ts=root), "EvT3"))
    http_bot.settle()
    assert [a["text"] for a in answers(slack)] == ["First.", "Second."]
    assert len(http_bot.rows()) == 2


def test_bots_edits_and_deletions_are_ignored(http_bot: BotEnv, script: Any) -> None:
    slack = http_bot.slack
    dm = "DUSER"
    events = []
    for name in ("message_bot_message", "message_from_app_bot", "message_changed", "message_deleted"):
        event = load_fixture(f"events/{name}.json")["event"]
        event["channel"], event["channel_type"] = dm, "im"
        events.append(event)
    own = message("I am the bot", "1700000999.000100", channel=dm, user="UBOT")
    own["bot_id"] = "BBOT"
    events.append(own)
    for i, event in enumerate(events):
        assert http_bot.event(event_body(event, f"EvIGN{i}")).status == 200
    http_bot.settle()
    assert answers(slack) == [] and http_bot.rows() == [] and script.calls == []
    # …while a person's file share with text is a message like any other
    share = load_fixture("events/message_file_share.json")["event"]
    share.update({"channel": dm, "channel_type": "im", "user": USER, "text": "what is this file?"})
    http_bot.event(event_body(share, "EvFILE"))
    http_bot.settle()
    assert len(answers(slack, dm)) == 1


def test_channel_allow_list_refusal_is_ephemeral(http_bot: BotEnv, script: Any) -> None:
    slack = http_bot.slack
    ts = slack.add_message("C111", "<@UBOT> vault key location", USER)
    http_bot.event(event_body(mention("vault key location", ts), "EvV1"))
    http_bot.settle()
    [note] = slack.ephemerals
    assert note["user"] == USER and note["thread_ts"] == ts
    assert note["text"] == "/tw-vault is available only in #vault."
    assert answers(slack) == [] and script.calls == []
    # the fake names a channel after its id: "VAULT" is #vault, where the skill may answer
    ts = slack.add_message("VAULT", "<@UBOT> vault key location", USER)
    http_bot.event(event_body(mention("vault key location", ts, channel="VAULT"), "EvV2"))
    http_bot.settle()
    assert len(answers(slack, "VAULT")) == 1


def test_tokens_never_reach_the_log(bot_env: BotEnv, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        ts = bot_env.slack.add_message("C111", "<@UBOT> how do I get VPN access?", USER)
        bot_env.event(event_body(mention("how do I get VPN access?", ts), "EvLOG"))
        bot_env.settle()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) > 10  # bolt and slack_sdk did log at DEBUG
    for secret in (BOT_TOKEN, APP_TOKEN, SIGNING_SECRET):
        assert secret not in logged


def test_a_very_long_thread_keeps_its_root_and_newest_messages(
    http_bot: BotEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.adapters.slack import app

    monkeypatch.setattr(app, "THREAD_PAGE_SIZE", 10)  # 25 messages: 3 pages
    monkeypatch.setattr(app, "THREAD_MESSAGES_MAX", 20)
    slack = http_bot.slack
    root = slack.add_message("C111", "the root", USER)
    for i in range(24):
        slack.add_message("C111", f"reply {i}", USER, thread_ts=root)
    thread = app.SlackBot(http_bot.engine, slack.web_client()).fetch_thread("C111", root)
    assert len(slack.calls_to("conversations.replies")) == 3
    assert [m["text"] for m in thread] == ["the root", *(f"reply {i}" for i in range(5, 24))]
