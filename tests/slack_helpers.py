"""Shared helpers for the Slack tests: a Block Kit validator, the bot under both transports, payloads.

A test module gets the fixtures (`slack`, `http_bot`, `bot_env`) with
`pytest_plugins = ["tests.slack_helpers"]`. The `slack` fixture validates every Block Kit payload
the bot sent when the test ends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from tests.fakes.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    FIXTURES_DIR,
    SIGNING_SECRET,
    Call,
    FakeSlack,
    HttpResult,
    close_socket_mode,
    form_body,
    interactive_form_body,
    load_fixture,
    post_signed,
)
from tests.paths import TESTS

ADMIN = "UADMIN"
USER = "UUSER"
CHANNEL = "C111"

# Skills for the tests, independent of the built-in ones (which other work may change).
TEST_SKILLS = TESTS / "skill_sources" / "slack"


# Block Kit validation ---------------------------------------------------------------------------


@cache
def limits() -> dict[str, int]:
    """limits.json flattened: {"block_kit.section_text_max_chars": 3000, ...}."""
    data = json.loads((FIXTURES_DIR / "limits.json").read_text(encoding="utf-8"))
    flat: dict[str, int] = {}
    for group, entries in data.items():
        if isinstance(entries, dict):
            for name, entry in entries.items():
                if isinstance(entry, dict) and isinstance(entry.get("value"), int):
                    flat[f"{group}.{name}"] = entry["value"]
    return flat


@cache
def _validator(schema_file: str) -> jsonschema.Draft7Validator:
    schema = json.loads((FIXTURES_DIR / "blockkit" / schema_file).read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def _schema_errors(schema_file: str, instance: Any) -> list[str]:
    return [
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in _validator(schema_file).iter_errors(instance)
    ]


def _text(obj: Any) -> str:
    return obj.get("text", "") if isinstance(obj, dict) else ""


def validate_block(block: dict[str, Any]) -> None:
    """One block: slack_sdk parses and validates it, and it respects limits.json."""
    lim = limits()
    parsed = Block.parse(block)
    assert parsed is not None, f"slack_sdk does not know block {block.get('type')!r}"
    parsed.validate_json()
    assert len(block.get("block_id", "")) <= lim["block_kit.block_id_max_chars"]
    kind = block["type"]
    if kind == "section":
        assert len(_text(block.get("text"))) <= lim["block_kit.section_text_max_chars"]
        fields = block.get("fields") or []
        assert len(fields) <= lim["block_kit.section_fields_max_items"]
        assert all(len(_text(f)) <= 2000 for f in fields)
        assert _text(block.get("text")) or fields, "a section needs text or fields"
    elif kind == "header":
        assert len(_text(block.get("text"))) <= lim["block_kit.header_text_max_chars"]
    elif kind == "context":
        assert 0 < len(block["elements"]) <= lim["block_kit.context_elements_max"]
    elif kind == "actions":
        assert len(block["elements"]) <= lim["block_kit.actions_elements_max"]
        for element in block["elements"]:
            assert len(element.get("action_id", "")) <= lim["block_kit.action_id_max_chars"]
            if element["type"] == "button":
                assert len(_text(element["text"])) <= lim["block_kit.button_text_max_chars"]
                assert len(element.get("value", "")) <= lim["block_kit.button_value_max_chars"]
    elif kind == "context_actions":
        assert 0 < len(block["elements"]) <= lim["block_kit.context_actions_elements_max"]
        for element in block["elements"]:
            for key in ("positive_button", "negative_button"):
                if key in element:
                    button = element[key]
                    assert len(_text(button["text"])) <= lim["block_kit.feedback_button_text_max_chars"]
                    assert len(button["value"]) <= lim["block_kit.feedback_button_value_max_chars"]
                    label = button.get("accessibility_label", "")
                    assert len(label) <= lim["block_kit.feedback_button_accessibility_label_max_chars"]


def validate_message_blocks(blocks: list[dict[str, Any]]) -> None:
    assert isinstance(blocks, list) and blocks, "blocks must be a non-empty list"
    assert len(blocks) <= limits()["message.blocks_per_message"]
    for block in blocks:
        validate_block(block)
    markdown = sum(len(b["text"]) for b in blocks if b["type"] == "markdown")
    assert markdown <= limits()["block_kit.markdown_block_text_max_chars"]  # cumulative per payload
    errors = _schema_errors("known_blocks_array.schema.json", blocks)
    assert not errors, errors


def validate_view(view: dict[str, Any]) -> None:
    lim = limits()
    View(**view).validate_json()
    assert view["type"] in ("home", "modal")
    assert len(view["blocks"]) <= lim["views.blocks_per_view"]
    assert len(json.dumps(view).encode()) <= lim["views.view_payload_max_bytes"]
    for key in ("title", "submit", "close"):
        if key in view:
            assert len(_text(view[key])) <= lim["views.modal_title_submit_close_max_chars"], key
    assert len(view.get("private_metadata", "")) <= lim["views.private_metadata_max_chars"]
    for block in view["blocks"]:
        validate_block(block)
    errors = _schema_errors("home_or_modal_view.strict.schema.json", view)
    assert not errors, errors


def validate_message_payload(payload: dict[str, Any], *, update: bool = False) -> None:
    """A message body (chat.*, response_url, ack payload): text limit, then its blocks."""
    text = payload.get("text") or ""
    lim = limits()
    assert len(text) <= (
        lim["message.text_recommended_max_chars"] if update else lim["message.text_max_chars"]
    )
    blocks = payload.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if blocks:
        validate_message_blocks(blocks)


def validate_calls(calls: list[Call]) -> int:
    """Validate every Block Kit payload among recorded calls; returns how many were checked."""
    checked = 0
    for call in calls:
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            blocks = call.json_field("blocks")
            validate_message_payload(
                {"text": call.params.get("text"), "blocks": blocks}, update=call.method == "chat.update"
            )
            checked += 1
        elif call.method in ("views.publish", "views.open", "views.update", "views.push"):
            validate_view(call.json_field("view"))
            checked += 1
        elif call.method.startswith("response_url:"):
            validate_message_payload(call.params)
            checked += 1
        elif call.method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            text = call.params.get("markdown_text") or ""
            assert len(text) <= limits()["streaming.markdown_text_per_call_max_chars"]
            blocks = call.json_field("blocks")
            if blocks:
                assert len(blocks) <= limits()["streaming.stop_stream_blocks_max"]
                validate_message_blocks(blocks)
            checked += 1
    return checked


# The bot under test ------------------------------------------------------------------------------


class TrackingExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tests can wait until all lazy listeners have finished."""

    def __init__(self, max_workers: int = 48) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="test-lazy")
        self._pending = 0
        self._cond = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._cond:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._cond:
            self._pending -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                assert left > 0, f"{self._pending} lazy listeners still running after {timeout}s"
                self._cond.wait(left)


@dataclass
class Acked:
    """How a transport acknowledged one delivery."""

    status: int  # HTTP status (Socket Mode: 200 once acked)
    payload: Any  # HTTP response JSON / Socket Mode ack payload (None when empty)
    latency: float  # seconds from sending to the ack
    envelope_id: str | None = None


@dataclass
class BotEnv:
    slack: FakeSlack
    engine: Any
    app: Any
    executor: TrackingExecutor
    transport: str
    url: str = ""
    handler: Any = None
    server: Any = None
    ids: Any = field(default_factory=lambda: iter(range(1, 10_000)))

    # deliveries ---------------------------------------------------------------------------

    def event(self, body: dict[str, Any], retry: int = 0, envelope_id: str | None = None) -> Acked:
        if self.transport == "http":
            return _acked(post_signed(self.url, body, SIGNING_SECRET, retry_num=retry or None))
        env = self.slack.socket.send("events_api", body, retry_attempt=retry, envelope_id=envelope_id)
        return self._socket_ack(env)

    def command(self, fields: dict[str, Any]) -> Acked:
        if self.transport == "http":
            return _acked(post_signed(self.url, form_body(fields), SIGNING_SECRET))
        return self._socket_ack(self.slack.socket.send("slash_commands", fields))

    def interactive(self, payload: dict[str, Any]) -> Acked:
        if self.transport == "http":
            return _acked(post_signed(self.url, interactive_form_body(payload), SIGNING_SECRET))
        return self._socket_ack(self.slack.socket.send("interactive", payload))

    def _socket_ack(self, envelope_id: str) -> Acked:
        ack = self.slack.socket.wait_ack_record(envelope_id, timeout=5)
        return Acked(200, ack.payload, ack.latency or 0.0, envelope_id)

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until every lazy listener has finished."""
        self.executor.wait_idle(timeout)

    def next_id(self, prefix: str = "Ev") -> str:
        return f"{prefix}{next(self.ids):06d}"

    # ledger -------------------------------------------------------------------------------

    def rows(self) -> list[Any]:
        from sqlmodel import select

        from bot.ledger.models import RequestRow

        with self.engine.ledger.session() as s:
            return list(s.exec(select(RequestRow).where(RequestRow.purpose == "user")))

    def feedback(self) -> list[Any]:
        from sqlmodel import select

        from bot.ledger.models import Feedback

        with self.engine.ledger.session() as s:
            return list(s.exec(select(Feedback)))

    def stop(self) -> None:
        if self.handler is not None:
            close_socket_mode(self.handler)
            self.handler = None
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        self.executor.shutdown(wait=True)


def _acked(result: HttpResult) -> Acked:
    """A text/plain body is a text-only ack; read it as bolt's Socket Mode adapter does."""
    payload: Any = None
    if result.body:
        try:
            payload = result.json()
        except ValueError:
            payload = {"text": result.text}
    return Acked(result.status, payload, result.elapsed)


def skills_registry(make_engine: Callable[..., Any]) -> Any:
    """The registry of an engine built with the test skills (built-ins included)."""
    return make_engine(skill_dirs=[TEST_SKILLS]).registry


def start_bot(
    slack: FakeSlack,
    make_engine: Callable[..., Any],
    tmp_path: Path,
    transport: str = "http",
    progress_delay: float = 0.3,
    **overrides: Any,
) -> BotEnv:
    """A real engine (scripted model) and the real bolt app on the chosen transport, against `slack`."""
    from bot.adapters.slack.app import build_app
    from bot.adapters.slack.server import make_http_server
    from bot.models.llm import litellm_module

    litellm_module()  # its one-time import takes seconds: pay it before any timed wait
    settings: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": slack.api_url.rstrip("/"),  # the app must add the trailing slash itself
        "admins": [ADMIN],
        "skill_dirs": [TEST_SKILLS],
        # The tests written for the placeholder-then-update path keep covering it (it is the fallback
        # when Slack refuses a stream); the streaming tests pass slack_streaming=True.
        "slack_streaming": False,
    }
    settings.update(overrides)
    engine = make_engine(**settings)
    executor = TrackingExecutor()
    app = build_app(engine, executor=executor, progress_delay=progress_delay)
    env = BotEnv(slack=slack, engine=engine, app=app, executor=executor, transport=transport)
    if transport == "http":
        env.server = make_http_server(app, "127.0.0.1", 0)
        threading.Thread(target=env.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        env.url = f"http://127.0.0.1:{env.server.port}/slack/events"
    else:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        env.handler = SocketModeHandler(app, APP_TOKEN)
        env.handler.connect()
        slack.socket.wait_connected()
    return env


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[FakeSlack]:
    """The fake Slack; at the end every Block Kit payload the bot sent must be valid."""
    with FakeSlack() as fake:
        yield fake
        validate_calls(fake.calls)


@pytest.fixture(name="http_bot")
def http_bot_fixture(slack: FakeSlack, make_engine: Callable[..., Any], tmp_path: Path) -> Iterator[BotEnv]:
    env = start_bot(slack, make_engine, tmp_path, "http")
    yield env
    env.stop()


@pytest.fixture(name="bot_env", params=["http", "socket"])
def bot_env_fixture(
    request: pytest.FixtureRequest, slack: FakeSlack, make_engine: Callable[..., Any], tmp_path: Path
) -> Iterator[BotEnv]:
    """The bot on each transport in turn."""
    env = start_bot(slack, make_engine, tmp_path, request.param)
    yield env
    env.stop()


# Payloads (real samples from tests/fixtures/slack, with ids and text adjusted) ------------------


def event_body(
    event: dict[str, Any], event_id: str, fixture: str = "events/app_mention.json"
) -> dict[str, Any]:
    body = load_fixture(fixture)
    body.update({"event_id": event_id, "team_id": "T111", "api_app_id": "A111"})
    body["event"] = event
    return body


def mention(
    text: str, ts: str, *, user: str = USER, channel: str = CHANNEL, thread_ts: str | None = None
) -> dict:
    event = load_fixture("events/app_mention.json")["event"]
    event.update({"text": f"<@UBOT> {text}", "user": user, "channel": channel, "ts": ts, "event_ts": ts})
    event.pop("blocks", None)
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str,
    ts: str,
    *,
    user: str = USER,
    channel: str = CHANNEL,
    thread_ts: str | None = None,
    **extra: Any,
) -> dict:
    fixture = "events/message_im.json" if channel.startswith("D") else "events/message_in_thread.json"
    event = load_fixture(fixture)["event"]
    event.update({"text": text, "user": user, "channel": channel, "ts": ts, "event_ts": ts})
    event["channel_type"] = "im" if channel.startswith("D") else "channel"
    for key in ("thread_ts", "parent_user_id", "user_profile", "source_team", "user_team"):
        event.pop(key, None)
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


def slash(
    command: str, text: str, slack: FakeSlack, *, user: str = USER, channel: str = CHANNEL, **extra: Any
) -> dict:
    fields = load_fixture("interactivity/slash_command.json")
    fields.update(
        {
            "command": command,
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "channel_name": "general",
            "team_id": "T111",
            "response_url": slack.response_url(f"cmd-{command}-{user}"),
            "trigger_id": f"trig-{time.monotonic_ns()}",
        }
    )
    fields.update(extra)
    return fields


def button_click(
    action_id: str, request_id: str, msg: dict[str, Any], slack: FakeSlack, *, user: str = USER
) -> dict:
    payload = load_fixture("interactivity/block_actions_button_in_message.json")
    channel = msg["channel"]
    payload.update(
        {
            "user": {"id": user},
            "channel": {"id": channel},
            "container": {
                "type": "message",
                "message_ts": msg["ts"],
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "message": {k: v for k, v in msg.items() if k != "channel"},
            "trigger_id": f"trig-{time.monotonic_ns()}",
            "response_url": slack.response_url(f"click-{user}"),
            "team": {"id": "T111"},
        }
    )
    payload["actions"] = [
        {**payload["actions"][0], "action_id": action_id, "block_id": "feedback", "value": request_id}
    ]
    return payload


def feedback_click(value: str, msg: dict[str, Any], slack: FakeSlack, *, user: str = USER) -> dict:
    """A click on Slack's native feedback_buttons: the action carries the clicked button's value."""
    from bot.adapters.slack.ids import FEEDBACK_BLOCK, FEEDBACK_NATIVE

    payload = button_click(FEEDBACK_NATIVE, value, msg, slack, user=user)
    payload["actions"] = [
        {
            "type": "feedback_buttons",
            "action_id": FEEDBACK_NATIVE,
            "block_id": FEEDBACK_BLOCK,
            "value": value,
            "action_ts": f"{time.time():.6f}",
        }
    ]
    return payload


def modal_submission(view: dict[str, Any], comment: str | None, *, user: str = USER) -> dict:
    payload = load_fixture("interactivity/view_submission.json")
    payload["user"] = {"id": user, "username": "someone", "name": "someone", "team_id": "T111"}
    submitted = {
        **payload["view"],
        **{k: view[k] for k in ("callback_id", "private_metadata", "blocks", "title")},
    }
    submitted["state"] = {"values": {"comment": {"comment": {"type": "plain_text_input", "value": comment}}}}
    payload["view"] = submitted
    return payload


def reaction(name: str, channel: str, ts: str, *, user: str = USER) -> dict:
    event = load_fixture("events/reaction_added_on_bot_message.json")["event"]
    event.update({"user": user, "reaction": name, "item": {"type": "message", "channel": channel, "ts": ts}})
    event["item_user"] = "UBOT"
    return event


def home_opened(user: str) -> dict:
    event = load_fixture("events/app_home_opened.json")["event"]
    event.update({"user": user, "tab": "home", "channel": "D" + user[1:]})
    return event


def shortcut(
    callback_id: str, channel: str, msg: dict[str, Any], slack: FakeSlack, *, user: str = USER
) -> dict:
    payload = load_fixture("interactivity/message_action_shortcut.json")
    payload.update(
        {
            "callback_id": callback_id,
            "user": {"id": user, "name": "someone"},
            "channel": {"id": channel, "name": "general"},
            "message_ts": msg["ts"],
            "message": msg,
            "response_url": slack.response_url(f"shortcut-{user}"),
            "team": {"id": "T111", "domain": "fake"},
        }
    )
    return payload


def answers(slack: FakeSlack, channel: str | None = None) -> list[dict[str, Any]]:
    """Bot messages that carry an answer (feedback buttons or a footer), not placeholders."""
    from bot.adapters.slack.blocks import PROGRESS_TEXT

    return [m for m in slack.bot_messages(channel) if not (m.get("text") or "").endswith(PROGRESS_TEXT)]
