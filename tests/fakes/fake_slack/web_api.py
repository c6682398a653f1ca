"""The Web API methods the bot uses, over the state: token checks, argument checks, Slack's documented
errors and limits, and responses shaped like the ``examples.success`` of
tests/fixtures/slack/methods/docs.slack.dev/*.json."""

from __future__ import annotations

import base64
import copy
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from tests.fakes.fake_slack.fixtures import load_fixture
from tests.fakes.fake_slack.state import Call, SlackState, ts_key

if TYPE_CHECKING:
    from tests.fakes.fake_slack.socket_mode import FakeSocketMode

_MAX_MESSAGE_TEXT = 40_000
_MAX_UPDATE_TEXT = 4_000
_MAX_MESSAGE_BLOCKS = 50
_MAX_VIEW_BLOCKS = 100
_MAX_VIEW_BYTES = 250_000
# Streaming (fixtures/slack/limits.json "streaming", web_api/streaming_errors.json).
_MAX_STREAM_CALL_TEXT = 12_000  # markdown_text per start/append/stop call (documented)
_MAX_STREAM_MESSAGE_TEXT = 12_000  # cumulative per streamed message: observed msg_too_long, not documented
_MAX_STOP_STREAM_BLOCKS = 50
_MAX_LOADING_MESSAGES = 10
_MAX_LOADING_MESSAGE_CHARS = 50
_RECIPIENT_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any):
        super().__init__(error)
        self.error = error
        self.extra = extra


# Streaming chunks (chat.startStream / appendStream / stopStream `chunks`) ---------------------------
# The method specs (fixtures/slack/methods) only say "Array of streaming chunks"; the chunk shapes are
# those of the pinned slack-sdk (slack_sdk.models.messages.chunk), whose ChatStream helper sends them.
# A malformed chunk gets the documented `invalid_chunks` error.
_TASK_STATUSES = ("pending", "in_progress", "complete", "error")
_CHUNK_FIELDS: dict[str, tuple[set[str], set[str]]] = {  # type: (required, optional)
    "markdown_text": ({"text"}, set()),
    "plan_update": ({"title"}, set()),
    "task_update": ({"id", "title", "status"}, {"details", "output", "sources"}),
    "blocks": ({"blocks"}, set()),
}


def check_stream_chunks(chunks: Any) -> list[dict]:
    """The chunks of a streaming call, or `_ApiError("invalid_chunks")` for what Slack would reject."""
    if not isinstance(chunks, list) or not chunks:
        raise _ApiError("invalid_chunks")
    for chunk in chunks:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind not in _CHUNK_FIELDS:
            raise _ApiError("invalid_chunks")
        required, optional = _CHUNK_FIELDS[kind]
        keys = set(chunk) - {"type"}
        if not required <= keys or keys - required - optional:
            raise _ApiError("invalid_chunks")
        strings = [f for f in (required | optional) & keys if f not in ("sources", "blocks")]
        if any(not isinstance(chunk[f], str) for f in strings):
            raise _ApiError("invalid_chunks")
        if kind == "task_update" and (chunk["status"] not in _TASK_STATUSES or not chunk["id"]):
            raise _ApiError("invalid_chunks")
        if kind == "task_update" and "sources" in chunk:
            sources = chunk["sources"]
            if not isinstance(sources, list) or any(
                not isinstance(x, dict) or x.get("type") != "url" or not {"url", "text"} <= set(x)
                for x in sources
            ):
                raise _ApiError("invalid_chunks")
        if kind == "blocks" and not isinstance(chunk["blocks"], list):
            raise _ApiError("invalid_chunks")
    return chunks


def apply_task_updates(tasks: dict[str, dict], chunks: list[dict]) -> None:
    """A streamed message's task cards: each `task_update` sets its task's title and status by id."""
    for chunk in chunks:
        if chunk.get("type") == "task_update":
            tasks[chunk["id"]] = {k: v for k, v in chunk.items() if k not in ("type", "id")}


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class WebApi(SlackState):
    """Web API method handlers (``_methods``), called by the HTTP server with ``_lock`` held."""

    port: int  # the HTTP server's port, for upload URLs (set by FakeSlack.start)
    socket: FakeSocketMode  # apps.connections.open hands out its URL

    def __init__(
        self,
        *,
        bot_user_id: str,
        bot_id: str,
        team_id: str,
        team: str,
        app_id: str,
        bot_name: str,
        valid_tokens: Iterable[str] | None,
        validate_blocks: bool,
    ):
        super().__init__(
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            team_id=team_id,
            team=team,
            app_id=app_id,
            bot_name=bot_name,
        )
        self.valid_tokens: set[str] | None = set(valid_tokens) if valid_tokens is not None else None
        self.validate_blocks = validate_blocks
        self._used_triggers: set[str] = set()
        self._validators: dict[str, Any] = {}

        self._methods: dict[str, Callable[[Call], dict]] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.push": self._views_open,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "users.info": self._users_info,
            "assistant.threads.setStatus": self._assistant_set_status,
            "assistant.threads.setSuggestedPrompts": self._assistant_set_prompts,
            "assistant.threads.setTitle": self._assistant_set_title,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "apps.connections.open": self._apps_connections_open,
        }

    # ----- dispatch

    def _api(self, method: str, call: Call) -> dict:
        token = call.token
        try:
            if not token:
                raise _ApiError("not_authed")
            if self.valid_tokens is not None and token not in self.valid_tokens:
                raise _ApiError("invalid_auth")
            handler = self._methods.get(method)
            if handler is None:
                raise _ApiError("unknown_method", req_method=method)
            if method == "apps.connections.open":
                if not token.startswith("xapp-"):
                    raise _ApiError("not_allowed_token_type")
            elif token.startswith("xapp-") and method not in ("auth.test", "api.test"):
                raise _ApiError("not_allowed_token_type")
            with self._lock:
                result = handler(call)
            return {"ok": True, **result}
        except _ApiError as e:
            return {"ok": False, "error": e.error, **e.extra}

    # ----- validation helpers

    def _blocks_param(self, call: Call, name: str = "blocks") -> list | None:
        if name not in call.params or call.params[name] in (None, ""):
            return None
        value = call.json_field(name)
        if not isinstance(value, list):
            raise _ApiError("invalid_blocks_format")
        return value

    def _validate_message_blocks(self, blocks: list | None) -> None:
        if blocks is None:
            return
        if len(blocks) > _MAX_MESSAGE_BLOCKS:
            raise _ApiError(
                "invalid_blocks",
                errors=[f"must provide at most {_MAX_MESSAGE_BLOCKS} items [json-pointer:/blocks]"],
                response_metadata={
                    "messages": [
                        f"[ERROR] must provide at most {_MAX_MESSAGE_BLOCKS} items [json-pointer:/blocks]"
                    ]
                },
            )
        self._schema_check("known_blocks_array.schema.json", blocks, "invalid_blocks", "/blocks")
        self._check_markdown_total(blocks)

    @staticmethod
    def _check_markdown_total(blocks: list) -> None:
        """markdown blocks: "cumulative limit of 12,000 characters" per payload (limits.json block_kit)."""
        total = sum(
            len(str(b.get("text") or ""))
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "markdown"
        )
        if total > _MAX_STREAM_CALL_TEXT:
            msg = f"[ERROR] markdown blocks exceed {_MAX_STREAM_CALL_TEXT} characters [json-pointer:/blocks]"
            raise _ApiError("invalid_blocks", errors=[msg], response_metadata={"messages": [msg]})

    def _schema_check(self, schema_file: str, instance: Any, error: str, pointer: str) -> None:
        if not self.validate_blocks:
            return
        validator = self._validators.get(schema_file)
        if validator is None:
            import jsonschema  # dev dependency; only needed with validate_blocks=True

            schema = load_fixture(f"blockkit/{schema_file}")
            validator = jsonschema.Draft7Validator(schema)
            self._validators[schema_file] = validator
        errs = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errs:
            msgs = [
                f"[ERROR] {e.message[:200]} [json-pointer:{'/'.join([pointer, *map(str, e.absolute_path)])}]"
                for e in errs[:5]
            ]
            raise _ApiError(error, errors=msgs, response_metadata={"messages": msgs})

    def _channel_param(self, call: Call, name: str = "channel") -> str:
        channel = call.params.get(name)
        if not channel or not isinstance(channel, str):
            raise _ApiError("channel_not_found")
        if channel[0] in ("U", "W"):  # posting to a user id opens/uses the DM
            channel = "D" + channel[1:]
        return channel

    def _bot_message(self, ts: str, text: str, blocks: list | None, extra: dict | None = None) -> dict:
        msg: dict[str, Any] = {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text,
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": self.bot_name,
                "deleted": False,
                "team_id": self.team_id,
            },
        }
        if blocks is not None:
            msg["blocks"] = blocks
        if extra:
            msg.update(extra)
        return msg

    # ----- method handlers (called with self._lock held; return the response minus "ok")

    def _api_test(self, call: Call) -> dict:
        args = {k: v for k, v in call.params.items() if k != "token"}
        return {"args": args} if args else {}

    def _auth_test(self, call: Call) -> dict:
        return {
            "url": f"https://{self.team.lower()}.slack.com/",
            "team": self.team,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, call: Call) -> dict:
        p = call.params
        channel = self._channel_param(call)
        blocks = self._blocks_param(call)
        markdown_text = p.get("markdown_text")
        text = p.get("text")
        attachments = call.json_field("attachments") if p.get("attachments") else None
        if markdown_text and (text or blocks):
            raise _ApiError("markdown_text_conflict")
        if not text and not blocks and not attachments and not markdown_text:
            raise _ApiError("no_text")
        self._validate_message_blocks(blocks)
        text = str(text if text is not None else (markdown_text or ""))
        result: dict[str, Any] = {}
        if len(text) > _MAX_MESSAGE_TEXT:
            text = text[:_MAX_MESSAGE_TEXT]
            result["warning"] = "message_truncated"
            result["response_metadata"] = {"warnings": ["message_truncated"]}
        ts = self._next_ts_locked()
        extra: dict[str, Any] = {}
        thread_ts = p.get("thread_ts") or None
        if thread_ts:
            extra["thread_ts"] = thread_ts
            if _truthy(p.get("reply_broadcast")):
                extra["subtype"] = "thread_broadcast"
            self.assistant_status.pop((channel, thread_ts), None)
        if attachments is not None:
            extra["attachments"] = attachments
        metadata = call.json_field("metadata") if p.get("metadata") else None
        if metadata is not None:
            extra["metadata"] = metadata
        msg = self._bot_message(ts, text, blocks, extra)
        self._store_locked(channel, msg)
        return {"channel": channel, "ts": ts, "message": copy.deepcopy(msg), **result}

    def _refuse_update_while_streaming(self, channel: str, ts: str) -> None:
        """chat.update's documented `streaming_state_conflict`: "The message is currently streaming text
        and cannot be edited." (methods/chat/chat.update.json). It must be stopped (chat.stopStream) first."""
        if (channel, ts) in self._streaming:
            raise _ApiError("streaming_state_conflict")

    def _chat_update(self, call: Call) -> dict:
        p = call.params
        channel = self._channel_param(call)
        ts = p.get("ts")
        msg = self._messages.get(channel, {}).get(ts) if ts else None
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.get("user") != self.bot_user_id:
            raise _ApiError("cant_update_message")
        self._refuse_update_while_streaming(channel, str(ts))
        blocks = self._blocks_param(call)
        self._validate_message_blocks(blocks)
        text = p.get("text")
        if text is not None and len(str(text)) > _MAX_UPDATE_TEXT:
            raise _ApiError("msg_too_long")
        if text is not None:
            msg["text"] = str(text)
        elif p.get("markdown_text"):
            msg["text"] = str(p["markdown_text"])
        if blocks is not None:
            msg["blocks"] = blocks
        if p.get("attachments"):
            msg["attachments"] = call.json_field("attachments")
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts_locked()}
        self._cond.notify_all()
        message = {k: copy.deepcopy(v) for k, v in msg.items() if k not in ("ts", "edited")}
        return {"channel": channel, "ts": ts, "text": msg.get("text", ""), "message": message}

    def _chat_post_ephemeral(self, call: Call) -> dict:
        p = call.params
        channel = self._channel_param(call)
        if not p.get("user"):
            raise _ApiError("user_not_in_channel")
        blocks = self._blocks_param(call)
        if not p.get("text") and not blocks and not p.get("attachments") and not p.get("markdown_text"):
            raise _ApiError("no_text")
        self._validate_message_blocks(blocks)
        message_ts = self._next_ts_locked()
        self.ephemerals.append(
            {
                "channel": channel,
                "user": p.get("user"),
                "text": p.get("text") or p.get("markdown_text") or "",
                "blocks": blocks,
                "thread_ts": p.get("thread_ts") or None,
                "message_ts": message_ts,
            }
        )
        self._cond.notify_all()
        return {"message_ts": message_ts}

    def _chat_delete(self, call: Call) -> dict:
        channel = self._channel_param(call)
        ts = call.params.get("ts")
        msgs = self._messages.get(channel, {})
        if not ts or ts not in msgs:
            raise _ApiError("message_not_found")
        if msgs[ts].get("user") != self.bot_user_id:
            raise _ApiError("cant_delete_message")
        del msgs[ts]
        self._cond.notify_all()
        return {"channel": channel, "ts": ts}

    def _chat_get_permalink(self, call: Call) -> dict:
        # Lenient: works for any ts (events in tests often come from fixtures, not from the store).
        channel = self._channel_param(call)
        ts = call.params.get("message_ts")
        if not ts:
            raise _ApiError("message_not_found")
        link = f"https://{self.team.lower()}.slack.com/archives/{channel}/p{str(ts).replace('.', '')}"
        msg = self._messages.get(channel, {}).get(ts)
        if msg is not None and msg.get("thread_ts") and msg["thread_ts"] != ts:
            link += f"?thread_ts={msg['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": link}

    @staticmethod
    def _stream_text(call: Call) -> str:
        text = call.params.get("markdown_text") or ""
        chunks = call.json_field("chunks") if call.params.get("chunks") else None
        if isinstance(chunks, list):
            for chunk in chunks:
                if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
                    text += str(chunk.get("text") or "")
        return str(text)

    def _stream_call_text(self, call: Call, required: bool) -> str:
        text = self._stream_text(call)
        chunks = check_stream_chunks(call.json_field("chunks")) if call.params.get("chunks") else []
        if chunks and call.params.get("ts"):  # chat.startStream notes its steps once it has a ts
            key = (str(call.params.get("channel")), str(call.params["ts"]))
            apply_task_updates(self.stream_tasks.setdefault(key, {}), chunks)
        required = required and not chunks  # steps alone are content (the SDK's ChatStream sends them so)
        if len(str(call.params.get("markdown_text") or "")) > _MAX_STREAM_CALL_TEXT:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={
                    "messages": [
                        f"[ERROR] must be at most {_MAX_STREAM_CALL_TEXT} characters [json-pointer:/markdown_text]"
                    ]
                },
            )
        if required and not text:
            raise _ApiError("no_text")
        return text

    def _chat_start_stream(self, call: Call) -> dict:
        channel = self._channel_param(call)
        thread_ts = call.params.get("thread_ts") or None
        if not thread_ts:  # "Streamed messages should always be replies to a user request."
            raise _ApiError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing thread_ts"]}
            )
        if channel[0] in ("C", "G"):  # "Required when streaming to channels."
            if not call.params.get("recipient_team_id"):
                raise _ApiError("missing_recipient_team_id")
            if not call.params.get("recipient_user_id"):
                raise _ApiError("missing_recipient_user_id")
        recipient = call.params.get("recipient_user_id")
        if recipient is not None and not _RECIPIENT_USER.match(str(recipient)):
            raise _ApiError(
                "invalid_arguments",
                response_metadata={
                    "messages": [
                        "[ERROR] input must match regex pattern: ^[UW][A-Z0-9]{2,}$ "
                        "[json-pointer:/recipient_user_id]"
                    ]
                },
            )
        if recipient and recipient in self.stream_refusals:
            raise _ApiError(self.stream_refusals[str(recipient)])
        self._stream_call_text(call, required=False)
        ts = self._next_ts_locked()
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        msg = self._bot_message(ts, self._stream_text(call), None, extra)
        self._store_locked(channel, msg)
        if call.params.get("chunks"):
            apply_task_updates(self.stream_tasks.setdefault((channel, ts), {}), call.json_field("chunks"))
        self._streaming.add((channel, ts))
        if thread_ts:
            self.assistant_status.pop((channel, thread_ts), None)
        return {"channel": channel, "ts": ts}

    def _stream_target(self, call: Call, appending: bool = False) -> tuple[str, str, dict]:
        channel = self._channel_param(call)
        ts = call.params.get("ts")
        msg = self._messages.get(channel, {}).get(ts) if ts else None
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.get("user") != self.bot_user_id:
            raise _ApiError("message_not_owned_by_app")
        if appending and (channel, ts) in self._stopped_by_user:
            raise _ApiError("stopped_by_user")
        if (channel, ts) not in self._streaming:
            raise _ApiError("message_not_in_streaming_state")
        return channel, str(ts), msg

    @staticmethod
    def _grow_stream(msg: dict, added: str) -> None:
        text = msg.get("text", "") + added
        if len(text) > _MAX_STREAM_MESSAGE_TEXT:
            raise _ApiError("msg_too_long")
        msg["text"] = text

    def _chat_append_stream(self, call: Call) -> dict:
        channel, ts, msg = self._stream_target(call, appending=True)
        added = self._stream_call_text(call, required=True)
        self._grow_stream(msg, added)
        self._cond.notify_all()
        return {"channel": channel, "ts": ts}

    def _chat_stop_stream(self, call: Call) -> dict:
        channel, ts, msg = self._stream_target(call)
        added = self._stream_call_text(call, required=False)
        blocks = self._blocks_param(call)
        if blocks is not None and len(blocks) > _MAX_STOP_STREAM_BLOCKS:
            raise _ApiError("msg_blocks_too_many")
        if blocks is not None:
            self._schema_check("known_blocks_array.schema.json", blocks, "invalid_blocks", "/blocks")
            self._check_markdown_total(blocks)
        self._grow_stream(msg, added)
        if blocks is not None:
            msg["blocks"] = blocks
        self._streaming.discard((channel, ts))
        self._cond.notify_all()
        return {"channel": channel, "ts": ts, "message": copy.deepcopy(msg)}

    @staticmethod
    def _page(items: list[dict], call: Call, default_limit: int = 1000) -> dict:
        try:
            limit = int(call.params.get("limit") or default_limit)
        except (TypeError, ValueError):
            limit = default_limit
        limit = max(1, min(limit, 1000))
        start = 0
        cursor = call.params.get("cursor")
        if cursor:
            try:
                start = int(base64.b64decode(str(cursor)).decode().split(":", 1)[1])
            except (ValueError, IndexError):
                raise _ApiError("invalid_cursor") from None
        page = items[start : start + limit]
        has_more = start + limit < len(items)
        out: dict[str, Any] = {"messages": copy.deepcopy(page), "has_more": has_more}
        if has_more:
            out["response_metadata"] = {
                "next_cursor": base64.b64encode(f"next:{start + limit}".encode()).decode()
            }
        else:
            out["response_metadata"] = {"next_cursor": ""}
        return out

    @staticmethod
    def _ts_window(items: list[dict], call: Call) -> list[dict]:
        oldest = call.params.get("oldest")
        latest = call.params.get("latest")
        inclusive = _truthy(call.params.get("inclusive"))
        out = []
        for m in items:
            k = ts_key(m["ts"])
            if oldest and (k < ts_key(oldest) or (k == ts_key(oldest) and not inclusive)):
                continue
            if latest and (k > ts_key(latest) or (k == ts_key(latest) and not inclusive)):
                continue
            out.append(m)
        return out

    def _conversations_replies(self, call: Call) -> dict:
        channel = self._channel_param(call)
        ts = call.params.get("ts")
        if not ts:
            raise _ApiError("thread_not_found")
        thread = self._thread_locked(channel, str(ts))
        if not thread:
            raise _ApiError("thread_not_found")
        return self._page(self._ts_window(thread, call), call)

    def _conversations_history(self, call: Call) -> dict:
        channel = self._channel_param(call)
        top = [
            m
            for m in self._messages.get(channel, {}).values()
            if not m.get("thread_ts") or m["thread_ts"] == m["ts"] or m.get("subtype") == "thread_broadcast"
        ]
        top.sort(key=lambda m: ts_key(m["ts"]), reverse=True)
        result = self._page(self._ts_window(top, call), call, default_limit=100)
        result["pin_count"] = 0
        return result

    def _conversations_open(self, call: Call) -> dict:
        users = str(call.params.get("users") or "")
        channel_id = call.params.get("channel")
        if not channel_id:
            if not users:
                raise _ApiError("users_list_not_supplied")
            channel_id = "D" + users.split(",")[0].strip()[1:]
        return {"channel": {"id": channel_id}}

    def _conversations_info(self, call: Call) -> dict:
        channel = self._channel_param(call)
        is_im = channel.startswith("D")
        return {
            "channel": {
                "id": channel,
                "name": None if is_im else channel.lower(),
                "is_channel": channel.startswith("C"),
                "is_group": channel.startswith("G"),
                "is_im": is_im,
                "is_private": not channel.startswith("C"),
                "is_archived": False,
                "is_member": True,
                "is_ext_shared": False,
                "context_team_id": self.team_id,
            }
        }

    def _view_param(self, call: Call) -> dict:
        view = call.json_field("view")
        if not isinstance(view, dict):
            raise _ApiError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: view"]}
            )
        raw = call.params.get("view")
        size = len(raw.encode()) if isinstance(raw, str) else len(json.dumps(view).encode())
        if size > _MAX_VIEW_BYTES:
            raise _ApiError("view_too_large")
        blocks = view.get("blocks") or []
        if len(blocks) > _MAX_VIEW_BLOCKS:
            msg = f"[ERROR] must provide at most {_MAX_VIEW_BLOCKS} items [json-pointer:/view/blocks]"
            raise _ApiError("invalid_arguments", response_metadata={"messages": [msg]})
        self._schema_check("home_or_modal_view.strict.schema.json", view, "invalid_arguments", "/view")
        return view

    def _view_object(self, view: dict, view_id: str | None = None, previous: dict | None = None) -> dict:
        view_id = view_id or self._next_id("V")
        out: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "close": None,
            "submit": None,
            "blocks": [],
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "clear_on_close": False,
            "notify_on_close": False,
            "root_view_id": (previous or {}).get("root_view_id", view_id),
            "previous_view_id": None,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
        }
        out.update(copy.deepcopy(view))
        out["id"] = view_id
        return out

    def _views_open(self, call: Call) -> dict:
        trigger = call.params.get("trigger_id") or call.params.get("interactivity_pointer")
        if not trigger:
            raise _ApiError("invalid_trigger_id")
        if trigger in self._used_triggers:
            raise _ApiError("exchanged_trigger_id")
        view = self._view_param(call)
        self._used_triggers.add(str(trigger))
        obj = self._view_object(view)
        self.views[obj["id"]] = obj
        return {"view": copy.deepcopy(obj)}

    def _views_update(self, call: Call) -> dict:
        view = self._view_param(call)
        view_id = call.params.get("view_id")
        external_id = call.params.get("external_id")
        previous = None
        if view_id:
            previous = self.views.get(view_id)  # lenient: unknown ids (from fixtures) are created
        elif external_id:
            previous = next((v for v in self.views.values() if v.get("external_id") == external_id), None)
            if previous is None:
                raise _ApiError("not_found")
            view_id = previous["id"]
        else:
            raise _ApiError("not_found")
        if previous is not None and call.params.get("hash") and call.params["hash"] != previous.get("hash"):
            raise _ApiError("hash_conflict")
        obj = self._view_object(view, view_id=view_id, previous=previous)
        self.views[obj["id"]] = obj
        return {"view": copy.deepcopy(obj)}

    def _views_publish(self, call: Call) -> dict:
        user_id = call.params.get("user_id")
        if not user_id:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: user_id"]},
            )
        view = self._view_param(call)
        previous = self.home_views.get(user_id)
        if previous is not None and call.params.get("hash") and call.params["hash"] != previous.get("hash"):
            raise _ApiError("hash_conflict")
        obj = self._view_object(view, view_id=previous["id"] if previous else None)
        self.home_views[user_id] = obj
        self.views[obj["id"]] = obj
        return {"view": copy.deepcopy(obj)}

    def _reaction_target(self, call: Call) -> tuple[str, str, str, dict | None]:
        channel = self._channel_param(call)
        ts = call.params.get("timestamp")
        name = call.params.get("name")
        if not ts:
            raise _ApiError("no_item_specified")
        if not name:
            raise _ApiError("invalid_name")
        return channel, str(ts), str(name).strip(":"), self._messages.get(channel, {}).get(ts)

    def _reactions_add(self, call: Call) -> dict:
        # Lenient: reacting to a message not in the store (e.g. from a fixture event) is fine.
        _channel, _ts, name, msg = self._reaction_target(call)
        if msg is not None:
            reactions = msg.setdefault("reactions", [])
            entry = next((r for r in reactions if r["name"] == name), None)
            if entry is None:
                entry = {"name": name, "users": [], "count": 0}
                reactions.append(entry)
            if self.bot_user_id in entry["users"]:
                raise _ApiError("already_reacted")
            entry["users"].append(self.bot_user_id)
            entry["count"] = len(entry["users"])
            self._cond.notify_all()
        return {}

    def _reactions_remove(self, call: Call) -> dict:
        _channel, _ts, name, msg = self._reaction_target(call)
        if msg is not None:
            reactions = msg.get("reactions", [])
            entry = next((r for r in reactions if r["name"] == name), None)
            if entry is None or self.bot_user_id not in entry["users"]:
                raise _ApiError("no_reaction")
            entry["users"].remove(self.bot_user_id)
            entry["count"] = len(entry["users"])
            if not entry["users"]:
                reactions.remove(entry)
            self._cond.notify_all()
        return {}

    def _users_info(self, call: Call) -> dict:
        user_id = call.params.get("user")
        if not user_id:
            raise _ApiError("user_not_found")
        user = self.users.get(user_id) or self._default_user(str(user_id))
        return {"user": copy.deepcopy(user)}

    def _assistant_thread(self, call: Call, need_thread: bool = True) -> tuple[str, str | None]:
        channel = call.params.get("channel_id")
        if not channel:
            raise _ApiError("channel_not_found")
        thread_ts = call.params.get("thread_ts") or None
        if need_thread and not thread_ts:
            raise _ApiError("invalid_thread_ts")
        return str(channel), thread_ts

    def _assistant_set_status(self, call: Call) -> dict:
        channel, thread_ts = self._assistant_thread(call)
        status = call.params.get("status")
        if status is None:
            raise _ApiError("invalid_arguments")
        loading = call.json_field("loading_messages") if "loading_messages" in call.params else None
        if loading is not None and (
            not isinstance(loading, list)
            or not 1 <= len(loading) <= _MAX_LOADING_MESSAGES
            or not all(isinstance(m, str) and 1 <= len(m) <= _MAX_LOADING_MESSAGE_CHARS for m in loading)
        ):
            raise _ApiError("invalid_arguments")
        if status:
            self.assistant_status[(channel, str(thread_ts))] = str(status)
        else:
            self.assistant_status.pop((channel, str(thread_ts)), None)
        return {}

    def _assistant_set_prompts(self, call: Call) -> dict:
        channel, thread_ts = self._assistant_thread(call, need_thread=False)
        prompts = call.json_field("prompts")
        if not isinstance(prompts, list):
            raise _ApiError("invalid_arguments")
        self.suggested_prompts[(channel, thread_ts)] = {"prompts": prompts, "title": call.params.get("title")}
        return {}

    def _assistant_set_title(self, call: Call) -> dict:
        channel, thread_ts = self._assistant_thread(call)
        self.assistant_titles[(channel, str(thread_ts))] = str(call.params.get("title") or "")
        return {}

    def _files_get_upload_url(self, call: Call) -> dict:
        filename = call.params.get("filename")
        length = call.params.get("length")
        if not filename or length in (None, ""):
            raise _ApiError("missing_argument")
        try:
            length_int = int(length)
        except (TypeError, ValueError):
            raise _ApiError("invalid_arguments") from None
        file_id = self._next_id("F123")
        self.files[file_id] = {
            "id": file_id,
            "name": str(filename),
            "title": str(filename),
            "length": length_int,
            "size": None,
            "alt_txt": call.params.get("alt_txt"),
            "snippet_type": call.params.get("snippet_type"),
            "completed": False,
        }
        return {"upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, call: Call) -> dict:
        files = call.json_field("files")
        if not isinstance(files, list) or not files:
            raise _ApiError("invalid_arguments")
        channel = call.params.get("channel_id") or None
        channels = call.params.get("channels") or None
        if channel is None and channels:
            channel = str(channels).split(",")[0].strip() or None
        out = []
        for item in files:
            file_id = item.get("id") if isinstance(item, dict) else None
            meta = self.files.get(file_id) if file_id else None
            if meta is None:
                raise _ApiError("file_not_found")
            if item.get("title"):
                meta["title"] = item["title"]
            meta["completed"] = True
            out.append(
                {
                    "id": file_id,
                    "created": int(time.time()),
                    "timestamp": int(time.time()),
                    "name": meta["name"],
                    "title": meta["title"],
                    "user": self.bot_user_id,
                    "size": len(self.uploads.get(file_id, b"")),
                    "url_private": f"http://127.0.0.1:{self.port}/files/{file_id}/{meta['name']}",
                    "permalink": f"https://{self.team.lower()}.slack.com/files/{self.bot_user_id}/{file_id}",
                    "channels": [channel] if channel else [],
                }
            )
        if channel:
            thread_ts = call.params.get("thread_ts") or None
            extra: dict[str, Any] = {"files": copy.deepcopy(out), "upload": True}
            if thread_ts:
                extra["thread_ts"] = thread_ts
            blocks = self._blocks_param(call)
            msg = self._bot_message(
                self._next_ts_locked(), str(call.params.get("initial_comment") or ""), blocks, extra
            )
            if channel[0] in ("U", "W"):
                channel = "D" + channel[1:]
            self._store_locked(channel, msg)
        return {"files": out}

    def _apps_connections_open(self, call: Call) -> dict:
        ticket = str(uuid.uuid4())
        self.tickets.append(ticket)
        return {"url": f"ws://127.0.0.1:{self.socket.port}/link/?ticket={ticket}&app_id={self.app_id}"}
