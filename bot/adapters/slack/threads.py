"""Conversation logic over Slack message dicts: which messages to answer, thread history, transcripts.

Pure functions (the Collmbo split: logic here, Slack and ledger I/O in `bot.adapters.slack.app`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.adapters.slack.blocks import PROGRESS_TEXT
from bot.adapters.slack.mrkdwn import unescape

# Message subtypes written by a person. Everything else (message_changed, message_deleted,
# channel_join, bot_message, …) is bookkeeping or another bot and never gets an answer.
USER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
THUMBS = {"+1": 1, "thumbsup": 1, "-1": -1, "thumbsdown": -1}

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def ts_key(ts: str | None) -> tuple[int, int]:
    """Slack timestamps ("1610241741.000200") in numeric order."""
    seconds, _, micros = (ts or "0").partition(".")
    try:
        return int(seconds), int(micros.ljust(6, "0")[:6] or 0)
    except ValueError:
        return 0, 0


def mentions(text: str, user_id: str | None) -> bool:
    return bool(user_id) and f"<@{user_id}" in (text or "")


def strip_mention(text: str, user_id: str | None) -> str:
    """Remove `<@BOT>` / `<@BOT|name>` wherever it appears."""
    if user_id:
        text = re.sub(rf"<@{re.escape(user_id)}(?:\|[^>]*)?>", " ", text or "")
    return re.sub(r"[ \t]{2,}", " ", text or "").strip()


def plain_text(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack markup → what a person reads: `<@U1>` → `@Ann` (or `@U1`), `<url|label>` → `label (url)`,
    entities undone."""

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return "@" + ((names or {}).get(target[1:]) or label or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:].split("^")[0])
        target = target.removeprefix("mailto:")
        return f"{label} ({target})" if label and label != target else target

    return unescape(_LINK.sub(link, text or "")).strip()


def is_user_message(event: Mapping[str, Any], bot_user_id: str | None, bot_id: str | None) -> bool:
    """A message a person wrote (not an edit, deletion, join, or any bot's message, ours included)."""
    if event.get("subtype") not in USER_SUBTYPES:
        return False
    if event.get("bot_id") or event.get("bot_profile"):
        return False
    user = event.get("user")
    return bool(user) and user != bot_user_id and (bot_id is None or event.get("bot_id") != bot_id)


def message_route(event: Mapping[str, Any], bot_user_id: str | None, bot_id: str | None) -> str | None:
    """How a `message` event may be answered: "dm", "thread" (a follow-up, if the bot answered the
    thread), or None (ignore).

    Channel messages that mention the bot are left to the `app_mention` listener: Slack sends both
    events for one message, with different event ids, and only one may answer.
    """
    if not is_user_message(event, bot_user_id, bot_id) or not (event.get("text") or "").strip():
        return None
    if event.get("channel_type") == "im" or str(event.get("channel", "")).startswith("D"):
        return "dm"
    thread_ts = event.get("thread_ts")
    if thread_ts and thread_ts != event.get("ts") and not mentions(event.get("text", ""), bot_user_id):
        return "thread"
    return None


def is_own_message(message: Mapping[str, Any], bot_user_id: str | None, bot_id: str | None) -> bool:
    return (bool(bot_user_id) and message.get("user") == bot_user_id) or (
        bool(bot_id) and message.get("bot_id") == bot_id
    )


def is_placeholder(message: Mapping[str, Any]) -> bool:
    return (message.get("text") or "").endswith(PROGRESS_TEXT)


def history_from_replies(
    messages: Iterable[Mapping[str, Any]],
    *,
    before_ts: str,
    bot_user_id: str | None,
    bot_id: str | None,
) -> list[dict[str, str]]:
    """Earlier messages of a thread as chat history: ours → assistant, people → user; others skipped."""
    history: list[dict[str, str]] = []
    for message in sorted(messages, key=lambda m: ts_key(m.get("ts"))):
        if ts_key(message.get("ts")) >= ts_key(before_ts):
            continue
        if is_own_message(message, bot_user_id, bot_id):
            if is_placeholder(message):
                continue
            role = "assistant"
        elif is_user_message(message, bot_user_id, bot_id):
            role = "user"
        else:
            continue
        text = plain_text(strip_mention(message.get("text") or "", bot_user_id))
        if text:
            history.append({"role": role, "content": text})
    return history


def transcript(
    messages: Iterable[Mapping[str, Any]],
    names: Mapping[str, str],
    *,
    bot_user_id: str | None,
    tz: str = "UTC",
) -> str:
    """A thread as `Name (HH:MM): text` lines, oldest first (the input of thread skills)."""
    zone = ZoneInfo(tz)
    lines = []
    for message in sorted(messages, key=lambda m: ts_key(m.get("ts"))):
        if message.get("subtype") not in USER_SUBTYPES | {"bot_message"} or is_placeholder(message):
            continue
        text = " ".join(plain_text(message.get("text") or "", names).split())
        if not text:
            continue
        user = message.get("user")
        name = names.get(user or "") or _bot_name(message) or user or "someone"
        when = datetime.fromtimestamp(ts_key(message.get("ts"))[0], tz=UTC).astimezone(zone)
        lines.append(f"{name} ({when:%H:%M}): {text}")
    return "\n".join(lines)


def _bot_name(message: Mapping[str, Any]) -> str | None:
    profile = message.get("bot_profile") or {}
    return profile.get("name") or message.get("username")


def mentioned_users(text: str) -> list[str]:
    return _USER_MENTION.findall(text or "")


def reaction_score(name: str) -> int | None:
    """+1 / -1 for thumbs reactions (any skin tone), else None."""
    return THUMBS.get(name.split("::", 1)[0])


def display_name(user: Mapping[str, Any]) -> str | None:
    profile = user.get("profile") or {}
    return (
        profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
    )
