"""FakeSlack: the HTTP server (Web API, response_url, file uploads) and the Socket Mode server on 127.0.0.1,
fault injection (error statuses, rate limits, delays), and the ``fake_slack`` pytest fixture."""

from __future__ import annotations

import collections
import email.parser
import email.policy
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.fakes.fake_slack.fixtures import BOT_TOKEN
from tests.fakes.fake_slack.socket_mode import FakeSocketMode
from tests.fakes.fake_slack.state import Call, Headers
from tests.fakes.fake_slack.web_api import WebApi


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


class FakeSlack(WebApi):
    """Fake Slack Web API + Socket Mode + response_url + file upload endpoints. See the package docstring.

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
        super().__init__(
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            team_id=team_id,
            team=team,
            app_id=app_id,
            bot_name=bot_name,
            valid_tokens=valid_tokens,
            validate_blocks=validate_blocks,
        )
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.port: int = 0
        self.socket = FakeSocketMode(
            self, ping_interval=socket_ping_interval, ping_timeout=socket_ping_timeout
        )
        self._faults: dict[str, collections.deque[_Fault]] = collections.defaultdict(collections.deque)
        self._delays: dict[str, _Delay] = {}

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


# pytest fixture (register with `pytest_plugins = ["tests.fakes.fake_slack"]` in a conftest.py)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A started :class:`FakeSlack`, stopped after the test."""
    with FakeSlack() as slack:
        yield slack
