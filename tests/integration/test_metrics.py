"""Prometheus metrics: `/metrics` on the HTTP server scraped and parsed with the official text parser;
the figures equal what the ledger recorded; the Socket Mode listener and a taken port."""

from __future__ import annotations

import json
import random
import socket
import threading
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from bot.adapters.slack.server import serve, start_metrics_listener
from bot.config import ConfigError
from bot.core.types import Request
from bot.economics.context import EconomicsContext
from bot.economics.shadow import Shadow
from bot.ledger.models import RequestRow
from bot.observability.metrics import Metrics, TrackedExecutor, attach
from bot.pipeline.engine import Engine
from tests.fakes.fake_slack import APP_TOKEN, BOT_TOKEN
from tests.ledger_builder import CALL_COST, dyadic_tiers
from tests.paths import ROOT
from tests.slack_helpers import (
    ADMIN,
    USER,
    BotEnv,
    event_body,
    mention,
    slack_fixture,  # noqa: F401 (fixture)
    slash,
    start_bot,
)

pytestmark = pytest.mark.timeout(120)

LABEL = {"category": "vendor-invoice", "priority": "normal", "team": "finance-ap", "reason": "an invoice"}
FAMILIES = {
    "tierwise_requests",
    "tierwise_request_errors",
    "tierwise_escalations",
    "tierwise_refusals",
    "tierwise_request_duration_seconds",
    "tierwise_time_to_first_token_seconds",
    "tierwise_tokens",
    "tierwise_cost_usd",
    "tierwise_shadow_cost_usd",
    "tierwise_feedback",
    "tierwise_work_queue_depth",
    "tierwise_work_queue_oldest_age_seconds",
}


def scrape(url: str) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = response.read().decode("utf-8")
    return {family.name: family for family in text_string_to_metric_families(body)}


def value(families: dict[str, Any], sample_name: str, **labels: str) -> float:
    family = families[sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")]
    matches = [
        s.value
        for s in family.samples
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(matches)


@pytest.fixture
def metered(slack: Any, make_engine: Any, script: Any, tmp_path: Any) -> Any:
    env = start_bot(
        slack,
        make_engine,
        tmp_path,
        "http",
        tiers=dyadic_tiers(),
        skills={
            "ask": {"tier": "small", "shadow_rate": 1.0, "shadow_direction": "up"},
            "label-email": {"tier": "medium"},
            "summarize": {"tier": "small", "channels": ["C-only"]},
        },
    )
    env.server.metrics = attach(env.engine.ledger)
    engine: Engine = env.engine
    engine.after_reply.remove(engine.shadow)
    engine.shadow = Shadow(EconomicsContext.of(engine), engine, rng=random.Random(0), background=False)
    engine.after_reply.append(engine.shadow)
    yield env
    env.stop()


def test_metrics_endpoint_counts_what_the_ledger_recorded(metered: BotEnv, script: Any) -> None:
    engine: Engine = metered.engine
    base = metered.url.removesuffix("/slack/events")
    script.default = "Open the VPN portal."
    script.on("large", "candidate is worse")  # the judge of the ask shadow pair (no JSON: an error verdict)

    # One answer through Slack end to end, one from the CLI path, both on ask/small (each shadowed on medium).
    metered.event(event_body(mention("how do I get VPN access?", "1700000001.000100"), metered.next_id()))
    metered.settle()
    reply = engine.handle(Request(text="where is the wifi password?", skill="ask", user="U1", channel="C1"))
    assert reply.ok
    engine.rate(reply.request_id, "U1", 1)
    engine.rate(reply.request_id, "U2", -1)
    engine.rate(reply.request_id, "U2", -1)  # the same rating again: not a new one
    # An invalid answer on medium, escalated to large.
    script.on("medium", "not json")
    script.on("large", json.dumps(LABEL))
    assert engine.handle(
        Request(text="From: ap@vendor.example\nPay invoice 1", skill="label-email")
    ).escalated
    # A refusal (channel allow-list) and a model error.
    assert engine.handle(Request(text="summarise this", skill="summarize", channel="C2")).status == "refused"
    script.on("small", RuntimeError("provider exploded"))
    assert engine.handle(Request(text="hello", skill="ask")).status == "error"

    families = scrape(f"{base}/metrics")
    assert set(families) >= FAMILIES
    assert families["tierwise_requests"].type == "counter"
    assert families["tierwise_request_duration_seconds"].type == "histogram"

    ok_ask = value(
        families, "tierwise_requests_total", skill="ask", tier="small", purpose="user", status="ok"
    )
    assert ok_ask == 2
    assert value(families, "tierwise_requests_total", skill="ask", purpose="shadow", status="ok") == 2
    assert value(families, "tierwise_requests_total", skill="ask", tier="small", status="error") == 1
    assert value(families, "tierwise_request_errors_total", skill="ask", tier="small", purpose="user") == 1
    assert value(families, "tierwise_request_errors_total", skill="label-email", tier="medium") == 1
    assert value(families, "tierwise_escalations_total", skill="label-email", tier="large") == 1
    assert value(families, "tierwise_refusals_total", skill="summarize") == 1
    assert value(families, "tierwise_feedback_total", score="up") == 1
    assert value(families, "tierwise_feedback_total", score="down") == 1
    # Token counts are the ledger's (a streamed answer's usage is counted by litellm, not mocked).
    with engine.ledger.session() as s:
        ask_rows = [
            r
            for r in s.exec(select(RequestRow).where(RequestRow.skill == "ask", RequestRow.purpose == "user"))
            if r.tier == "small"
        ]
    assert sum(1 for r in ask_rows if r.status == "ok") == 2
    assert (
        value(families, "tierwise_tokens_total", skill="ask", tier="small", purpose="user", direction="input")
        == sum(r.prompt_tokens for r in ask_rows)
        > 0
    )
    assert value(
        families, "tierwise_tokens_total", skill="ask", tier="small", purpose="user", direction="output"
    ) == sum(r.completion_tokens for r in ask_rows)
    assert value(families, "tierwise_cost_usd_total", skill="ask", tier="small", purpose="user") == sum(
        r.cost_usd for r in ask_rows
    )
    assert value(families, "tierwise_cost_usd_total", skill="label-email", tier="large") == CALL_COST["large"]
    shadow_spend = 2 * CALL_COST["medium"] + 2 * CALL_COST["large"]  # two candidates, two judge calls
    assert value(families, "tierwise_shadow_cost_usd_total", skill="ask") == shadow_spend
    # Every recorded model call is one latency observation.
    assert (
        value(families, "tierwise_request_duration_seconds_count", skill="ask", tier="small", purpose="user")
        == 3
    )
    # The figures match the ledger's own.
    usage = {u.skill: u for u in engine.ledger.usage(datetime(2000, 1, 1, tzinfo=UTC))}
    assert usage["ask"].cost_usd == value(families, "tierwise_cost_usd_total", skill="ask", purpose="user")


def test_a_rolled_back_write_counts_nothing(make_engine: Any) -> None:
    from bot.ledger.models import RequestRow

    engine = make_engine()
    metrics = attach(engine.ledger, Metrics())
    with engine.ledger.session() as s:
        s.add(RequestRow(skill="ask", tier="small", status="ok", latency_ms=5))
        s.flush()
        s.rollback()
    with engine.ledger.session() as s:
        s.add(RequestRow(skill="ask", tier="small", status="running"))  # not final yet: not counted
        s.commit()
    assert b"tierwise_requests_total{" not in metrics.exposition()


def test_a_row_completed_after_its_call_counts_once(make_engine: Any) -> None:
    from bot.ledger.models import RequestRow

    engine = make_engine()
    metrics = attach(engine.ledger, Metrics())
    row = engine.ledger.record(RequestRow(skill="ask", tier="small", status="running"))
    with engine.ledger.session() as s:
        stored = s.get(RequestRow, row.id)
        stored.status, stored.latency_ms = "ok", 1200
        s.add(stored)
        s.commit()
        stored.notes = "touched again"
        s.add(stored)
        s.commit()
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    assert value(families, "tierwise_requests_total", skill="ask", status="ok") == 1
    assert value(families, "tierwise_request_duration_seconds_sum", skill="ask") == 1.2


def test_work_queue_depth_and_age(make_engine: Any) -> None:
    metrics = Metrics()
    pool = TrackedExecutor(max_workers=1, thread_name_prefix="t")
    metrics.register_queue("slack", pool.depth, pool.oldest_age)
    release = threading.Event()
    running = threading.Event()

    def block() -> None:
        running.set()
        release.wait(10)

    first = pool.submit(block)
    running.wait(5)
    second = pool.submit(lambda: None)
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    assert value(families, "tierwise_work_queue_depth", queue="slack") == 1
    assert value(families, "tierwise_work_queue_oldest_age_seconds", queue="slack") >= 0
    release.set()
    first.result(5)
    second.result(5)
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    assert value(families, "tierwise_work_queue_depth", queue="slack") == 0
    assert value(families, "tierwise_work_queue_oldest_age_seconds", queue="slack") == 0
    pool.shutdown()


def _taken_port() -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, int(sock.getsockname()[1])


def test_socket_mode_metrics_port_serves_metrics(make_engine: Any) -> None:
    sock, port = _taken_port()
    sock.close()  # a port known to be free now
    engine = make_engine(metrics={"port": port, "host": "127.0.0.1"})
    metrics = attach(engine.ledger, Metrics())
    server = start_metrics_listener(engine.settings.metrics, metrics)
    try:
        assert "tierwise_requests" in scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        server.shutdown()
        server.server_close()


def test_a_metrics_port_in_use_is_rejected_at_start_naming_the_key(make_engine: Any) -> None:
    sock, port = _taken_port()
    try:
        engine = make_engine(
            metrics={"port": port, "host": "127.0.0.1"}, slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN
        )
        with pytest.raises(ConfigError, match=rf"metrics\.port = {port}: cannot listen"):
            serve(engine)
    finally:
        sock.close()


def test_bad_metrics_port_is_rejected_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import load_settings

    monkeypatch.setenv("TIERWISE_METRICS__PORT", "70000")
    with pytest.raises(ConfigError, match=r"metrics\.port"):
        load_settings()


# /tierwise data ----------------------------------------------------------------------------------


def test_tierwise_data_is_for_admins(slack: Any, make_engine: Any, tmp_path: Any) -> None:
    env = start_bot(slack, make_engine, tmp_path, "http", retention={"text_days": 7})
    try:
        acked = env.command(slash("/tierwise", "data", slack))
        assert acked.payload == {"text": "Only Tierwise admins can see or change tier assignments."}
        env.command(slash("/tierwise", "data", slack, user=ADMIN))
        env.settle()
        assert slack.calls_to(f"response_url:cmd-/tierwise-{USER}") == []
        [reply] = slack.calls_to(f"response_url:cmd-/tierwise-{ADMIN}")
        text = reply.params["text"]
        assert (
            text.startswith("*Tierwise data*") and "text kept 7 days" in text and "Last purge: never" in text
        )
        bad = env.command(slash("/tierwise", "data now", slack, user=ADMIN))
        assert bad.payload == {"text": "Usage: `/tierwise data` (no arguments)."}
    finally:
        env.stop()


def test_tierwise_serve_exposes_metrics_on_its_http_port(
    slack: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real process: `tierwise serve` in HTTP mode answers GET /metrics next to /slack/events."""
    import signal

    from tests.slack.test_slack_serve import _free_port, _healthy, _start, _wait

    # The process runs from a temporary folder: make it import this checkout's code.
    monkeypatch.setenv("PYTHONPATH", str(ROOT))

    port = _free_port()
    process = _start("http", slack, tmp_path / "serve" / "data", port)
    try:
        _wait(lambda: _healthy(port) or process.poll() is not None)
        families = scrape(f"http://127.0.0.1:{port}/metrics")
        assert set(families) >= FAMILIES
        assert [s.labels for s in families["tierwise_work_queue_depth"].samples] == [
            {"queue": "slack"},
            {"queue": "work"},
        ]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
