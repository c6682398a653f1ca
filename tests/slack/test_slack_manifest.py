"""The app manifest: generated from the skills, and exactly what the app registers and calls."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from bot.adapters.slack.manifest import (
    BOT_EVENTS,
    SCOPES,
    build_manifest,
    dump_manifest,
    shortcut_callback_id,
)
from tests.fakes.fake_slack import load_fixture
from tests.paths import ROOT
from tests.slack_helpers import (
    BotEnv,
    event_body,
    http_bot_fixture,  # noqa: F401 (fixture)
    shortcut,
    skills_registry,
    slack_fixture,  # noqa: F401 (fixture)
    slash,
)

# Web API method (as slack_sdk spells it) → bot scopes it needs; None: no scope.
METHOD_SCOPES: dict[str, set[str] | None] = {
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_delete": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "conversations_replies": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "conversations_info": {"channels:read", "groups:read"},
    "users_info": {"users:read"},
    "assistant_threads_setStatus": {"assistant:write"},
    "assistant_threads_setSuggestedPrompts": {"assistant:write"},
    "chat_startStream": {"chat:write"},
    "chat_appendStream": {"chat:write"},
    "chat_stopStream": {"chat:write"},
    "files_upload_v2": {"files:write"},
    "views_open": None,
    "views_publish": None,
}
EVENT_SCOPES = {
    "app_home_opened": set(),
    "app_mention": {"app_mentions:read"},
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "message.im": {"im:history"},
    "message.mpim": {"mpim:history"},
    "reaction_added": {"reactions:read"},
}


def test_one_command_per_skill_plus_tierwise(make_engine: Any) -> None:
    registry = skills_registry(make_engine)
    manifest = build_manifest(registry)
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert sorted(commands) == sorted([s.slash for s in registry] + ["/tierwise"])
    shortcuts = {s["callback_id"]: s["name"] for s in manifest["features"]["shortcuts"]}
    assert shortcuts["tw_digest"] == "Digest thread"
    assert set(shortcuts) == {shortcut_callback_id(s) for s in registry if s.shortcut}
    assert all(s["type"] == "message" for s in manifest["features"]["shortcuts"])
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["oauth_config"]["scopes"]["bot"] == sorted(SCOPES)
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == list(BOT_EVENTS)
    assert manifest["settings"]["interactivity"]["is_enabled"] is True


def test_socket_mode_unless_a_request_url_is_given(make_engine: Any) -> None:
    registry = skills_registry(make_engine)
    socket = build_manifest(registry)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket["settings"]["event_subscriptions"]
    url = "https://bot.example.com/slack/events"
    http = build_manifest(registry, name="Helper", request_url=url)
    assert http["settings"]["socket_mode_enabled"] is False
    assert http["settings"]["event_subscriptions"]["request_url"] == url
    assert http["settings"]["interactivity"]["request_url"] == url
    assert {c["url"] for c in http["features"]["slash_commands"]} == {url}
    assert http["display_information"]["name"] == "Helper"


def test_scopes_are_exactly_what_the_code_calls_and_subscribes_to() -> None:
    # bot/adapters/slack, plus the digest, which the same app posts (and whose buttons bot/adapters/slack handles)
    files = [*(ROOT / "bot" / "adapters" / "slack").glob("*.py"), ROOT / "bot" / "economics" / "digest.py"]
    source = "\n".join(p.read_text(encoding="utf-8") for p in files)
    called = set(re.findall(r"client\.([a-z]+_[A-Za-z0-9_]+)\(", source))
    assert called, "no Web API calls found"
    unknown = called - set(METHOD_SCOPES)
    assert not unknown, f"add these methods (and their scopes) to METHOD_SCOPES: {unknown}"
    needed = {"commands"}  # slash commands and message shortcuts
    for method in called:
        needed |= METHOD_SCOPES[method] or set()
    for event in BOT_EVENTS:
        needed |= EVENT_SCOPES[event]
    assert needed == set(SCOPES)


def test_the_app_handles_everything_the_manifest_subscribes(http_bot: BotEnv, script: Any) -> None:
    """No manifest entry may reach the app unhandled (bolt would answer 404 and Slack would retry)."""
    manifest = build_manifest(http_bot.engine.registry)
    for command in manifest["features"]["slash_commands"]:
        result = http_bot.command(slash(command["command"], "", http_bot.slack))
        assert result.status == 200, command
    samples = {
        "app_home_opened": "events/app_home_opened.json",
        "app_mention": "events/app_mention.json",
        "message.channels": "events/message_channel.json",
        "message.groups": "events/message_channel.json",
        "message.im": "events/message_im.json",
        "message.mpim": "events/message_channel.json",
        "reaction_added": "events/reaction_added_on_bot_message.json",
    }
    for i, event_type in enumerate(manifest["settings"]["event_subscriptions"]["bot_events"]):
        event = load_fixture(samples[event_type])["event"]
        event.update({"type": event_type.split(".")[0], "text": "", "user": "UOTHER", "channel": "C111"})
        assert http_bot.event(event_body(event, f"EvM{i}")).status == 200, event_type
    for item in manifest["features"]["shortcuts"]:
        msg = {"type": "message", "user": "UOTHER", "text": "hi", "ts": "1700000000.000100"}
        result = http_bot.interactive(shortcut(item["callback_id"], "C111", msg, http_bot.slack))
        assert result.status == 200, item
    http_bot.settle()


def test_dump_yaml_and_json(make_engine: Any) -> None:
    manifest = build_manifest(skills_registry(make_engine))
    text = dump_manifest(manifest)
    assert text.startswith("# Generated by `tierwise manifest`")
    assert yaml.safe_load(text) == manifest
    assert json.loads(dump_manifest(manifest, as_json=True)) == manifest


def test_cli_prints_the_manifest(make_engine: Any) -> None:
    from typer.testing import CliRunner

    from bot.adapters.cli import app

    result = CliRunner().invoke(app, ["manifest", "--request-url", "https://x.example/slack/events"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed == build_manifest(make_engine().registry, request_url="https://x.example/slack/events")


@pytest.mark.skipif(not (ROOT / "slack" / "manifest.yml").exists(), reason="not generated yet")
def test_shipped_manifest_matches_the_code() -> None:
    shipped = yaml.safe_load((ROOT / "slack" / "manifest.yml").read_text(encoding="utf-8"))
    assert shipped["oauth_config"]["scopes"]["bot"] == sorted(SCOPES)
    assert shipped["settings"]["event_subscriptions"]["bot_events"] == list(BOT_EVENTS)
    assert "/tierwise" in [c["command"] for c in shipped["features"]["slash_commands"]]
