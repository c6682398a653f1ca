"""Admin controls in Slack for the tier economics: `/tierwise review`, `/tierwise digest now`,
Dismiss and stale Apply, the App Home recommendations, and budget alerts in the admin channel."""

from __future__ import annotations

from typing import Any

import pytest

from tests.slack_helpers import (
    ADMIN,
    USER,
    BotEnv,
    button_click,
    event_body,
    home_opened,
    http_bot_fixture,  # noqa: F401 (fixture)
    slack_fixture,  # noqa: F401 (fixture)
    slash,
    start_bot,
)

pytestmark = pytest.mark.timeout(60)


def _responses(env: BotEnv, user: str) -> list[Any]:
    return env.slack.calls_to(f"response_url:cmd-/tierwise-{user}")


def _store_recommendation(env: BotEnv, **fields: Any) -> int:
    from bot.ledger.models import Recommendation

    values = {
        "period": "2026-W46",
        "skill": "ask",
        "action": "upgrade",
        "current_tier": "small",
        "target_tier": "medium",
        "reason": "👍 52% [38–66%] n=50 below 80%; medium wins 31 of 40 shadow pairs",
        **fields,
    }
    with env.engine.ledger.session() as s:
        row = Recommendation(**values)
        s.add(row)
        s.commit()
        return int(row.id or 0)


def test_review_and_digest_now_are_for_admins_only(http_bot: BotEnv) -> None:
    for text in ("review", "digest now"):
        acked = http_bot.command(slash("/tierwise", text, http_bot.slack))
        assert acked.payload == {"text": "Only Tierwise admins can see or change tier assignments."}
    http_bot.settle()
    assert _responses(http_bot, USER) == []
    assert http_bot.slack.calls_to("chat.postMessage") == []


def test_admin_review_lists_one_recommendation_per_skill(http_bot: BotEnv) -> None:
    http_bot.command(slash("/tierwise", "review", http_bot.slack, user=ADMIN))
    http_bot.settle()
    [reply] = _responses(http_bot, ADMIN)
    text = reply.params["text"]
    assert text.startswith("*Tier review*")
    skills = [s.name for s in http_bot.engine.registry]
    assert all(f"*{name}*:" in text for name in skills)
    assert "keep small — no traffic in the window" in text  # an empty ledger: nothing to act on


def test_digest_now_posts_to_the_admin_channel(
    slack: Any, make_engine: Any, tmp_path: Any, script: Any
) -> None:
    env = start_bot(slack, make_engine, tmp_path, admin_channel="CADMIN")
    try:
        env.command(slash("/tierwise", "digest now", slack, user=ADMIN))
        env.settle()
        [posted] = [c for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == "CADMIN"]
        assert posted.params["text"].startswith("Tierwise digest ")
        assert posted.params["text"].endswith("no traffic this week.")
        assert slack.calls_to("files.getUploadURLExternal") == []  # no chart for an empty week
        [reply] = _responses(env, ADMIN)
        assert reply.params["text"].startswith("Posted the ") and "<#CADMIN>" in reply.params["text"]
    finally:
        env.stop()


def test_digest_now_without_an_admin_channel_says_so(http_bot: BotEnv) -> None:
    http_bot.command(slash("/tierwise", "digest now", http_bot.slack, user=ADMIN))
    http_bot.settle()
    [reply] = _responses(http_bot, ADMIN)
    assert reply.params["text"].startswith("No admin channel is configured")


def test_app_home_shows_recommendations_to_admins_only(http_bot: BotEnv) -> None:
    _store_recommendation(http_bot)
    http_bot.event(event_body(home_opened(USER), "EvHOMEA"))
    http_bot.event(event_body(home_opened(ADMIN), "EvHOMEB"))
    http_bot.settle()
    admin_view = str(http_bot.slack.home_views[ADMIN]["blocks"])
    user_view = str(http_bot.slack.home_views[USER]["blocks"])
    assert "Latest tier recommendations" in admin_view and "upgrade small → medium" in admin_view
    assert "Latest tier recommendations" not in user_view and "upgrade" not in user_view


def _click(env: BotEnv, action_id: str, rec_id: int, user: str) -> None:
    ts = env.slack.add_message("CADMIN", "Tierwise digest 2026-W46", "UBOT", bot_id="BBOT")
    msg = {"channel": "CADMIN", "ts": ts, "type": "message", "text": "Tierwise digest 2026-W46"}
    click = button_click(action_id, str(rec_id), msg, env.slack)
    click["actions"][0]["block_id"] = f"rec_{rec_id}"
    click["user"] = {**click.get("user", {}), "id": user}
    env.interactive(click)
    env.settle()


def test_dismiss_by_an_admin_and_a_refused_non_admin(http_bot: BotEnv) -> None:
    from bot.ledger.models import Recommendation

    rec_id = _store_recommendation(http_bot)
    _click(http_bot, "tierwise_rec_dismiss", rec_id, USER)
    with http_bot.engine.ledger.session() as s:
        assert s.get(Recommendation, rec_id).status == "open"
    assert (
        http_bot.slack.ephemerals[-1]["text"] == "Only Tierwise admins can apply or dismiss recommendations."
    )
    _click(http_bot, "tierwise_rec_dismiss", rec_id, ADMIN)
    with http_bot.engine.ledger.session() as s:
        row = s.get(Recommendation, rec_id)
        assert (row.status, row.decided_by) == ("dismissed", ADMIN)
    assert http_bot.engine.ledger.tier_history() == []


def test_stale_apply_is_refused_and_changes_nothing(http_bot: BotEnv) -> None:
    from bot.economics.context import EconomicsContext
    from bot.economics.tiers import set_tier

    rec_id = _store_recommendation(http_bot)
    set_tier(
        EconomicsContext.of(http_bot.engine), "ask", "large", by="cli", reason="manual change", source="cli"
    )
    _click(http_bot, "tierwise_rec_apply", rec_id, ADMIN)
    assert "stale" in http_bot.slack.ephemerals[-1]["text"]
    assert http_bot.engine.configured_tier(http_bot.engine.registry.get("ask"))[0] == "large"
    assert len(http_bot.engine.ledger.tier_history()) == 1


def test_budget_alerts_and_the_scheduler_start_with_the_server(slack: Any, make_engine: Any) -> None:
    from bot.adapters.slack.server import _start_admin_jobs
    from bot.economics.scheduler import JOB_ID

    engine = make_engine(admin_channel="CADMIN", slack_bot_token="xoxb-test", slack_api_url=slack.api_url)
    scheduler = _start_admin_jobs(engine, slack.web_client())
    try:
        assert scheduler.get_job(JOB_ID) is not None
        engine.budget.notify("ask has used $8.00 of its $10.00 monthly budget (80%)")
        [alert] = slack.calls_to("chat.postMessage")
        assert alert.params["channel"] == "CADMIN" and "80%" in alert.params["text"]
    finally:
        scheduler.shutdown(wait=False)


def test_the_weekly_digest_job_posts_to_the_admin_channel(slack: Any, make_engine: Any) -> None:
    """The scheduled digest posts through the Slack adapter, as `/tierwise digest now` does."""
    from bot.adapters.slack.server import _start_admin_jobs
    from bot.economics.scheduler import weekly_digest_job

    engine = make_engine(admin_channel="CADMIN", slack_bot_token="xoxb-test", slack_api_url=slack.api_url)
    scheduler = _start_admin_jobs(engine, slack.web_client())
    try:
        weekly_digest_job()  # what APScheduler calls on the cron
        [posted] = slack.calls_to("chat.postMessage")
        assert posted.params["channel"] == "CADMIN"
        assert posted.params["text"].startswith("Tierwise digest ")
    finally:
        scheduler.shutdown(wait=False)
