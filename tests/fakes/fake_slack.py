"""A fake Slack for tests: Web API over HTTP, Socket Mode over WebSocket, webhooks and file uploads.

Everything listens on 127.0.0.1 with ephemeral ports and runs in background threads, so the real
``slack_sdk`` / ``slack_bolt`` clients talk to it over real sockets::

    with FakeSlack() as slack:
        client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
        client.chat_postMessage(channel="C111", text="hi")
        assert slack.wait_for("chat.postMessage").params["text"] == "hi"

Socket Mode (the real ``SocketModeHandler`` with the builtin client)::

    app = App(client=WebClient(token=BOT_TOKEN, base_url=slack.api_url))
    handler = SocketModeHandler(app, APP_TOKEN)
    handler.connect()
    slack.socket.wait_connected()
    env_id = slack.socket.send("events_api", load_fixture("events/app_mention.json"))
    ack = slack.socket.wait_ack(env_id)      # {"envelope_id": env_id} (+ "payload" if ack(...) had one)
    close_socket_mode(handler)               # close the client before the fake stops (fast close)

Note: bolt does not ack envelopes that no listener handles (it answers 404 internally), so wait_ack
times out for unhandled event types; register a listener for what you send.

Response shapes follow the ``examples.success`` of tests/fixtures/slack/methods/docs.slack.dev/*.json.
Times recorded here (``Call.at``, ``Ack.sent_at`` / ``Ack.received_at``) are ``time.monotonic()``.
Only the standard library and ``websockets`` are used for the servers (``pytest`` for the optional
``fake_slack`` fixture; ``slack_sdk`` lazily in ``FakeSlack.web_client``; ``jsonschema`` only with
``validate_blocks=True``). Caveat: slack_sdk honours ``HTTP(S)_PROXY`` env vars and ignores ``NO_PROXY``,
so unset them in tests that use the fake.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import copy
import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

__all__ = [
    "APP_TOKEN",
    "BOT_TOKEN",
    "FIXTURES_DIR",
    "SIGNING_SECRET",
    "Ack",
    "Call",
    "FakeSlack",
    "FakeSocketMode",
    "Headers",
    "HttpResult",
    "SocketConnection",
    "close_socket_mode",
    "fake_slack",
    "form_body",
    "interactive_form_body",
    "load_fixture",
    "load_form_fixture",
    "post_signed",
    "sign",
]

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "slack"

BOT_TOKEN = "xoxb-111-222-faketierwisebot"
APP_TOKEN = "xapp-1-A111-111-fakeapptoken"
SIGNING_SECRET = "fake-signing-secret-0123456789ab"

_TS_BASE_MICROS = 1_700_000_000 * 1_000_000
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


# --------------------------------------------------------------------------------------------
# Streaming chunks (chat.startStream / appendStream / stopStream `chunks`)
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# Small public helpers
# --------------------------------------------------------------------------------------------


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack request-signing headers (v0 scheme) for ``body``.

    basestring = ``v0:{timestamp}:{raw body}``, signature = ``v0=`` + hex HMAC-SHA256(secret, basestring).
    ``timestamp`` defaults to now (``int(time.time())``).
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    base = b"v0:" + str(ts).encode("ascii") + b":" + body
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def _fixture_path(relpath: str | Path) -> Path:
    path = FIXTURES_DIR / relpath
    if not path.exists() and not str(relpath).endswith(".json"):
        candidate = FIXTURES_DIR / f"{relpath}.json"
        if candidate.exists():
            return candidate
    return path


def load_fixture(relpath: str | Path) -> dict:
    """Parsed JSON of a file under tests/fixtures/slack/ (e.g. ``"events/app_mention.json"``).

    A fresh object every call, so tests may mutate it.
    """
    return json.loads(_fixture_path(relpath).read_text(encoding="utf-8"))


def load_form_fixture(relpath: str | Path) -> bytes:
    """Raw bytes of a form-encoded fixture (e.g. ``"interactivity/slash_command.form.txt"``)."""
    return _fixture_path(relpath).read_bytes()


def form_body(fields: dict[str, Any]) -> bytes:
    """``application/x-www-form-urlencoded`` body, as Slack sends slash commands."""
    return urllib.parse.urlencode({k: "" if v is None else str(v) for k, v in fields.items()}).encode()


def interactive_form_body(payload: dict) -> bytes:
    """The HTTP body Slack POSTs for interactivity: ``payload=<url-encoded compact JSON>``."""
    return urllib.parse.urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def close_socket_mode(client_or_handler: Any) -> None:
    """Close a bolt ``SocketModeHandler`` or a builtin ``slack_sdk`` ``SocketModeClient`` quickly.

    Plain ``close()`` also works but the builtin client's message thread sits in ``queue.get(timeout=1)``,
    so it takes ~1 s; this sets the client's public ``closed`` flag and wakes that queue first.
    """
    client = getattr(client_or_handler, "client", client_or_handler)
    if hasattr(client, "closed"):
        client.closed = True
    if hasattr(client, "auto_reconnect_enabled"):
        client.auto_reconnect_enabled = False
    queue = getattr(client, "message_queue", None)
    if queue is not None and hasattr(queue, "put_nowait"):
        queue.put_nowait(None)
    client_or_handler.close()


@dataclass
class HttpResult:
    """Result of :func:`post_signed`."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def post_signed(
    url: str,
    body: bytes | str | dict,
    secret: str,
    *,
    content_type: str | None = None,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> HttpResult:
    """POST a Slack-signed request to a bot's HTTP endpoint (the HTTP transport), like Slack does.

    ``body``: raw bytes/str are sent unchanged; a dict is sent as compact JSON. ``content_type`` defaults
    to ``application/json`` for dicts and bodies starting with ``{``, else form-encoded.
    ``retry_num`` / ``retry_reason`` add ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason``.
    Non-2xx responses are returned, not raised.
    """
    if isinstance(body, dict):
        raw = json.dumps(body, separators=(",", ":")).encode()
    elif isinstance(body, str):
        raw = body.encode("utf-8")
    else:
        raw = body
    if content_type is None:
        content_type = (
            "application/json" if raw.lstrip().startswith(b"{") else "application/x-www-form-urlencoded"
        )
    all_headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    all_headers.update(sign(raw, secret, timestamp))
    if retry_num is not None:
        all_headers["X-Slack-Retry-Num"] = str(retry_num)
        all_headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    if headers:
        all_headers.update(headers)
    req = urllib.request.Request(url, data=raw, headers=all_headers, method="POST")
    start = time.monotonic()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            data = resp.read()
            return HttpResult(resp.status, dict(resp.headers.items()), data, time.monotonic() - start)
    except urllib.error.HTTPError as e:
        data = e.read()
        return HttpResult(e.code, dict(e.headers.items()), data, time.monotonic() - start)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


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


@dataclass
class Ack:
    """A Socket Mode acknowledgement received from the client."""

    envelope_id: str | None
    message: dict  # the parsed ack, e.g. {"envelope_id": "...", "payload": {...}}
    received_at: float  # time.monotonic()
    sent_at: float | None  # when the fake sent that envelope (None if unknown envelope_id)
    envelope_type: str | None
    connection_id: int

    @property
    def payload(self) -> Any:
        return self.message.get("payload")

    @property
    def latency(self) -> float | None:
        """Seconds between sending the envelope and receiving its ack."""
        return None if self.sent_at is None else self.received_at - self.sent_at


@dataclass
class SocketConnection:
    """One WebSocket connection accepted by the Socket Mode server."""

    id: int
    path: str
    ticket: str | None
    headers: dict
    opened_at: float
    closed_at: float | None = None
    close_code: int | None = None
    hello_sent: bool = False
    received: list = field(default_factory=list)  # raw text frames from the client (acks included)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


@dataclass
class _Fault:
    status: int
    retry_after: float | int | None
    error: str
    remaining: int


@dataclass
class _Delay:
    seconds: float
    remaining: int | None


class _ApiError(Exception):
    def __init__(self, error: str, **extra: Any):
        super().__init__(error)
        self.error = error
        self.extra = extra


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _ts_key(ts: str) -> Decimal:
    try:
        return Decimal(str(ts))
    except InvalidOperation:
        return Decimal(0)


def _ts_to_micros(ts: str) -> int:
    return int(_ts_key(ts) * 1_000_000)


def _micros_to_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


# --------------------------------------------------------------------------------------------
# HTTP server plumbing
# --------------------------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default backlog (5) resets connections under a burst

    def __init__(self, fake: FakeSlack):
        self.fake = fake
        self._handler_threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        t = threading.Thread(
            target=self._run_request, args=(request, client_address), name="fake-slack-http", daemon=True
        )
        with self._threads_lock:
            self._handler_threads.add(t)
        t.start()

    def _run_request(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._threads_lock:
                self._handler_threads.discard(threading.current_thread())

    def join_handlers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._threads_lock:
            threads = list(self._handler_threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: no lingering keep-alive threads
    server_version = "FakeSlack/1.0"
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline().strip()
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
            fake: FakeSlack = self.server.fake  # type: ignore[attr-defined]
            status, headers, payload = fake._handle_http(
                self.command, self.path, Headers(self.headers.items()), body
            )
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass


# --------------------------------------------------------------------------------------------
# Socket Mode server
# --------------------------------------------------------------------------------------------


class FakeSocketMode:
    """The Socket Mode WebSocket server (own thread + asyncio loop). Reached as ``FakeSlack.socket``."""

    def __init__(
        self, fake: FakeSlack, ping_interval: float | None = 0.25, ping_timeout: float | None = 20.0
    ):
        self._fake = fake
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._ws_by_id: dict[int, ServerConnection] = {}
        self._ids = itertools.count(1)
        self._sent: dict[str, tuple[float, str]] = {}  # envelope_id -> (sent_at, type)
        self.port: int = 0
        self.connections: list[SocketConnection] = []
        self.acks: list[Ack] = []
        self.messages: list[dict] = []  # non-ack JSON messages from clients
        self.envelopes: list[dict] = []  # every envelope sent, in order

    # ----- lifecycle

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(started.set)
            loop.run_forever()
            # drain anything left (cancelled handler tasks etc.)
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-slack-socket-mode", daemon=True)
        self._thread.start()
        started.wait(5)

        async def serve() -> Any:
            return await websockets.serve(
                self._handler,
                "127.0.0.1",
                0,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=1,
                compression=None,
                max_size=None,
            )

        self._server = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    def _stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._loop = None
        if self._server is not None:

            async def shutdown() -> None:
                self._server.close()
                await self._server.wait_closed()

            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        with self._cond:
            self._cond.notify_all()

    # ----- server side

    async def _handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        ticket = (query.get("ticket") or [None])[0]
        conn = SocketConnection(
            id=next(self._ids),
            path=path,
            ticket=ticket,
            headers=Headers(ws.request.headers.raw_items() if ws.request is not None else []),
            opened_at=time.monotonic(),
        )
        with self._cond:
            self.connections.append(conn)
            self._ws_by_id[conn.id] = ws
            num_open = sum(1 for c in self.connections if c.is_open)
        try:
            hello = {
                "type": "hello",
                "num_connections": num_open,
                "debug_info": {
                    "host": "applink-fake-111",
                    "build_number": 10,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self._fake.app_id},
            }
            await ws.send(json.dumps(hello, separators=(",", ":")))
            with self._cond:
                conn.hello_sent = True
                self._cond.notify_all()
            async for raw in ws:
                self._on_client_message(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                conn.closed_at = time.monotonic()
                conn.close_code = ws.close_code
                self._ws_by_id.pop(conn.id, None)
                self._cond.notify_all()

    def _on_client_message(self, conn: SocketConnection, raw: str | bytes) -> None:
        now = time.monotonic()
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        with self._cond:
            conn.received.append(text)
            if isinstance(msg, dict) and "envelope_id" in msg:
                env_id = msg.get("envelope_id")
                sent = self._sent.get(env_id) if isinstance(env_id, str) else None
                self.acks.append(
                    Ack(
                        envelope_id=env_id,
                        message=msg,
                        received_at=now,
                        sent_at=sent[0] if sent else None,
                        envelope_type=sent[1] if sent else None,
                        connection_id=conn.id,
                    )
                )
            elif isinstance(msg, dict):
                self.messages.append(msg)
            self._cond.notify_all()

    # ----- test API

    @property
    def url(self) -> str:
        """Base ws:// URL of the server (apps.connections.open hands out ``<url>link/?ticket=...``)."""
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def connection_count(self) -> int:
        """Connections accepted so far (open or closed)."""
        with self._cond:
            return len(self.connections)

    @property
    def open_connections(self) -> list[SocketConnection]:
        with self._cond:
            return [c for c in self.connections if c.is_open]

    def wait_connected(self, timeout: float = 10.0, count: int = 1) -> SocketConnection:
        """Wait until ``count`` connections have been accepted in total (default 1) and the newest one
        is open and has been sent ``hello``. Returns that connection."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                newest = self._current_locked()
                if newest is not None and len(self.connections) >= count:
                    return newest
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no Socket Mode client connected within {timeout}s "
                        f"(connections so far: {len(self.connections)}, wanted {count}; "
                        f"apps.connections.open calls: {len(self._fake.calls_to('apps.connections.open'))})"
                    )
                self._cond.wait(min(remaining, 0.1))

    def wait_disconnected(self, timeout: float = 5.0) -> None:
        """Wait until no connection is open."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(c.is_open for c in self.connections):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"Socket Mode connection still open after {timeout}s")
                self._cond.wait(min(remaining, 0.1))

    def _current_locked(self) -> SocketConnection | None:
        for c in reversed(self.connections):
            if c.is_open and c.hello_sent and c.id in self._ws_by_id:
                return c
        return None

    def _send_text(self, text: str, timeout: float, connection: SocketConnection | None = None) -> int:
        if self._loop is None:
            raise RuntimeError("FakeSlack is not running")
        if connection is None:
            connection = self.wait_connected(timeout=timeout)
        with self._cond:
            ws = self._ws_by_id.get(connection.id)
        if ws is None:
            raise AssertionError(f"Socket Mode connection {connection.id} is closed")
        asyncio.run_coroutine_threadsafe(ws.send(text), self._loop).result(timeout)
        return connection.id

    def send(
        self,
        type_: str,
        payload: dict,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
        *,
        envelope_id: str | None = None,
        timeout: float = 5.0,
    ) -> str:
        """Send an envelope to the newest connected client; returns its ``envelope_id``.

        Envelope fields and order as in socket_mode/*.json: ``envelope_id``, ``payload``, ``type``,
        ``accepts_response_payload``, plus ``retry_attempt``/``retry_reason`` for ``events_api``.
        ``accepts_response_payload=None`` means Slack's rule: True for ``slash_commands`` and for
        ``interactive`` payloads of type ``view_submission`` / ``block_suggestion``, else False.
        ``envelope_id`` defaults to a new uuid4 (pass the same id to simulate a redelivery).
        Waits up to ``timeout`` for a connection if none is open yet.
        """
        if accepts_response_payload is None:
            accepts_response_payload = type_ == "slash_commands" or (
                type_ == "interactive"
                and isinstance(payload, dict)
                and payload.get("type") in ("view_submission", "block_suggestion")
            )
        env_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {
            "envelope_id": env_id,
            "payload": payload,
            "type": type_,
            "accepts_response_payload": bool(accepts_response_payload),
        }
        if type_ == "events_api":
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        self.send_raw(envelope, timeout=timeout)
        return env_id

    def send_raw(self, message: dict | str, *, timeout: float = 5.0) -> None:
        """Send any JSON message (dict) or raw text frame as is to the newest connection.

        If it carries an ``envelope_id`` its send time is recorded for ack latency.
        """
        text = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
        parsed = message if isinstance(message, dict) else None
        if parsed is None:
            with contextlib.suppress(ValueError):
                parsed = json.loads(text)
        connection = self.wait_connected(timeout=timeout)
        with self._cond:
            if isinstance(parsed, dict):
                self.envelopes.append(parsed)
                env_id = parsed.get("envelope_id")
                if isinstance(env_id, str):
                    self._sent[env_id] = (time.monotonic(), str(parsed.get("type")))
        self._send_text(text, timeout, connection)
        with self._cond:
            if isinstance(parsed, dict) and isinstance(parsed.get("envelope_id"), str):
                # refine: the moment the frame was handed to the transport
                self._sent[parsed["envelope_id"]] = (time.monotonic(), str(parsed.get("type")))

    def send_disconnect(
        self, reason: str = "refresh_requested", *, close_after: float | None = None, timeout: float = 5.0
    ) -> None:
        """Send a ``disconnect`` message (shape of socket_mode/disconnect_*.json) to the newest connection.

        ``close_after``: also close that connection (code 1000) this many seconds later, as Slack does.
        """
        msg: dict[str, Any] = {"type": "disconnect", "reason": reason}
        if reason == "too_many_websockets":
            msg["num_connections"] = len(self.open_connections)
            msg["debug_info"] = {"host": "applink-fake-111"}
            msg["connection_info"] = {"app_id": self._fake.app_id}
        else:
            msg["debug_info"] = {"host": "wss-111.slack.com"}
        connection = self.wait_connected(timeout=timeout)
        self._send_text(json.dumps(msg, separators=(",", ":")), timeout, connection)
        if close_after is not None:
            loop = self._loop

            def later() -> None:
                ws = self._ws_by_id.get(connection.id)
                if ws is not None and loop is not None:
                    loop.create_task(ws.close(1000, reason))

            if loop is not None:
                loop.call_soon_threadsafe(lambda: loop.call_later(close_after, later))

    def close_connections(self, code: int = 1000, reason: str = "") -> None:
        """Close every open connection with a close frame (the client is expected to reconnect)."""
        loop = self._loop
        if loop is None:
            return
        with self._cond:
            sockets = list(self._ws_by_id.values())

        async def close_all() -> None:
            await asyncio.gather(*(ws.close(code, reason) for ws in sockets), return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close_all(), loop).result(5)

    def drop_connections(self) -> None:
        """Abort every open connection at the TCP level (no close frame), like a network failure."""
        loop = self._loop
        if loop is None:
            return
        with self._cond:
            sockets = list(self._ws_by_id.values())
        for ws in sockets:
            loop.call_soon_threadsafe(ws.transport.abort)

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict:
        """Wait for the ack of ``envelope_id``; returns the parsed ack (``{"envelope_id", "payload"?}``)."""
        return self.wait_ack_record(envelope_id, timeout).message

    def wait_ack_record(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """Like :meth:`wait_ack` but returns the :class:`Ack` (``sent_at``, ``received_at``, ``latency``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ack in self.acks:
                    if ack.envelope_id == envelope_id:
                        return ack
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [a.envelope_id for a in self.acks]
                    raise AssertionError(
                        f"no ack for envelope {envelope_id} within {timeout}s (acks received: {seen})"
                    )
                self._cond.wait(min(remaining, 0.1))

    def acks_for(self, envelope_id: str) -> list[Ack]:
        with self._cond:
            return [a for a in self.acks if a.envelope_id == envelope_id]


# --------------------------------------------------------------------------------------------
# FakeSlack
# --------------------------------------------------------------------------------------------


class FakeSlack:
    """Fake Slack Web API + Socket Mode + response_url + file upload endpoints. See module docstring.

    ``bot_user_id`` / ``bot_id`` / ``team_id`` / ``team`` / ``app_id`` / ``bot_name``: the identity that
    auth.test returns and bot messages carry. ``valid_tokens``: if given, other tokens get ``invalid_auth``
    (by default any token is accepted; ``xapp-`` tokens only for apps.connections.open / auth.test / api.test,
    and apps.connections.open only with ``xapp-``). ``socket_ping_interval``: the Socket Mode server pings
    every N s (None = never); the default 0.25 s also wakes the builtin client's blocking ``recv()`` so that
    ``SocketModeHandler.close()`` returns in under a second instead of ~3 s. ``socket_ping_timeout``: how
    long a ping may stay unanswered before the server drops the connection. ``validate_blocks``: also
    validate message blocks / views against the Block Kit JSON Schemas in fixtures/slack/blockkit
    (needs ``jsonschema``), answering ``invalid_blocks`` / ``invalid_arguments`` like Slack.
    """

    def __init__(
        self,
        *,
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        team_id: str = "T111",
        team: str = "Fake",
        app_id: str = "A111",
        bot_name: str = "tierwise",
        valid_tokens: Iterable[str] | None = None,
        socket_ping_interval: float | None = 0.25,
        socket_ping_timeout: float | None = 20.0,
        validate_blocks: bool = False,
    ):
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.team_id = team_id
        self.team = team
        self.app_id = app_id
        self.bot_name = bot_name
        self.valid_tokens: set[str] | None = set(valid_tokens) if valid_tokens is not None else None
        self.validate_blocks = validate_blocks

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.port: int = 0
        self.socket = FakeSocketMode(
            self, ping_interval=socket_ping_interval, ping_timeout=socket_ping_timeout
        )

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
        self._faults: dict[str, collections.deque[_Fault]] = collections.defaultdict(collections.deque)
        self._delays: dict[str, _Delay] = {}
        self._used_triggers: set[str] = set()
        self._last_ts_micros = _TS_BASE_MICROS
        self._counter = itertools.count(1)
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

    # ----- lifecycle

    def start(self) -> FakeSlack:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        self.port = self._httpd.server_address[1]
        self._http_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-slack-http-server",
            daemon=True,
        )
        self._http_thread.start()
        try:
            self.socket._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers and join their threads (idempotent)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self.socket._stop()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
            httpd.join_handlers(5)
        if self._http_thread is not None:
            self._http_thread.join(5)
            self._http_thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- URLs and clients

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/`` for ``WebClient(base_url=...)``."""
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "default") -> str:
        """A response_url / incoming-webhook URL; POSTs to it are recorded as ``response_url:<name>``."""
        return f"http://127.0.0.1:{self.port}/response/{urllib.parse.quote(name, safe='')}"

    def web_client(self, token: str = BOT_TOKEN, **kwargs: Any) -> Any:
        """A real ``slack_sdk.WebClient`` pointed at this fake."""
        from slack_sdk import WebClient

        return WebClient(token=token, base_url=self.api_url, **kwargs)

    # ----- faults

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: float | int | None = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """Make the next ``times`` calls to ``method`` (``"*"`` = any method) fail.

        429 → header ``Retry-After: <retry_after>`` and ``{"ok": false, "error": "ratelimited"}``.
        Other statuses → ``{"ok": false, "error": error or "fatal_error"}``; ``status=200`` with
        ``error="channel_not_found"`` simulates a plain API error. Faults queue up in call order.
        """
        if error is None:
            error = (
                "ratelimited" if status == 429 else ("fatal_error" if status >= 500 else "invalid_request")
            )
        with self._lock:
            self._faults[method].append(_Fault(status, retry_after, error, times))

    def delay(self, method: str, seconds: float, times: int | None = None) -> None:
        """Delay responses to ``method`` (``"*"`` = any) by ``seconds`` (for ``times`` calls; None = until
        cleared). ``seconds=0`` removes the delay."""
        with self._lock:
            if seconds <= 0:
                self._delays.pop(method, None)
            else:
                self._delays[method] = _Delay(seconds, times)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._delays.clear()

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for key in (method, "*"):
                queue = self._faults.get(key)
                if queue:
                    fault = queue[0]
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.popleft()
                    return fault
        return None

    def _take_delay(self, method: str) -> float:
        with self._lock:
            for key in (method, "*"):
                d = self._delays.get(key)
                if d is not None:
                    if d.remaining is not None:
                        d.remaining -= 1
                        if d.remaining <= 0:
                            self._delays.pop(key, None)
                    return d.seconds
        return 0.0

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

    # ----- message store

    def _next_ts_locked(self) -> str:
        self._last_ts_micros += 100
        return _micros_to_ts(self._last_ts_micros)

    def _bump_ts_locked(self, ts: str) -> None:
        micros = _ts_to_micros(ts)
        if micros > self._last_ts_micros:
            self._last_ts_micros = micros

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter):08X}"

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
                parent["latest_reply"] = max((m["ts"] for m in replies), key=_ts_key)
        self._cond.notify_all()

    def messages(self, channel: str) -> list[dict]:
        """Every stored message of ``channel`` (thread replies included), oldest first (deep copies)."""
        with self._lock:
            return copy.deepcopy(
                sorted(self._messages.get(channel, {}).values(), key=lambda m: _ts_key(m["ts"]))
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
            return sorted(out, key=lambda m: _ts_key(m["ts"]))

    def wait_for_message(
        self, channel: str, predicate: Callable[[dict], bool] = lambda m: True, timeout: float = 5.0
    ) -> dict:
        """Wait until the store of ``channel`` holds a message matching ``predicate``; returns a copy."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in sorted(self._messages.get(channel, {}).values(), key=lambda m: _ts_key(m["ts"])):
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
        return sorted(out, key=lambda m: _ts_key(m["ts"]))

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

    # ----- HTTP dispatch

    def _handle_http(
        self, verb: str, raw_path: str, headers: Headers, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        at = time.monotonic()
        parts = urllib.parse.urlsplit(raw_path)
        path = parts.path
        params: dict[str, Any] = {}
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            params[k] = v

        if path.startswith("/upload/"):
            return self._handle_upload(path[len("/upload/") :], params, headers, body, at)

        params.update(self._parse_body(headers, body))
        if path.startswith("/api/"):
            method = path[len("/api/") :].strip("/")
            kind = "api"
        elif path.startswith("/response/"):
            method = "response_url:" + urllib.parse.unquote(path[len("/response/") :])
            kind = "response"
        else:
            return 404, {"Content-Type": "text/plain"}, b"Not Found"

        delay = self._take_delay(method)
        if delay > 0:
            self._stopping.wait(delay)

        call = Call(method=method, params=params, headers=headers, at=at, status=200, body=body)
        resp_headers = {"Content-Type": "application/json; charset=utf-8", "X-Slack-Req-Id": uuid.uuid4().hex}
        fault = self._take_fault(method)
        if fault is not None:
            call.status = fault.status
            call.response = {"ok": False, "error": fault.error}
            if fault.status == 429 and fault.retry_after is not None:
                resp_headers["Retry-After"] = str(fault.retry_after)
        elif kind == "response":
            call.response = {"ok": True}
        else:
            call.response = self._api(method, call)
        self._record(call)
        return call.status, resp_headers, json.dumps(call.response).encode("utf-8")

    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    @staticmethod
    def _parse_body(headers: Headers, body: bytes) -> dict[str, Any]:
        if not body:
            return {}
        ctype = (headers.get("content-type") or "").lower()
        if "application/json" in ctype or (not ctype and body.lstrip().startswith(b"{")):
            try:
                data = json.loads(body)
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {"_json": data}
        if ctype.startswith("multipart/form-data"):
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + headers["content-type"].encode("latin-1") + b"\r\n\r\n" + body
            )
            out: dict[str, Any] = {}
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if not name:
                    continue
                payload = part.get_payload(decode=True) or b""
                if part.get_filename() is not None:
                    out[name] = payload
                else:
                    out[name] = payload.decode(part.get_content_charset() or "utf-8", "replace")
            return out
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return {}
        return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))

    def _handle_upload(
        self, file_id: str, params: dict, headers: Headers, body: bytes, at: float
    ) -> tuple[int, dict[str, str], bytes]:
        method = f"upload:{file_id}"
        delay = self._take_delay(method) or self._take_delay("upload")
        if delay > 0:
            self._stopping.wait(delay)
        call = Call(method=method, params=params, headers=headers, at=at, status=200, body=body)
        fault = self._take_fault(method) or self._take_fault("upload")
        text_headers = {"Content-Type": "text/plain; charset=utf-8"}
        if fault is not None:
            call.status = fault.status
            payload = f"Error {fault.status}"
        else:
            with self._lock:
                known = file_id in self.files
                if known:
                    self.uploads[file_id] = body
                    self.files[file_id]["size"] = len(body)
            if known:
                payload = f"OK - {len(body)}"
            else:
                call.status = 404
                payload = "file_not_found"
        self._record(call)
        return call.status, text_headers, payload.encode()

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

    def _chat_update(self, call: Call) -> dict:
        p = call.params
        channel = self._channel_param(call)
        ts = p.get("ts")
        msg = self._messages.get(channel, {}).get(ts) if ts else None
        if msg is None:
            raise _ApiError("message_not_found")
        if msg.get("user") != self.bot_user_id:
            raise _ApiError("cant_update_message")
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

    def stop_stream_by_user(self, channel: str, ts: str) -> None:
        """The user pressed stop on a streaming message: appends now fail with ``stopped_by_user``."""
        with self._cond:
            self._streaming.discard((channel, ts))
            self._stopped_by_user.add((channel, ts))
            self._cond.notify_all()

    def is_streaming(self, channel: str, ts: str) -> bool:
        with self._lock:
            return (channel, ts) in self._streaming

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
            k = _ts_key(m["ts"])
            if oldest and (k < _ts_key(oldest) or (k == _ts_key(oldest) and not inclusive)):
                continue
            if latest and (k > _ts_key(latest) or (k == _ts_key(latest) and not inclusive)):
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
        top.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)
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


# --------------------------------------------------------------------------------------------
# pytest fixture (register with `pytest_plugins = ["tests.fakes.fake_slack"]` in a conftest.py)
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A started :class:`FakeSlack`, stopped after the test."""
    with FakeSlack() as slack:
        yield slack
