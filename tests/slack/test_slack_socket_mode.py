"""Socket Mode: the real SocketModeHandler connects via apps.connections.open; acks carry envelope ids."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_slack import APP_TOKEN, FakeSlack
from tests.slack_helpers import (
    USER,
    BotEnv,
    answers,
    event_body,
    mention,
    slack_fixture,  # noqa: F401 (fixture)
    slash,
    start_bot,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def socket_bot(slack: FakeSlack, make_engine: Any, tmp_path: Path) -> Iterator[BotEnv]:
    env = start_bot(slack, make_engine, tmp_path, "socket")
    yield env
    env.stop()


def test_connects_with_the_app_token(socket_bot: BotEnv) -> None:
    [opened] = socket_bot.slack.calls_to("apps.connections.open")
    assert opened.token == APP_TOKEN and opened.ok
    assert socket_bot.slack.socket.open_connections


def test_acks_carry_the_envelope_id(socket_bot: BotEnv) -> None:
    slack = socket_bot.slack
    ts = slack.add_message("C111", "<@UBOT> where is the office?", USER)
    acked = socket_bot.event(event_body(mention("where is the office?", ts), "EvSM1"))
    [ack] = slack.socket.acks_for(acked.envelope_id or "")
    assert ack.message == {"envelope_id": acked.envelope_id}
    # Slack redelivers with a new envelope and retry_attempt 1: acked again, answered once
    again = socket_bot.event(event_body(mention("where is the office?", ts), "EvSM1"), retry=1)
    assert slack.socket.acks_for(again.envelope_id or "")
    socket_bot.settle()
    assert len(answers(slack)) == 1 and len(socket_bot.rows()) == 1


def test_slash_command_ack_can_carry_a_payload(socket_bot: BotEnv) -> None:
    acked = socket_bot.command(slash("/tierwise", "skills", socket_bot.slack))
    ack = socket_bot.slack.socket.wait_ack(acked.envelope_id or "")
    assert ack["envelope_id"] == acked.envelope_id
    assert "`/ask`" in ack["payload"]["text"]
    plain = socket_bot.command(slash("/ask", "how do I get VPN access?", socket_bot.slack))
    assert socket_bot.slack.socket.wait_ack(plain.envelope_id or "") == {"envelope_id": plain.envelope_id}
    socket_bot.settle()
    assert len(answers(socket_bot.slack)) == 1
