"""Signed but malformed payloads, over HTTP and Socket Mode: every one answered (2xx/4xx), no
traceback in the log, the server alive and its memory flat. Seeded and bounded; loopback only.

The mutations start from the real samples in tests/fixtures/slack: a field set to a value of the
wrong type, a field removed, the JSON truncated, the body replaced by random bytes, or a payload
that is not an object at all.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_slack import (
    APP_TOKEN,
    FIXTURES_DIR,
    SIGNING_SECRET,
    FakeSlack,
    close_socket_mode,
    post_signed,
)
from tests.slack_helpers import BotEnv, slack_fixture, start_bot  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(240)

SEED = 1313
HTTP_PAYLOADS = 400
SOCKET_PAYLOADS = 120
WRONG_VALUES: list[Any] = [
    [],
    ["x", 1],
    {},
    {"id": ["U1"]},
    0,
    -1,
    3.5,
    True,
    None,
    "",
    "x" * 5000,
    "\x00\ud7ff",
    [[[]]],
]


def _samples() -> list[tuple[str, Any]]:
    """(kind, payload): kind is 'json' (an Events API body), 'form' (a slash command) or 'interactive'."""
    out: list[tuple[str, Any]] = []
    for path in sorted((FIXTURES_DIR / "events").glob("*.json")):
        out.append(("json", json.loads(path.read_text())))
    for path in sorted((FIXTURES_DIR / "interactivity").glob("*.json")):
        body = json.loads(path.read_text())
        out.append(("form" if "command" in body else "interactive", body))
    return out


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            yield (*prefix, index)
            yield from _paths(value, (*prefix, index))


def _set(node: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> None:
    for step in path[:-1]:
        node = node[step]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


def _mutate(rng: random.Random, kind: str, sample: Any, n: int) -> tuple[bytes, str]:
    """One mutated body and its content type."""
    payload = copy.deepcopy(sample)
    if kind == "json" and isinstance(payload, dict):
        payload["event_id"] = f"EvFZ{n:05d}"  # distinct deliveries, not redeliveries
    if kind != "form" and isinstance(payload, dict) and "trigger_id" in payload:
        payload["trigger_id"] = f"trig-fz-{n}"
    how = rng.choice(["wrong_type", "wrong_type", "wrong_type", "remove", "truncate", "bytes", "not_object"])
    paths = list(_paths(payload))
    if how in ("wrong_type", "remove") and paths:
        path = rng.choice(paths)
        _set(payload, path, rng.choice(WRONG_VALUES), delete=how == "remove" and isinstance(path[-1], str))
    if how == "not_object":
        payload = rng.choice([[payload], 42, "text", None])
    if kind == "form" and isinstance(payload, dict):
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}
        raw = urllib.parse.urlencode(fields).encode()
        content_type = "application/x-www-form-urlencoded"
    elif kind == "interactive":
        raw = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        content_type = "application/x-www-form-urlencoded"
    else:
        raw = json.dumps(payload).encode()
        content_type = "application/json"
    if how == "truncate":
        raw = raw[: rng.randrange(1, max(2, len(raw)))]
    elif how == "bytes":
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
    return raw, content_type


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()[:200]}"
        for r in caplog.records
        if r.exc_info or "Traceback" in r.getMessage()
    ]


def test_http_answers_every_signed_mutation(
    slack: FakeSlack, make_engine: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    env: BotEnv = start_bot(slack, make_engine, tmp_path, "http")
    rng = random.Random(SEED)
    samples = _samples()
    statuses: dict[int, int] = {}
    rss: list[int] = []
    try:
        for n in range(HTTP_PAYLOADS):
            kind, sample = rng.choice(samples)
            raw, content_type = _mutate(rng, kind, sample, n)
            result = post_signed(env.url, raw, SIGNING_SECRET, content_type=content_type)
            assert 200 <= result.status < 500, (n, result.status, raw[:300])
            statuses[result.status] = statuses.get(result.status, 0) + 1
            if n in (HTTP_PAYLOADS // 4, HTTP_PAYLOADS - 1):
                env.settle(60)
                rss.append(_rss_kib())
        env.settle(60)
        # Still alive and answering real work.
        assert (
            post_signed(env.url, {"type": "url_verification", "challenge": "c"}, SIGNING_SECRET).status == 200
        )
    finally:
        env.stop()
    assert statuses.get(400, 0) > HTTP_PAYLOADS // 10  # the mutations did reach the shape checks
    assert _tracebacks(caplog) == []
    assert rss[1] - rss[0] < 40 * 1024, f"memory grew from {rss[0]} to {rss[1]} KiB"
    print(f"\nHTTP statuses over {HTTP_PAYLOADS} signed mutations: {dict(sorted(statuses.items()))}")


def test_socket_mode_acknowledges_every_mutation(
    slack: FakeSlack, make_engine: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.adapters.slack.server import TierwiseSocketModeHandler

    caplog.set_level(logging.INFO)
    env: BotEnv = start_bot(slack, make_engine, tmp_path, "http")  # the app; its HTTP side is unused
    handler = TierwiseSocketModeHandler(env.app, APP_TOKEN)
    handler.connect()
    slack.socket.wait_connected()
    rng = random.Random(SEED + 1)
    samples = _samples()
    envelopes = {"json": "events_api", "interactive": "interactive", "form": "slash_commands"}
    try:
        for n in range(SOCKET_PAYLOADS):
            kind, sample = rng.choice(samples)
            raw, _ = _mutate(rng, "json", sample, 10_000 + n)
            try:
                payload = json.loads(raw)
            except ValueError:  # Socket Mode frames are JSON; a broken one never reaches the app
                continue
            env_id = slack.socket.send(envelopes[kind], payload)
            slack.socket.wait_ack_record(env_id, timeout=10)
        env.settle(60)
    finally:
        close_socket_mode(handler)
        env.stop()
    assert _tracebacks(caplog) == []
