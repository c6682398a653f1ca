"""Shape checks for what Slack sends, before bolt, the engine or the ledger see it.

A signed payload is still only data: a field of the wrong type (a list where an id belongs, an
object instead of text) used to raise deep inside bolt's context extraction or reach a ledger
write. `problem()` names the first field that does not fit, so the transports can answer 400
(HTTP) or acknowledge and drop (Socket Mode) with one log line. Unknown fields are allowed:
Slack adds fields all the time; only what bolt and Tierwise read is checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

Check = Callable[[Any], str | None]  # None when fine, else what is wrong

ID_MAX = 64  # ledger columns for users, channels, event ids
TS_MAX = 32
TEXT_MAX = 1_000_000  # the HTTP body cap bounds this anyway


def text(limit: int = TEXT_MAX) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be text, not {type(value).__name__}"
        return f"is longer than {limit} characters" if len(value) > limit else None

    return check


def optional(inner: Check) -> Check:
    return lambda value: None if value is None else inner(value)


def flag(value: Any) -> str | None:
    return None if isinstance(value, bool) or value in ("true", "false") else "must be true or false"


def number(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return None if ok else "must be a number"


def obj(spec: Mapping[str, Check], required: tuple[str, ...] = ()) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, dict):
            return f"must be an object, not {type(value).__name__}"
        for key in required:
            if key not in value:
                return f".{key} is missing"
        for key, inner in spec.items():
            if key in value:
                wrong = inner(value[key])
                if wrong:
                    return f".{key} {wrong}" if not wrong.startswith(".") else f".{key}{wrong}"
        return None

    return check


def items(inner: Check, limit: int = 1000) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"must be a list, not {type(value).__name__}"
        if len(value) > limit:
            return f"has more than {limit} items"
        for index, item in enumerate(value):
            wrong = inner(item)
            if wrong:
                return f"[{index}] {wrong}"
        return None

    return check


def either(*checks: Check) -> Check:
    def check(value: Any) -> str | None:
        problems = [c(value) for c in checks]
        return None if any(p is None for p in problems) else problems[0]

    return check


def anything(_value: Any) -> str | None:
    return None


ID = text(ID_MAX)
TS = text(TS_MAX)
TEAM = either(text(ID_MAX), obj({"id": optional(ID), "enterprise_id": optional(ID)}))
USER = either(ID, obj({"id": ID, "team_id": optional(ID), "name": optional(text(200))}))
CHANNEL = either(ID, obj({"id": ID, "name": optional(text(200))}))
MESSAGE = obj(
    {
        "user": optional(USER),
        "ts": optional(TS),
        "thread_ts": optional(TS),
        "text": optional(text()),
        "bot_id": optional(ID),
        "blocks": optional(items(anything)),
    }
)
EVENT = obj(
    {
        "type": text(100),
        "subtype": optional(text(100)),
        "user": optional(USER),
        "channel": optional(CHANNEL),
        "channel_type": optional(text(32)),
        "ts": optional(TS),
        "event_ts": optional(TS),
        "thread_ts": optional(TS),
        "text": optional(text()),
        "bot_id": optional(ID),
        "app_id": optional(ID),
        "team": optional(ID),
        "user_team": optional(ID),
        "reaction": optional(text(200)),
        "item": optional(obj({"type": optional(text(32)), "channel": optional(ID), "ts": optional(TS)})),
        "tab": optional(text(32)),
        "message": optional(MESSAGE),
        "previous_message": optional(MESSAGE),
        "assistant_thread": optional(obj({"channel_id": optional(ID), "thread_ts": optional(TS)})),
        "blocks": optional(items(anything)),
        "inputs": optional(obj({})),
    },
    required=("type",),
)
AUTHORIZATION = obj(
    {
        "enterprise_id": optional(ID),
        "team_id": optional(ID),
        "user_id": optional(ID),
        "is_bot": optional(flag),
        "is_enterprise_install": optional(flag),
    }
)
COMMON: dict[str, Check] = {
    "type": text(100),
    "token": optional(text(200)),
    "team_id": optional(ID),
    "api_app_id": optional(ID),
    "enterprise_id": optional(ID),
    "enterprise": optional(TEAM),
    "team": optional(TEAM),
    "is_enterprise_install": optional(flag),
    "is_ext_shared_channel": optional(flag),
    "authorizations": optional(items(AUTHORIZATION, limit=100)),
    "user": optional(USER),
    "user_id": optional(ID),
    "channel": optional(CHANNEL),
    "channel_id": optional(ID),
    "channel_name": optional(text(200)),
    "thread_ts": optional(TS),
    "trigger_id": optional(text(200)),
    "response_url": optional(text(2000)),
    "response_urls": optional(items(obj({"response_url": optional(text(2000))}), limit=20)),
    "callback_id": optional(text(255)),
    "function_execution_id": optional(text(200)),
    "function_data": optional(obj({"execution_id": optional(text(200)), "inputs": optional(obj({}))})),
    "bot_access_token": optional(text(500)),
}
EVENT_CALLBACK = obj(
    {**COMMON, "event_id": ID, "event_time": optional(number), "event": EVENT},
    required=("event", "event_id"),
)
INTERACTION = obj(
    {
        **COMMON,
        "message_ts": optional(TS),
        "message": optional(MESSAGE),
        "container": optional(
            obj({"message_ts": optional(TS), "channel_id": optional(ID), "thread_ts": optional(TS)})
        ),
        "actions": optional(
            items(
                obj(
                    {
                        "action_id": text(255),
                        "block_id": optional(text(255)),
                        "value": optional(text(2000)),
                    },
                    required=("action_id",),  # every block action names itself; bolt's matchers rely on it
                ),
                limit=25,
            )
        ),
        "view": optional(
            obj(
                {
                    "callback_id": optional(text(255)),
                    "private_metadata": optional(text(3000)),
                    "team_id": optional(ID),
                    "app_installed_team_id": optional(ID),
                    "state": optional(obj({"values": optional(obj({}))})),
                    "blocks": optional(items(anything)),
                }
            )
        ),
    },
    required=("type",),
)
COMMAND = obj(
    {**COMMON, "command": text(100), "text": optional(text(40_000)), "type": optional(text(100))},
    required=("command",),
)


def problem(body: Any) -> str | None:
    """What is wrong with a parsed payload, or None when Tierwise can handle it."""
    if not isinstance(body, dict):
        return f"payload must be an object, not {type(body).__name__}"
    if "ssl_check" in body:  # Slack's certificate check: bolt answers it
        return None
    if "command" in body:
        wrong = COMMAND(body)
    elif body.get("type") == "event_callback":
        wrong = EVENT_CALLBACK(body)
    elif body.get("type") == "url_verification":
        wrong = obj({"challenge": text(500)}, required=("challenge",))(body)
    elif "type" in body:
        wrong = INTERACTION(body)
    else:
        wrong = "payload has no type"
    if wrong is None:
        return None
    return wrong if wrong.startswith("payload") else f"payload{wrong}" if wrong.startswith(".") else wrong


def parse(raw: str, content_type: str | None) -> Any:
    """The body as bolt would read it; raises ValueError when it cannot be read at all."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/json" or raw.startswith("{"):
        return json.loads(raw)
    fields = dict(parse_qsl(raw, keep_blank_values=True))
    if "payload" in fields:
        return json.loads(fields["payload"])
    return fields
