"""Slash commands, `/tierwise`, the message shortcut and App Home, end to end."""

from __future__ import annotations

import time
from typing import Any

import pytest

from bot.adapters.slack.blocks import PROGRESS_TEXT
from tests.slack_helpers import (
    ADMIN,
    USER,
    BotEnv,
    answers,
    bot_env_fixture,  # noqa: F401 (fixture)
    button_click,
    event_body,
    home_opened,
    http_bot_fixture,  # noqa: F401 (fixture)
    shortcut,
    slack_fixture,  # noqa: F401 (fixture)
    slash,
    validate_message_payload,
)

pytestmark = pytest.mark.timeout(60)


def _responses(env: BotEnv, command: str, user: str) -> list[Any]:
    return env.slack.calls_to(f"response_url:cmd-{command}-{user}")


def test_tierwise_help_comes_back_in_the_ack(bot_env: BotEnv) -> None:
    acked = bot_env.command(slash("/tierwise", "help", bot_env.slack))
    assert acked.status == 200 and acked.latency < 1.0
    validate_message_payload(acked.payload)
    assert "`/ask`" in acked.payload["text"] and "tier set" not in acked.payload["text"]
    admin = bot_env.command(slash("/tierwise", "", bot_env.slack, user=ADMIN))
    assert "tier set" in admin.payload["text"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("frobnicate", "Unknown subcommand `frobnicate`."), ("tier set ask", "Usage: `/tierwise tier set")],
)
def test_mistakes_get_a_usage_hint(http_bot: BotEnv, text: str, expected: str) -> None:
    acked = http_bot.command(slash("/tierwise", text, http_bot.slack, user=ADMIN))
    assert acked.payload["text"].startswith(expected) and "\n" not in acked.payload["text"]
    assert "Traceback" not in acked.payload["text"]


def test_non_admin_cannot_change_tiers(http_bot: BotEnv) -> None:
    for text in ("tier set ask large because", "tier history"):
        acked = http_bot.command(slash("/tierwise", text, http_bot.slack))
        assert acked.payload == {"text": "Only Tierwise admins can see or change tier assignments."}
    http_bot.settle()
    assert http_bot.engine.ledger.tier_history() == []
    assert http_bot.engine.configured_tier(http_bot.engine.registry.get("ask")) == ("small", "skill default")
    assert _responses(http_bot, "/tierwise", USER) == []


def test_admin_changes_a_tier_and_sees_the_history(http_bot: BotEnv) -> None:
    acked = http_bot.command(
        slash("/tierwise", "tier set ask medium answers too shallow", http_bot.slack, user=ADMIN)
    )
    assert acked.status == 200 and acked.payload is None  # the work happens lazily
    http_bot.settle()
    [row] = http_bot.engine.ledger.tier_history()
    assert (row.skill, row.tier, row.previous_tier, row.assigned_by, row.source, row.reason) == (
        "ask", "medium", "small", ADMIN, "slack", "answers too shallow",
    )  # fmt: skip
    assert http_bot.engine.configured_tier(http_bot.engine.registry.get("ask")) == (
        "medium",
        "admin assignment",
    )
    [done] = _responses(http_bot, "/tierwise", ADMIN)
    assert done.params["text"] == "*ask*: small → *medium*, from the next request on."
    assert done.params["response_type"] == "ephemeral"

    http_bot.command(slash("/tierwise", "tier set ask huge because", http_bot.slack, user=ADMIN))
    http_bot.command(slash("/tierwise", "tier history ask", http_bot.slack, user=ADMIN))
    http_bot.settle()
    bad, history = _responses(http_bot, "/tierwise", ADMIN)[1:]
    assert bad.params["text"].startswith("Tier not changed: unknown tier 'huge'.")
    assert "*ask* small → medium by <@UADMIN>: answers too shallow" in history.params["text"]
    assert len(http_bot.engine.ledger.tier_history()) == 1


def test_usage_lists_requests_per_skill(http_bot: BotEnv, script: Any) -> None:
    http_bot.command(slash("/ask", "How do I get VPN access?", http_bot.slack))
    http_bot.settle()
    http_bot.command(slash("/tierwise", "usage 7d", http_bot.slack))
    http_bot.settle()
    [usage] = _responses(http_bot, "/tierwise", USER)
    assert usage.params["text"].startswith("*Usage, last 7 days*\n• *ask*: 1 requests")


def test_skill_command_shows_progress_then_the_answer(http_bot: BotEnv, script: Any) -> None:
    def slow(tier: str, messages: list[dict[str, Any]]) -> str:
        time.sleep(1.0)
        return "Use the *IT portal*."

    script.default = slow
    acked = http_bot.command(slash("/ask", "How do I get VPN access?", http_bot.slack))
    assert acked.status == 200 and acked.latency < 1.0 and acked.payload is None
    http_bot.settle()
    placeholder = http_bot.slack.calls_to("chat.postMessage")[0]
    assert placeholder.params["channel"] == "C111" and "thread_ts" not in placeholder.params
    assert placeholder.params["text"] == PROGRESS_TEXT
    [update] = http_bot.slack.calls_to("chat.update")
    assert update.params["ts"] == placeholder.response["ts"]
    blocks = update.params["blocks"]
    assert blocks[0]["elements"][0]["text"] == "<@UUSER> used `/ask`: How do I get VPN access?"
    assert blocks[1] == {"type": "markdown", "text": "Use the *IT portal*."}  # markdown block (issue 11)
    [row] = http_bot.rows()
    assert (row.skill, row.route_reason.split(";")[0]) == ("ask", "slash command: ask")


def test_skill_command_refused_outside_its_channels(http_bot: BotEnv, script: Any) -> None:
    http_bot.command(slash("/tw-vault", "vault key location", http_bot.slack))
    http_bot.settle()
    [note] = _responses(http_bot, "/tw-vault", USER)
    assert note.params == {"text": "/tw-vault is available only in #vault.", "response_type": "ephemeral",
                           "replace_original": False}  # fmt: skip
    assert answers(http_bot.slack) == [] and script.calls == []


def test_thread_skill_command_without_text_gets_a_hint(http_bot: BotEnv, script: Any) -> None:
    acked = http_bot.command(slash("/tw-digest", "  ", http_bot.slack))
    assert "*Digest thread*" in acked.payload["text"]
    http_bot.settle()
    assert http_bot.rows() == [] and script.calls == []


def test_structured_answer_is_rendered_as_fields(http_bot: BotEnv, script: Any) -> None:
    script.default = (
        '{"category": "billing", "priority": "high", "tags": ["invoice", "overdue"], "reason": "late"}'
    )
    http_bot.command(slash("/tw-label", "Invoice 42 is overdue!", http_bot.slack))
    http_bot.settle()
    [answer] = answers(http_bot.slack)
    fields = [f["text"] for f in answer["blocks"][1]["fields"]]
    assert fields == ["*Category*\nbilling", "*Priority*\nhigh", "*Tags*\ninvoice, overdue", "*Reason*\nlate"]
    assert "{" not in answer["text"]


def test_answer_goes_through_response_url_where_the_bot_cannot_post(http_bot: BotEnv, script: Any) -> None:
    http_bot.slack.fail_next("chat.postMessage", status=200, error="not_in_channel", times=3)
    http_bot.command(slash("/ask", "How do I get VPN access?", http_bot.slack, channel="CNOTIN"))
    http_bot.settle()
    [posted] = _responses(http_bot, "/ask", USER)
    assert posted.params["response_type"] == "in_channel"
    buttons = posted.params["blocks"][-1]["elements"][0]  # native feedback_buttons (issue 11)
    assert buttons["positive_button"]["value"] == f"up:{http_bot.rows()[0].id}"


def test_message_shortcut_summarizes_the_thread(http_bot: BotEnv, script: Any) -> None:
    slack = http_bot.slack
    slack.add_user("UANN", profile={"display_name": "Ann"})
    slack.add_user("UBOB", profile={"display_name": "Bob"})
    root = slack.add_message("C111", "Shall we ship *Friday*?", "UANN", ts="1700000000.000100")
    slack.add_message("C111", "Yes, <@UANN> owns the release", "UBOB", ts="1700000120.000200", thread_ts=root)
    clicked = slack.add_message("C111", "ok", "UANN", ts="1700000180.000300", thread_ts=root)
    script.default = "Decisions: ship Friday."
    msg = {"type": "message", "user": "UANN", "text": "ok", "ts": clicked, "thread_ts": root}
    acked = http_bot.interactive(shortcut("tw_digest", "C111", msg, slack))
    assert acked.status == 200
    http_bot.settle()
    prompt = script.calls[-1][1][-1]["content"]
    assert (
        "Ann (22:13): Shall we ship *Friday*?\nBob (22:15): Yes, @Ann owns the release\nAnn (22:16): ok"
        in prompt
    )
    [answer] = answers(slack)
    assert answer["thread_ts"] == root
    assert answer["blocks"][0]["elements"][0]["text"] == "<@UUSER> used `Digest thread`"
    [row] = http_bot.rows()
    assert (row.skill, row.thread_ts) == ("tw-digest", root)


def test_app_home_differs_for_admins(http_bot: BotEnv, script: Any) -> None:
    slack = http_bot.slack
    http_bot.event(event_body(home_opened(USER), "EvHOME1"))
    http_bot.event(event_body(home_opened(ADMIN), "EvHOME2"))
    http_bot.event(event_body({**home_opened(USER), "tab": "messages"}, "EvHOME3"))
    http_bot.settle()
    assert len(slack.calls_to("views.publish")) == 2
    user_view, admin_view = slack.home_views[USER], slack.home_views[ADMIN]
    assert "/ask" in str(user_view["blocks"]) and "/tw-digest" in str(user_view["blocks"])
    assert "Admin" not in str(user_view["blocks"])
    fields = [f["text"] for b in admin_view["blocks"] for f in b.get("fields", [])]
    assert "*ask*\ntier `small` (skill default)" in fields
    assert "*Requests*\n0" in fields


def _digest_with_recommendation(env: BotEnv) -> tuple[dict[str, Any], int]:
    """A stored recommendation and the digest message carrying its buttons (as bot.economics.digest posts it)."""
    from bot.ledger.models import Recommendation

    with env.engine.ledger.session() as s:
        row = Recommendation(period="2026-W46", skill="ask", action="upgrade", current_tier="small",
                             target_tier="medium", reason="too many 👎")  # fmt: skip
        s.add(row)
        s.commit()
        rec_id = int(row.id or 0)
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "⬆️ *upgrade* `ask` small → medium"}},
        {
            "type": "actions",
            "block_id": f"rec_{rec_id}",
            "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": "Apply"},
                 "action_id": "tierwise_rec_apply", "value": str(rec_id), "style": "primary"},
                {"type": "button", "text": {"type": "plain_text", "text": "Dismiss"},
                 "action_id": "tierwise_rec_dismiss", "value": str(rec_id)},
            ],
        },
    ]  # fmt: skip
    ts = env.slack.add_message("CADMIN", "Tierwise digest 2026-W46", "UBOT", bot_id="BBOT", blocks=blocks)
    return {"channel": "CADMIN", "ts": ts, "type": "message", "text": "Tierwise digest 2026-W46",
            "blocks": blocks}, rec_id  # fmt: skip


def test_digest_recommendation_buttons_are_for_admins(http_bot: BotEnv) -> None:
    from bot.ledger.models import Recommendation

    msg, rec_id = _digest_with_recommendation(http_bot)
    click = button_click("tierwise_rec_apply", str(rec_id), msg, http_bot.slack)
    click["actions"][0]["block_id"] = f"rec_{rec_id}"
    assert http_bot.interactive(click).status == 200
    http_bot.settle()
    assert (
        http_bot.slack.ephemerals[-1]["text"] == "Only Tierwise admins can apply or dismiss recommendations."
    )
    assert http_bot.engine.ledger.tier_history() == []

    admin_click = {**click, "user": {"id": ADMIN}}
    http_bot.interactive(admin_click)
    http_bot.settle()
    [assignment] = http_bot.engine.ledger.tier_history()
    assert (assignment.skill, assignment.tier, assignment.assigned_by) == ("ask", "medium", ADMIN)
    with http_bot.engine.ledger.session() as s:
        assert s.get(Recommendation, rec_id).status == "applied"
    updated = http_bot.slack.get_message("CADMIN", msg["ts"])
    assert updated["blocks"][1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "✅ Applied by <@UADMIN>: `ask` small → medium"}],
    }
    http_bot.interactive(admin_click)  # a second click: already applied
    http_bot.settle()
    assert http_bot.slack.ephemerals[-1]["text"].startswith(f"Not done: recommendation #{rec_id} is applied")
