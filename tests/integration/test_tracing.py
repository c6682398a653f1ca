"""OpenTelemetry traces: one request end to end captured with the SDK's in-memory exporter, GenAI
semantic-convention attributes on the model call, OTLP export, and no OpenTelemetry at all when off."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot.config import ConfigError, load_settings
from bot.core.types import Request
from bot.observability import tracing
from bot.observability.tracing import configure
from tests.ledger_builder import MOCK_COMPLETION_TOKENS, MOCK_PROMPT_TOKENS, dyadic_tiers
from tests.paths import ROOT
from tests.slack_helpers import event_body, mention, slack_fixture, start_bot  # noqa: F401 (fixture)

QUESTION = "how do I get zebracorn VPN access?"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure(load_settings(), exporter=exporter)
    yield exporter
    tracing.shutdown()


def by_name(exporter: InMemorySpanExporter) -> dict[str, Any]:
    return {s.name: s for s in exporter.get_finished_spans()}


def no_text_in(finished: Any) -> None:
    for span in finished:
        for value in span.attributes.values():
            assert "zebracorn" not in str(value)


def test_a_request_has_route_context_and_a_genai_model_call_span(make_engine: Any, spans: Any) -> None:
    engine = make_engine(tiers=dyadic_tiers())
    reply = engine.handle(Request(text=QUESTION, skill="ask", user="U1"))
    assert reply.ok
    got = by_name(spans)
    assert set(got) == {"tierwise.request", "tierwise.route", "tierwise.context", "chat openai/small-model"}
    root = got["tierwise.request"]
    assert root.parent is None
    for name in ("tierwise.route", "tierwise.context", "chat openai/small-model"):
        assert got[name].parent.span_id == root.context.span_id
        assert got[name].context.trace_id == root.context.trace_id
    call = got["chat openai/small-model"].attributes
    assert call["gen_ai.operation.name"] == "chat"
    assert call["gen_ai.provider.name"] == "openai"
    assert call["gen_ai.request.model"] == "openai/small-model"
    assert call["gen_ai.usage.input_tokens"] == MOCK_PROMPT_TOKENS
    assert call["gen_ai.usage.output_tokens"] == MOCK_COMPLETION_TOKENS
    assert call["gen_ai.request.max_tokens"] > 0
    assert call["tierwise.tier"] == "small" and call["tierwise.skill"] == "ask"
    assert root.attributes["tierwise.request_id"] == reply.request_id
    assert root.attributes["tierwise.status"] == "ok"
    assert got["tierwise.context"].attributes["tierwise.context.sources"] >= 0
    no_text_in(spans.get_finished_spans())


def test_a_failed_call_records_the_error_type(make_engine: Any, script: Any, spans: Any) -> None:
    engine = make_engine(tiers=dyadic_tiers())
    script.on("small", RuntimeError("provider exploded"))
    assert engine.handle(Request(text="hi", skill="ask")).status == "error"
    call = by_name(spans)["chat openai/small-model"].attributes
    assert call["error.type"] == "server_error"
    assert "gen_ai.usage.input_tokens" not in call


def test_a_slack_event_is_one_trace_from_event_to_delivery(
    slack: Any, make_engine: Any, tmp_path: Path, spans: Any
) -> None:
    env = start_bot(slack, make_engine, tmp_path, "http")
    try:
        env.event(event_body(mention(QUESTION, "1700000002.000100"), env.next_id()))
        env.settle()
    finally:
        env.stop()
    got = by_name(spans)
    event, request, deliver = got["slack.event"], got["tierwise.request"], got["slack.deliver"]
    assert event.parent is None
    assert request.parent.span_id == event.context.span_id
    assert deliver.parent.span_id == event.context.span_id
    assert deliver.attributes["slack.messages"] >= 1
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {event.context.trace_id}
    model_calls = [s for s in spans.get_finished_spans() if s.name.startswith("chat ")]
    assert model_calls and all(s.parent.span_id == request.context.span_id for s in model_calls)
    no_text_in(spans.get_finished_spans())


class Collector(BaseHTTPRequestHandler):
    posts: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.posts.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_are_exported_over_otlp_http(make_engine: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    try:
        settings = load_settings(
            tracing={"enabled": True, "otlp_endpoint": endpoint, "service_name": "tw-test"}
        )
        assert configure(settings)
        engine = make_engine(tiers=dyadic_tiers())
        assert engine.handle(Request(text="hello", skill="ask")).ok
    finally:
        tracing.shutdown()  # flushes the batch
        server.shutdown()
        server.server_close()
    assert Collector.posts, "the collector received the spans"
    path, content_type, body = Collector.posts[-1]
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    assert b"tierwise.request" in body and b"gen_ai.request.model" in body and b"tw-test" in body


def test_enabled_without_the_otel_extra_is_rejected_naming_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"tracing\.enabled = true needs OpenTelemetry"):
        configure(load_settings(tracing={"enabled": True}))
    assert not tracing.enabled()


def test_off_by_default_imports_no_opentelemetry(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from bot.config import load_settings\n"
        "from bot.app import build_engine\n"
        "from bot.pipeline.engine import Request\n"
        "from bot.models.llm import LLM\n"
        "from bot.observability import tracing\n"
        "s = load_settings()\n"
        "assert not tracing.configure(s)\n"
        "e = build_engine(s, llm=LLM(s.tiers, mock_response='ok'))\n"
        "assert e.handle(Request(text='hi', skill='ask')).ok\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"TIERWISE_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_broken_name_or_attribute_function_never_breaks_the_traced_call(spans: Any) -> None:
    @tracing.traced(lambda *a: 1 / 0, lambda *a: 1 / 0)
    def add_one(x: int) -> int:
        return x + 1

    assert add_one(1) == 2
    [span] = spans.get_finished_spans()
    assert span.name.endswith("add_one") and dict(span.attributes) == {}


def test_an_exception_marks_the_span_as_an_error(spans: Any) -> None:
    @tracing.traced("boom")
    def fail() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError):
        fail()
    [span] = spans.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert span.events[0].name == "exception"
