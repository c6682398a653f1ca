"""What the Slack benchmarks share: the fakes, each in a process of its own, and the bot's HTTP server.

The benchmarks measure the bot. The fake model server and the fake Slack run in child processes, as
a real model server and Slack would be elsewhere, so their CPU is not taken under the bot's GIL;
their timings (`time.monotonic()`, the same clock in every process) are read back from them.

    from bench._harness import ModelServer, SlackServer, serve_bot, mention_body, percentile
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.fake_slack import BOT_TOKEN, SIGNING_SECRET, Call, FakeSlack, post_signed  # noqa: E402

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.observability.metrics import Metrics

__all__ = [
    "BOT_TOKEN",
    "SIGNING_SECRET",
    "ModelServer",
    "SlackServer",
    "epoch",
    "mention_body",
    "percentile",
    "post_signed",
    "serve_bot",
]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def epoch() -> datetime:
    """Before any ledger row: `requests_since(epoch())` is every row."""
    return datetime(2000, 1, 1, tzinfo=UTC)


def mention_body(event_id: str, channel: str, ts: str, text: str) -> dict[str, Any]:
    """An `app_mention` event callback, as Slack POSTs it."""
    event = {"type": "app_mention", "user": "UBENCH", "text": f"<@UBOT> {text}", "ts": ts, "channel": channel}
    return {
        "token": "verification-token",
        "team_id": "T111",
        "api_app_id": "A111",
        "event": {**event, "event_ts": ts},
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(ts)),
    }


class ModelServer:
    """The fake OpenAI-compatible server, streaming `text` at a fixed rate, in a child process."""

    def __init__(self, text: str, interval: float, chunk_chars: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.fake_openai", text, str(interval), str(chunk_chars)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.requests: list[dict[str, Any]] = []
        self.first_chunk_at: dict[int, float] = {}
        self.last_chunk_at: dict[int, float] = {}

    def refresh(self) -> None:
        """Read the requests and chunk times back from the server."""
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as response:
            stats = json.loads(response.read())
        self.requests = stats["requests"]
        self.first_chunk_at = {int(k): v for k, v in stats["first_chunk_at"].items()}
        self.last_chunk_at = {int(k): v for k, v in stats["last_chunk_at"].items()}

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _serve_slack(conn: Connection) -> None:
    """The child process: a FakeSlack driven over a pipe (add a message, read the calls, stop)."""
    with FakeSlack() as slack:
        conn.send(slack.api_url)
        while True:
            command, args = conn.recv()
            if command == "stop":
                conn.send((True, None))
                return
            try:
                value = slack.add_message(*args) if command == "add_message" else list(slack.calls)
                conn.send((True, value))
            except Exception as exc:  # reported in the parent, which asked
                conn.send((False, repr(exc)))


class SlackServer:
    """The fake Slack in a child process, with the part of FakeSlack's interface the benchmarks use."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the bot's
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_serve_slack, args=(child,), daemon=True)
        self.process.start()
        self.api_url: str = self._conn.recv()
        self._lock = threading.Lock()

    def _ask(self, command: str, *args: Any) -> Any:
        with self._lock:
            self._conn.send((command, args))
            ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"fake Slack: {command} failed: {value}")
        return value

    def add_message(self, channel: str, text: str, user: str) -> str:
        """A user's message in a channel; its ts."""
        return str(self._ask("add_message", channel, text, user))

    @property
    def calls(self) -> list[Call]:
        """Every Web API call so far (a copy, with the times the fake recorded)."""
        return list(self._ask("calls"))

    def close(self) -> None:
        if self.process.is_alive():
            self._ask("stop")
        self.process.join(10)

    def __enter__(self) -> SlackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def serve_bot(app: App, metrics: Metrics | None = None) -> Iterator[str]:
    """The bot's HTTP server on 127.0.0.1 (as `tierwise serve` runs it); yields its base URL."""
    from bot.adapters.slack.server import make_http_server

    server = make_http_server(app, "127.0.0.1", 0, metrics)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
