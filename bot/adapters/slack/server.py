"""`tierwise serve`: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on /slack/events (+ GET /healthz,
GET /metrics for Prometheus; `metrics.port` adds a separate metrics listener, the one Socket Mode needs).

The HTTP server is bolt's development server made fit for production use: one thread per request
(a slow request never blocks an ack), a cap on body size, socket timeouts against idle clients,
access logs through `logging` (never stderr), and a graceful stop on SIGTERM/SIGINT that lets
answers in progress finish.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import logging
import signal
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_bolt.request import BoltRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.adapters.slack import payloads
from bot.adapters.slack.app import WORKERS, build_app
from bot.config import ConfigError

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.config import MetricsSettings
    from bot.observability.metrics import Metrics
    from bot.pipeline.engine import Engine

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
SIGNATURE_MAX_AGE_S = 300  # as Slack's own verifier: older signatures are replays
MAX_BODY_BYTES = 1_000_000  # Slack payloads are far smaller; a bigger body is not from Slack
WARM_UP_JOIN_S = 60.0  # the warm-up imports litellm and the OpenAI SDK: seconds, more on a busy machine


class SlackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # bursts of events arrive together

    def __init__(
        self, app: App, host: str, port: int, path: str = EVENTS_PATH, metrics: Metrics | None = None
    ) -> None:
        self.app = app
        self.path = path
        self.metrics = metrics
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: SlackHTTPServer
    protocol_version = "HTTP/1.1"  # keep-alive: Slack reuses connections
    server_version = "Tierwise"
    sys_version = ""
    timeout = 30  # an idle or stalled client cannot hold a thread forever

    def do_GET(self) -> None:
        if self.path.partition("?")[0] == HEALTH_PATH:
            self._send(200, {"content-type": ["application/json"]}, json.dumps({"ok": True}))
        elif self.path.partition("?")[0] == METRICS_PATH and self.server.metrics is not None:
            from bot.observability.metrics import CONTENT_TYPE

            body = self.server.metrics.exposition().decode("utf-8")
            self._send(200, {"content-type": [CONTENT_TYPE]}, body)
        else:
            self._send(404, {}, "")

    def do_POST(self) -> None:
        path, _, query = self.path.partition("?")
        if path != self.server.path:
            self._send(404, {}, "")
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._send(411, {}, "")
            return
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, {}, "")
            return
        raw = self.rfile.read(int(length))
        body = raw.decode("utf-8", "replace")
        headers: dict[str, str | Sequence[str]] = {
            key.lower(): self.headers.get_all(key) or [] for key in self.headers
        }
        try:
            raw.decode("utf-8")
            wrong = payloads.problem(payloads.parse(body, self.headers.get("Content-Type")))
        except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            wrong = "the body is neither JSON nor form data in UTF-8"
        if wrong is not None:
            # Unsigned junk gets bolt's answer (401); signed junk is a bad request, said in one line.
            if not self._signed(raw):
                self._send(401, {}, "")
                return
            log.warning("rejected a malformed Slack request (400): %s", wrong[:300])
            self._send(400, {}, "")
            return
        try:
            response = self.server.app.dispatch(BoltRequest(body=body, query=query, headers=headers))
        except Exception as exc:  # never a dropped connection: the caller gets an answer
            log.error("could not handle a Slack request (400): %s: %s", type(exc).__name__, str(exc)[:200])
            self._send(400, {}, "")
            return
        self._send(response.status, response.headers, response.body)

    def _signed(self, body: bytes) -> bool:
        """Slack's v0 signature over the raw bytes (slack_sdk's verifier needs UTF-8 text)."""
        secret = getattr(self.server.app, "_signing_secret", "")
        stamp = self.headers.get("X-Slack-Request-Timestamp") or ""
        given = self.headers.get("X-Slack-Signature") or ""
        if not secret or not stamp.isdigit() or abs(time.time() - int(stamp)) > SIGNATURE_MAX_AGE_S:
            return False
        mac = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
        return hmac.compare_digest(f"v0={mac.hexdigest()}", given)

    def _send(self, status: int, headers: dict[str, Any], body: str | dict[str, Any] | None) -> None:
        payload = (body if isinstance(body, str) else json.dumps(body) if body else "").encode("utf-8")
        self.send_response(status)
        for key, values in headers.items():
            if key.lower() == "content-length":
                continue
            for value in values if isinstance(values, list | tuple) else [values]:
                self.send_header(key, str(value))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class TierwiseSocketModeHandler(SocketModeHandler):
    """Bolt's Socket Mode handler, plus the shape check: a malformed envelope is acknowledged (so
    Slack does not resend it) and dropped with one log line, never a traceback."""

    def __init__(self, app: App, app_token: str, **kwargs: Any) -> None:
        super().__init__(app, app_token, **kwargs)
        # Runs before slack_sdk builds its request object, which raises on a non-object payload.
        self.client.message_listeners.insert(0, self._guard)

    def _guard(self, connection: Any, message: dict[str, Any], _raw: str | None) -> None:
        if "envelope_id" in message and "payload" in message and not isinstance(message["payload"], dict):
            kind = type(message.pop("payload")).__name__  # popped: slack_sdk then skips the envelope
            log.warning(
                "dropped a malformed Socket Mode envelope %s: payload must be an object, not %s",
                message["envelope_id"],
                kind,
            )
            connection.send_socket_mode_response(SocketModeResponse(envelope_id=str(message["envelope_id"])))

    def handle(self, connection: Any, req: Any) -> None:  # type: ignore[override]
        start = time.time()
        wrong = payloads.problem(req.payload)
        if wrong is None:
            try:
                response = run_bolt_app(self.app, req)
            except Exception as exc:
                wrong = f"{type(exc).__name__}: {str(exc)[:200]}"
            else:
                if response.status == 200:
                    send_response(connection, req, response, start)
                    return
                # No listener (404) or a refused request: acknowledged all the same, or Slack resends it.
                log.info("envelope %s not handled (bolt status %s)", req.envelope_id, response.status)
        if wrong is not None:
            log.warning("dropped a malformed Socket Mode envelope %s: %s", req.envelope_id, wrong[:300])
        try:
            connection.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        except Exception as exc:
            log.warning("could not acknowledge envelope %s: %s", req.envelope_id, type(exc).__name__)


def make_http_server(
    app: App, host: str = "0.0.0.0", port: int = 3000, metrics: Metrics | None = None
) -> SlackHTTPServer:
    """A bound, not yet serving, HTTP server for `app` (port 0 picks a free port; see `.port`)."""
    return SlackHTTPServer(app, host, port, metrics=metrics)


def serve(engine: Engine, host: str = "0.0.0.0", port: int = 3000) -> None:
    """Run until SIGTERM/SIGINT. Socket Mode if SLACK_APP_TOKEN is set, else HTTP on host:port."""
    settings = engine.settings
    if settings.slack_bot_token is None:
        raise ConfigError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
    socket_mode = settings.slack_app_token is not None
    if not socket_mode and settings.slack_signing_secret is None:
        raise ConfigError("SLACK_SIGNING_SECRET is not set (needed in HTTP mode; or set SLACK_APP_TOKEN)")
    from bot.observability import metrics as metrics_mod
    from bot.observability import tracing

    tracing.configure(settings)
    metrics = metrics_mod.attach(engine.ledger)
    executor = metrics_mod.TrackedExecutor(max_workers=WORKERS, thread_name_prefix="tierwise-slack")
    metrics.register_queue("slack", executor.depth, executor.oldest_age)
    metrics_server = start_metrics_listener(settings.metrics, metrics)
    app = build_app(engine, executor=executor)
    work = app.tierwise.work  # type: ignore[attr-defined]
    metrics.register_queue("work", work.queue.open_count, work.queue.oldest_open_age)  # durable work
    work.start()  # heartbeat; take over the work of replicas that died (this one's predecessor too)
    scheduler = _start_admin_jobs(engine, app.client)
    warming = threading.Thread(target=warm_up, name="tierwise-warm-up", daemon=True)
    warming.start()
    stop = threading.Event()
    try:
        if socket_mode:
            _run_socket_mode(app, settings.slack_app_token.get_secret_value(), stop)  # type: ignore[union-attr]
        else:
            _run_http(app, host, port, stop, metrics if settings.metrics.enabled else None)
    finally:
        log.info("waiting for answers in progress")
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        executor.shutdown(wait=True)
        if metrics_server is not None:
            metrics_server.shutdown()
        tracing.shutdown()
        work.stop()  # after the drain: nothing of ours is left open
        # A stop soon after the start: let the warm-up's imports end first. A daemon thread frozen at
        # exit in the middle of an import keeps that module's lock, and a finaliser that imports (one
        # of litellm's does) then waits for it for ever.
        warming.join(WARM_UP_JOIN_S)


def start_metrics_listener(conf: MetricsSettings, metrics: Metrics) -> Any:
    """The separate /metrics listener when `metrics.port` is set; a taken port stops the start."""
    if conf.port is None or not conf.enabled:
        return None
    from bot.observability.metrics import serve_metrics

    try:
        server = serve_metrics(metrics, conf.host, conf.port)
    except OSError as exc:
        raise ConfigError(
            f"metrics.port = {conf.port}: cannot listen on {conf.host}:{conf.port} ({exc.strerror or exc})"
        ) from exc
    log.info("Prometheus metrics on http://%s:%s%s", conf.host, conf.port, METRICS_PATH)
    return server


def _start_admin_jobs(engine: Engine, client: Any) -> Any:
    """The weekly digest job and budget alerts go to the admin channel; without one, they only log."""
    from bot.economics.budgets import Budgets
    from bot.economics.context import EconomicsContext
    from bot.economics.scheduler import start_scheduler

    economics = EconomicsContext.of(engine)
    channel = engine.settings.admin_channel
    if not channel:
        log.warning("TIERWISE_ADMIN_CHANNEL is not set: weekly digests are built but not posted")
        return start_scheduler(economics, None)

    def alert(text: str) -> None:
        try:
            client.chat_postMessage(channel=channel, text=text)
        except Exception as exc:  # an alert that cannot be posted must not fail the user's request
            log.warning("budget alert not posted to %s: %s (%s)", channel, text, exc)

    if isinstance(engine.budget, Budgets):
        engine.budget.notify = alert

    def post(d: Any) -> dict[str, Any]:
        from bot.adapters.slack.digest import post_digest

        return post_digest(client, channel, d)

    scheduler = start_scheduler(economics, post)
    job = scheduler.get_job("tierwise-weekly-digest")
    log.info(
        "weekly digest scheduled (%s, %s); next: %s",
        engine.settings.digest_cron,
        engine.settings.timezone,
        job.next_run_time if job else "?",
    )
    return scheduler


def _run_socket_mode(app: App, app_token: str, stop: threading.Event) -> None:
    handler = TierwiseSocketModeHandler(app, app_token)
    _on_signals(stop.set)
    handler.connect()
    log.info("Tierwise is connected to Slack (Socket Mode)")
    try:
        stop.wait()
    finally:
        handler.close()


def _run_http(app: App, host: str, port: int, stop: threading.Event, metrics: Metrics | None = None) -> None:
    server = make_http_server(app, host, port, metrics)
    # shutdown() waits for serve_forever() to return, so it must run outside the signal handler's thread.
    _on_signals(lambda: threading.Thread(target=server.shutdown, daemon=True).start())
    log.info("Tierwise listens on http://%s:%s%s (health: %s)", host, server.port, EVENTS_PATH, HEALTH_PATH)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        stop.set()
        server.server_close()


def _on_signals(callback: Any) -> None:
    def handle(signum: int, _frame: Any) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        callback()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)


def warm_up() -> None:
    """Import litellm and the model SDK in the background, so the first answer does not pay for it;
    then settle the heap."""
    try:
        from bot.models.llm import warm_up_models

        warm_up_models()
    except Exception:  # the first request will report the real problem
        log.debug("warm-up failed", exc_info=True)
    settle_heap()


def settle_heap() -> None:
    """Collect once, then move every object left (litellm's price map, SQLAlchemy's metadata, the
    packs: millions of objects that live as long as the process) out of the collector's reach
    (`gc.freeze`). Otherwise each full collection walks them all with the GIL held (~0.6 s measured
    in bench/bench_slack_stream.py), stalling every answer in flight at once. Objects made later are
    collected as usual; the one collection here is paid at start, not during an answer."""
    gc.collect()
    gc.freeze()
