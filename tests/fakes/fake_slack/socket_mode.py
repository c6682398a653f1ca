"""Socket Mode: the WebSocket server the bot's ``SocketModeHandler`` connects to (``hello``), the envelopes
it sends (``events_api``, ``interactive``, ``slash_commands``, ``disconnect``) and the acks it records."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import websockets
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.fakes.fake_slack.state import Headers

if TYPE_CHECKING:
    from tests.fakes.fake_slack.state import SlackState


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


class FakeSocketMode:
    """The Socket Mode WebSocket server (own thread + asyncio loop). Reached as ``FakeSlack.socket``."""

    def __init__(
        self, fake: SlackState, ping_interval: float | None = 0.25, ping_timeout: float | None = 20.0
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
