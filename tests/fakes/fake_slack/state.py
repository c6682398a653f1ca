"""What the fake Slack holds and records for assertions: the calls it received, messages by channel and
thread, streams, users, views, files and uploads, ephemerals, assistant status/titles/prompts; and the ts clock.

The lock: ``_lock`` (re-entrant) guards everything here; ``_cond`` on the same lock is notified on every
change so that the ``wait_for*`` helpers wake up.
"""

from __future__ import annotations

import collections
import copy
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

_TS_BASE_MICROS = 1_700_000_000 * 1_000_000


class Headers(dict):
    """A dict of HTTP headers with case-insensitive lookup (keys are stored lower-case)."""

    def __init__(self, items: Iterable[tuple[str, str]] | dict | None = None):
        super().__init__()
        if items is None:
            return
        pairs = items.items() if isinstance(items, dict) else items
        for k, v in pairs:
            self[k] = v

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


@dataclass
class Call:
    """One HTTP request received by the fake (Web API method, response_url POST or file upload).

    ``method``: Web API method name (``"chat.postMessage"``), ``"response_url:<name>"`` or
    ``"upload:<file_id>"``. ``params``: query + form + JSON body merged (values as sent: form values are
    strings, JSON values keep their types; file parts of multipart bodies are bytes).
    ``headers``: case-insensitive. ``at``: ``time.monotonic()`` when the request arrived.
    ``status``: HTTP status returned. ``response``: the JSON object returned (None for non-JSON).
    """

    method: str
    params: dict
    headers: dict
    at: float
    status: int
    response: dict | None = None
    body: bytes = field(default=b"", repr=False)

    def json_field(self, name: str, default: Any = None) -> Any:
        """``params[name]`` parsed as JSON if it was sent as a JSON string, else as is."""
        value = self.params.get(name, default)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    @property
    def ok(self) -> bool:
        """True if the request got HTTP 200 and (for JSON responses) ``"ok": true``."""
        return self.status == 200 and (self.response is None or bool(self.response.get("ok")))

    @property
    def error(self) -> str | None:
        return None if self.response is None else self.response.get("error")

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        tok = self.params.get("token")
        return tok if isinstance(tok, str) else None


def ts_key(ts: str) -> Decimal:
    try:
        return Decimal(str(ts))
    except InvalidOperation:
        return Decimal(0)


def _ts_to_micros(ts: str) -> int:
    return int(ts_key(ts) * 1_000_000)


def _micros_to_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class SlackState:
    """The workspace as the fake sees it (identity, stores, recorded calls) and the test API to inspect it."""

    def __init__(
        self,
        *,
        bot_user_id: str,
        bot_id: str,
        team_id: str,
        team: str,
        app_id: str,
        bot_name: str,
    ):
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.team = team
        self.app_id = app_id
        self.bot_name = bot_name

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)

        self.calls: list[Call] = []
        self.uploads: dict[str, bytes] = {}
        self.files: dict[str, dict] = {}
        self.ephemerals: list[dict] = []
        self.views: dict[str, dict] = {}
        self.home_views: dict[str, dict] = {}
        self.users: dict[str, dict] = {}
        self.assistant_status: dict[tuple[str, str], str] = {}
        self.assistant_titles: dict[tuple[str, str], str] = {}
        self.suggested_prompts: dict[tuple[str, str | None], dict] = {}
        self.tickets: list[str] = []

        self._messages: dict[str, dict[str, dict]] = collections.defaultdict(dict)
        self._streaming: set[tuple[str, str]] = set()
        self._stopped_by_user: set[tuple[str, str]] = set()
        # Streams Slack refuses to start, as for Slack Connect users: recipient user id → error code.
        self.stream_refusals: dict[str, str] = {}
        self.stream_tasks: dict[tuple[str, str], dict[str, dict]] = {}  # (channel, ts) → task id → state
        self._last_ts_micros = _TS_BASE_MICROS
        self._counter = itertools.count(1)

    # ----- calls

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def mark(self) -> int:
        """Number of recorded calls so far; pass as ``since=`` to :meth:`wait_for` to skip older calls."""
        with self._lock:
            return len(self.calls)

    def clear_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] = lambda call: True,
        timeout: float = 5.0,
        *,
        since: int = 0,
    ) -> Call:
        """First recorded call to ``method`` (index ≥ ``since``) with ``predicate(call)`` true, waiting up to
        ``timeout`` s. Faulted attempts count too (check ``call.status`` / ``call.ok``).
        Raises AssertionError listing the methods seen on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            checked = since
            while True:
                while checked < len(self.calls):
                    call = self.calls[checked]
                    checked += 1
                    if call.method == method and predicate(call):
                        return call
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [f"{c.method}({c.status})" for c in self.calls[since:]]
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for a {method} call matching the predicate; "
                        f"calls seen: {seen}"
                    )
                self._cond.wait(min(remaining, 0.1))

    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    # ----- ts and ids

    def _next_ts_locked(self) -> str:
        self._last_ts_micros += 100
        return _micros_to_ts(self._last_ts_micros)

    def _bump_ts_locked(self, ts: str) -> None:
        micros = _ts_to_micros(ts)
        if micros > self._last_ts_micros:
            self._last_ts_micros = micros

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter):08X}"

    # ----- messages

    def add_message(
        self,
        channel: str,
        text: str,
        user: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        **extra: Any,
    ) -> str:
        """Seed a (human) message into the store; returns its ts. ``extra`` fields are merged in
        (e.g. ``bot_id=...``, ``blocks=[...]``, ``subtype=...``)."""
        with self._lock:
            if ts is None:
                ts = self._next_ts_locked()
            else:
                self._bump_ts_locked(ts)
            msg: dict[str, Any] = {
                "type": "message",
                "user": user,
                "text": text,
                "ts": ts,
                "team": self.team_id,
            }
            msg.update(extra)
            if thread_ts and thread_ts != ts:
                msg["thread_ts"] = thread_ts
            self._store_locked(channel, msg)
            return ts

    def _store_locked(self, channel: str, msg: dict) -> None:
        ts = msg["ts"]
        self._messages[channel][ts] = msg
        thread_ts = msg.get("thread_ts")
        if thread_ts and thread_ts != ts:
            parent = self._messages[channel].get(thread_ts)
            if parent is not None:
                msg.setdefault("parent_user_id", parent.get("user"))
                parent["thread_ts"] = thread_ts
                replies = [
                    m
                    for m in self._messages[channel].values()
                    if m.get("thread_ts") == thread_ts and m is not parent
                ]
                users = list(dict.fromkeys(m.get("user") for m in replies if m.get("user")))
                parent["reply_count"] = len(replies)
                parent["reply_users"] = users
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = max((m["ts"] for m in replies), key=ts_key)
        self._cond.notify_all()

    def messages(self, channel: str) -> list[dict]:
        """Every stored message of ``channel`` (thread replies included), oldest first (deep copies)."""
        with self._lock:
            return copy.deepcopy(
                sorted(self._messages.get(channel, {}).values(), key=lambda m: ts_key(m["ts"]))
            )

    def thread(self, channel: str, thread_ts: str) -> list[dict]:
        """Parent (if stored) + replies of a thread, in ts order (deep copies)."""
        with self._lock:
            return copy.deepcopy(self._thread_locked(channel, thread_ts))

    def get_message(self, channel: str, ts: str) -> dict | None:
        with self._lock:
            msg = self._messages.get(channel, {}).get(ts)
            return copy.deepcopy(msg) if msg is not None else None

    def bot_messages(self, channel: str | None = None) -> list[dict]:
        """Messages posted by the bot (``user == bot_user_id``), oldest first; all channels if None.
        Each copy has a ``channel`` key added."""
        with self._lock:
            out = []
            for ch, msgs in self._messages.items():
                if channel is not None and ch != channel:
                    continue
                for m in msgs.values():
                    if m.get("user") == self.bot_user_id:
                        out.append({**copy.deepcopy(m), "channel": ch})
            return sorted(out, key=lambda m: ts_key(m["ts"]))

    def wait_for_message(
        self, channel: str, predicate: Callable[[dict], bool] = lambda m: True, timeout: float = 5.0
    ) -> dict:
        """Wait until the store of ``channel`` holds a message matching ``predicate``; returns a copy."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in sorted(self._messages.get(channel, {}).values(), key=lambda m: ts_key(m["ts"])):
                    if predicate(m):
                        return copy.deepcopy(m)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    texts = [m.get("text") for m in self._messages.get(channel, {}).values()]
                    raise AssertionError(
                        f"no matching message in {channel} within {timeout}s; texts: {texts}"
                    )
                self._cond.wait(min(remaining, 0.1))

    def _thread_locked(self, channel: str, thread_ts: str) -> list[dict]:
        msgs = self._messages.get(channel, {})
        root = msgs.get(thread_ts)
        if root is not None and root.get("thread_ts") and root["thread_ts"] != thread_ts:
            thread_ts = root["thread_ts"]  # ts of a reply: return the whole thread
        out = [m for m in msgs.values() if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]
        return sorted(out, key=lambda m: ts_key(m["ts"]))

    # ----- streams

    def stop_stream_by_user(self, channel: str, ts: str) -> None:
        """The user pressed stop on a streaming message: appends now fail with ``stopped_by_user``."""
        with self._cond:
            self._streaming.discard((channel, ts))
            self._stopped_by_user.add((channel, ts))
            self._cond.notify_all()

    def is_streaming(self, channel: str, ts: str) -> bool:
        with self._lock:
            return (channel, ts) in self._streaming

    # ----- users

    def add_user(self, user_id: str, **fields: Any) -> dict:
        """Register a user for users.info (fields override the generated defaults)."""
        with self._lock:
            user = self._default_user(user_id)
            profile = fields.pop("profile", None)
            user.update(fields)
            if profile:
                user["profile"].update(profile)
            self.users[user_id] = user
            return copy.deepcopy(user)

    def _default_user(self, user_id: str) -> dict:
        is_bot = user_id == self.bot_user_id
        name = self.bot_name if is_bot else f"user_{user_id.lower()}"
        real = self.bot_name if is_bot else f"User {user_id}"
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "color": "9f69e7",
            "real_name": real,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": {
                "avatar_hash": "ge3b51ca72de",
                "status_text": "",
                "status_emoji": "",
                "real_name": real,
                "display_name": name,
                "real_name_normalized": real,
                "display_name_normalized": name,
                "email": None if is_bot else f"{name}@example.com",
                "team": self.team_id,
            },
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "updated": 1502138686,
            "is_app_user": False,
            "has_2fa": False,
        }
