"""The Slack app manifest, generated from the loaded skills (`tierwise manifest > slack/manifest.yml`).

Scopes and events are exactly what `bot.adapters.slack.app` uses; each scope says why, so a reviewer can
check the request for access line by line. Without a request URL the manifest is for Socket Mode.

New Slack apps get the agent messaging experience (`features.agent_view`, since 2026-06-30); installs
made with `assistant_view` can regenerate with `legacy_assistant_view=True` until they migrate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from bot.adapters.slack.commands import COMMAND
from bot.core.skills import Skill

# Bot scope → why Tierwise needs it.
SCOPES: dict[str, str] = {
    "app_mentions:read": "app_mention events: @Tierwise in channels",
    "assistant:write": "assistant.threads.setStatus/setSuggestedPrompts: loading messages, prompts",
    "channels:history": "message.channels (thread follow-ups) and conversations.replies in public channels",
    "channels:read": "conversations.info: channel names for skill channel allow-lists",
    "chat:write": "chat.startStream/appendStream/stopStream, postMessage/update/delete/postEphemeral",
    "commands": "slash commands and message shortcuts",
    "files:write": "files_upload_v2: the chart of the weekly digest (bot.economics.digest)",
    "groups:history": "message.groups (thread follow-ups) and conversations.replies in private channels",
    "groups:read": "conversations.info: private channel names for channel allow-lists",
    "im:history": "message.im (DMs) and conversations.replies in DM threads",
    "mpim:history": "message.mpim (thread follow-ups) and conversations.replies in group DMs",
    "reactions:read": "reaction_added: 👍/👎 reactions on answers are feedback",
    "users:read": "users.info: names in thread transcripts (Summarize thread)",
}
# Events the app has listeners for (reaction_removed is not subscribed: a removed thumb keeps its vote).
BOT_EVENTS = (
    "app_home_opened",
    "app_mention",
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
    "reaction_added",
)
# assistant_view installs also need the assistant thread events (suggested prompts per thread).
LEGACY_ASSISTANT_EVENTS = ("assistant_thread_started",)
AGENT_DESCRIPTION_MAX = 300  # limits.json agents.manifest_agent_description_max_chars
SUGGESTED_PROMPTS_MAX = 4  # limits.json agents.manifest_suggested_prompts_max
DESCRIPTION = (
    "A general model at the right tier plus curated context, with the evidence to revisit each choice."
)


def shortcut_callback_id(skill: Skill) -> str:
    """Message shortcut callback id of a skill: its name with `-` → `_`."""
    return skill.name.replace("-", "_")


def skill_commands(skills: Iterable[Skill]) -> list[Skill]:
    """Skills that get a slash command (`/tierwise` is reserved for the bot itself)."""
    return [s for s in skills if s.slash != COMMAND]


def suggested_prompts(skills: Iterable[Skill]) -> list[dict[str, str]]:
    """One prompt per skill with an example (at most 4): the manifest's and the Messages tab's."""
    return [
        {"title": _short(s.name.replace("-", " ").capitalize(), 50), "message": s.examples[0]}
        for s in skills
        if s.examples
    ][:SUGGESTED_PROMPTS_MAX]


def build_manifest(
    registry: Iterable[Skill],
    name: str = "Tierwise",
    request_url: str | None = None,
    legacy_assistant_view: bool = False,
) -> dict[str, Any]:
    """The manifest as a dict; `request_url` (HTTP mode) is the public URL of /slack/events."""
    skills = list(registry)
    url = {"url": request_url} if request_url else {}
    commands = [
        {
            "command": s.slash,
            **url,
            "description": _short(s.description, 100),
            "usage_hint": _short(s.examples[0], 100) if s.examples else "what you need",
            "should_escape": False,
        }
        for s in skill_commands(skills)
    ]
    commands.append(
        {
            "command": COMMAND,
            **url,
            "description": "Tierwise help, skills, usage; tier changes for admins",
            "usage_hint": "help | skills | usage [7d] | tier set SKILL TIER reason | tier history",
            "should_escape": False,
        }
    )
    shortcuts = [
        {
            "name": _short(s.shortcut, 24),
            "type": "message",
            "callback_id": shortcut_callback_id(s),
            "description": _short(s.description, 150),
        }
        for s in skills
        if s.shortcut
    ]
    prompts = suggested_prompts(skills)
    if legacy_assistant_view:
        view_key, view = "assistant_view", {"assistant_description": _short(DESCRIPTION, 150)}
    else:
        view_key, view = "agent_view", {"agent_description": _short(DESCRIPTION, AGENT_DESCRIPTION_MAX)}
    features: dict[str, Any] = {
        "app_home": {
            "home_tab_enabled": True,
            "messages_tab_enabled": True,
            "messages_tab_read_only_enabled": False,
        },
        "bot_user": {"display_name": name, "always_online": True},
        view_key: {**view, **({"suggested_prompts": prompts} if prompts else {})},
        "slash_commands": commands,
    }
    if shortcuts:
        features["shortcuts"] = shortcuts
    events: dict[str, Any] = {**({"request_url": request_url} if request_url else {})}
    events["bot_events"] = [*BOT_EVENTS, *(LEGACY_ASSISTANT_EVENTS if legacy_assistant_view else ())]
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": name,
            "description": _short(DESCRIPTION, 140),
            "background_color": "#1d3557",
        },
        "features": features,
        "oauth_config": {"scopes": {"bot": sorted(SCOPES)}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": {"is_enabled": True, **({"request_url": request_url} if request_url else {})},
            "org_deploy_enabled": False,
            "socket_mode_enabled": request_url is None,
            "token_rotation_enabled": False,
        },
    }


def dump_manifest(manifest: dict[str, Any], as_json: bool = False) -> str:
    """YAML (with a header saying where it comes from) or JSON, keys in manifest order."""
    if as_json:
        return json.dumps(manifest, indent=2, ensure_ascii=False)
    import yaml

    header = "# Generated by `tierwise manifest` from the loaded skills. Regenerate, do not edit.\n"
    return header + yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=110)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"
