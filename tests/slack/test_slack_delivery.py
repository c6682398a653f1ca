"""Posting answers when Slack pushes back: 429s and 5xx retried, lasting failures logged, long answers split."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.slack_helpers import (
    USER,
    BotEnv,
    answers,
    event_body,
    http_bot_fixture,  # noqa: F401 (fixture)
    mention,
    slack_fixture,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.timeout(60)


def _ask(env: BotEnv, question: str, event_id: str) -> str:
    ts = env.slack.add_message("C111", f"<@UBOT> {question}", USER)
    env.event(event_body(mention(question, ts), event_id))
    env.settle(20)
    return ts


def test_rate_limited_post_is_retried_after_retry_after(http_bot: BotEnv) -> None:
    http_bot.slack.fail_next("chat.postMessage", status=429, retry_after=0)
    ts = _ask(http_bot, "how do I get VPN access?", "Ev429")
    statuses = [c.status for c in http_bot.slack.calls_to("chat.postMessage")]
    assert statuses == [429, 200]
    [answer] = answers(http_bot.slack)
    assert answer["thread_ts"] == ts


def test_server_errors_are_retried(http_bot: BotEnv) -> None:
    http_bot.slack.fail_next("chat.postMessage", status=502)
    _ask(http_bot, "how do I get VPN access?", "Ev502")
    assert [c.status for c in http_bot.slack.calls_to("chat.postMessage")] == [502, 200]
    assert len(answers(http_bot.slack)) == 1


def test_post_that_keeps_failing_is_logged_and_the_row_kept(
    http_bot: BotEnv, caplog: pytest.LogCaptureFixture
) -> None:
    http_bot.slack.fail_next("chat.postMessage", status=500, times=10)
    with caplog.at_level(logging.ERROR, logger="bot.adapters.slack"):
        _ask(http_bot, "how do I get VPN access?", "Ev500")
    [row] = http_bot.rows()
    assert row.status == "ok" and row.event_id == "Ev500"
    assert answers(http_bot.slack) == []
    assert len(http_bot.slack.calls_to("chat.postMessage")) == 3  # first try + 2 retries
    assert any(row.id in r.getMessage() and "could not post" in r.getMessage() for r in caplog.records)


def test_long_answer_is_split_and_every_part_remembered(http_bot: BotEnv, script: Any) -> None:
    script.default = "\n\n".join(f"## Part {i}\n" + "Details of the step. " * 120 for i in range(12))
    ts = _ask(http_bot, "explain the whole onboarding", "EvLONG")
    parts = answers(http_bot.slack)
    assert len(parts) >= 2 and all(p["thread_ts"] == ts for p in parts)
    [row] = http_bot.rows()
    assert {http_bot.engine.ledger.request_for_message("C111", p["ts"]) for p in parts} == {row.id}
    assert parts[-1]["blocks"][-1]["type"] == "context_actions"  # native feedback_buttons (issue 11)
    assert all(b["type"] == "markdown" for p in parts[:-1] for b in p["blocks"])  # markdown (issue 11)


def test_model_failure_is_one_line_with_the_request_id(http_bot: BotEnv, script: Any) -> None:
    script.default = lambda tier, messages: TimeoutError("model took too long")
    _ask(http_bot, "how do I get VPN access?", "EvERR")
    [answer] = answers(http_bot.slack)
    [row] = http_bot.rows()
    assert row.status == "error"
    assert "\n" not in answer["text"] and answer["text"].startswith("Sorry:") and row.id in answer["text"]
    assert all(b["type"] != "actions" for b in answer["blocks"])


def test_engine_crash_is_one_line_and_logged(
    http_bot: BotEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: Any) -> Any:
        raise RuntimeError("database is gone")

    monkeypatch.setattr(http_bot.engine, "handle", broken)
    with caplog.at_level(logging.ERROR, logger="bot.adapters.slack"):
        _ask(http_bot, "how do I get VPN access?", "EvCRASH")
    [answer] = answers(http_bot.slack)
    assert answer["text"].startswith("Sorry: something went wrong on my side (ref ")
    assert "Traceback" not in answer["text"] and "database" not in answer["text"]
    assert any("engine failed" in r.getMessage() for r in caplog.records)


def test_empty_mention_gets_an_ephemeral_hint(http_bot: BotEnv, script: Any) -> None:
    _ask(http_bot, "", "EvEMPTY")
    assert answers(http_bot.slack) == [] and script.calls == []
    [note] = http_bot.slack.ephemerals
    assert note["text"].startswith("Tell me what you need")
