"""agent_view in the manifest (checked against Slack's own agent_view manifests in fixtures/slack/manifests)
and the legacy assistant_view, which installs not yet migrated keep using."""

from __future__ import annotations

import json
from typing import Any

import yaml
from typer.testing import CliRunner

from bot.adapters.slack.manifest import BOT_EVENTS, build_manifest, suggested_prompts
from tests.fakes.fake_slack import load_fixture
from tests.slack_helpers import (
    BotEnv,
    http_bot_fixture,  # noqa: F401 (fixture)
    limits,
    skills_registry,
    slack_fixture,  # noqa: F401 (fixture)
)

SAMPLES = ("manifests/agent_view_manifest.json", "manifests/agent_view_manifest_minimal.json")


def test_manifest_has_agent_view_shaped_like_slacks_samples(make_engine: Any) -> None:
    manifest = build_manifest(skills_registry(make_engine))
    features = manifest["features"]
    assert "assistant_view" not in features
    view = features["agent_view"]
    samples = [load_fixture(name) for name in SAMPLES]
    allowed = {key for sample in samples for key in sample["features"]["agent_view"]}
    assert set(view) <= allowed and "agent_description" in view
    assert 0 < len(view["agent_description"]) <= limits()["agents.manifest_agent_description_max_chars"]
    prompts = view["suggested_prompts"]
    assert 0 < len(prompts) <= limits()["agents.manifest_suggested_prompts_max"]
    sample_prompt_keys = {k for p in samples[1]["features"]["agent_view"]["suggested_prompts"] for k in p}
    assert all(set(p) == sample_prompt_keys for p in prompts)
    # The Messages tab must be on (agent conversations happen there), as in Slack's sample app.
    assert features["app_home"] == samples[0]["features"]["app_home"]
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    sample_events = set(samples[0]["settings"]["event_subscriptions"]["bot_events"])
    assert sample_events <= set(events) and "assistant_thread_started" not in events
    assert set(samples[0]["oauth_config"]["scopes"]["bot"]) & {"assistant:write", "chat:write"} <= set(
        manifest["oauth_config"]["scopes"]["bot"]
    )
    assert events == list(BOT_EVENTS)


def test_legacy_assistant_view_on_request(make_engine: Any) -> None:
    manifest = build_manifest(skills_registry(make_engine), legacy_assistant_view=True)
    assert "agent_view" not in manifest["features"]
    assert manifest["features"]["assistant_view"]["assistant_description"]
    assert "assistant_thread_started" in manifest["settings"]["event_subscriptions"]["bot_events"]


def test_cli_manifest_flag(make_engine: Any) -> None:
    from bot.adapters.cli import app

    default = CliRunner().invoke(app, ["manifest", "--json"])
    assert default.exit_code == 0, default.output
    assert "agent_view" in json.loads(default.stdout)["features"]
    legacy = CliRunner().invoke(app, ["manifest", "--legacy-assistant-view"])
    assert legacy.exit_code == 0, legacy.output
    assert "assistant_view" in yaml.safe_load(legacy.stdout)["features"]


def test_legacy_assistant_threads_still_get_prompts(http_bot: BotEnv) -> None:
    body = load_fixture("events/assistant_thread_started.json")
    assert http_bot.event(body).status == 200
    http_bot.settle()
    call = http_bot.slack.wait_for("assistant.threads.setSuggestedPrompts")
    assert call.ok and call.params["thread_ts"] == body["event"]["assistant_thread"]["thread_ts"]
    assert call.json_field("prompts") == suggested_prompts(http_bot.engine.registry)
