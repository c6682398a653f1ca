"""Time to first token: recorded per request (model and user-visible) and shown in `tierwise usage`."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.core.types import Request
from tests.cli.test_cli import cli  # noqa: F401 (fixture)


def test_streamed_requests_record_ttft_and_usage_shows_percentiles(make_engine: Any) -> None:
    engine = make_engine()
    seen: list[str] = []
    ids = []
    for i in range(4):
        reply = engine.handle(Request(text=f"how do I get VPN access? ({i})", on_delta=seen.append))
        assert reply.ok
        engine.ledger.note_delivery(reply.request_id, "stream", 100 * (i + 1))
        ids.append(reply.request_id)
    unstreamed = engine.handle(Request(text="how many days of leave?"))
    assert "".join(seen)  # the text arrived in pieces, through litellm's streaming path
    rows = [engine.ledger.get_request(i) for i in ids]
    assert all(r is not None and r.ttft_ms is not None and r.delivery == "stream" for r in rows)
    assert engine.ledger.get_request(unstreamed.request_id).ttft_ms is None  # nothing streamed: unknown

    from bot.adapters.cli import app

    result = CliRunner().invoke(app, ["usage", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [figures] = [t for t in data["ttft"] if t["visible_p50_ms"] is not None]
    assert (figures["visible_p50_ms"], figures["visible_p95_ms"]) == (200, 400)  # nearest rank of 100..400
    assert figures["model_p50_ms"] is not None and figures["model_p95_ms"] >= figures["model_p50_ms"]
    assert {r["delivery"] for r in data["requests"]} == {"stream", None}
    table = CliRunner().invoke(app, ["usage"])
    assert "Time to first token" in table.stdout and "visible p95" in table.stdout

    from bot.core.periods import iso_week
    from bot.economics.context import EconomicsContext
    from bot.economics.digest import build_digest, to_json, to_text
    from bot.ledger.models import utcnow

    digest = build_digest(EconomicsContext.of(engine), iso_week(utcnow()))
    assert "Time to first text, p50/p95: ask on small 200/400 ms." in to_text(digest)
    assert json.loads(to_json(digest))["ttft"][0]["visible_p95_ms"] == 400


def test_a_stopped_request_is_recorded_with_its_tokens(make_engine: Any) -> None:
    engine = make_engine()
    stop = threading.Event()
    pieces: list[str] = []

    def take(text: str) -> None:
        pieces.append(text)
        if len(pieces) == 2:
            stop.set()

    engine.llm.mock_response = "A long answer that goes on and on about VPN clients and tokens " * 5
    reply = engine.handle(Request(text="how do I get VPN access?", on_delta=take, stop=stop))
    assert reply.status == "stopped" and reply.text == "".join(pieces).strip()
    row = engine.ledger.get_request(reply.request_id)
    assert row is not None and row.status == "stopped" and 0 < row.completion_tokens < 60


def test_ask_prints_tokens_as_they_come(request: pytest.FixtureRequest) -> None:
    from tests.cli.test_cli import run

    server = request.getfixturevalue("cli")  # the CLI on the fake model server (tests.cli.test_cli)
    server.default = "Install the GlobalProtect client, then sign in."
    server.token_interval = 0.01
    result = run("ask", "--skill", "helpdesk", "how do I get VPN access?")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Install the GlobalProtect client, then sign in.\n")
    assert result.stdout.count("GlobalProtect") == 1  # streamed once, not printed again at the end
    assert server.requests[-1]["stream"] is True


def test_console_streams_the_answer(make_engine: Any) -> None:
    from bot.adapters.shell import Shell

    engine = make_engine()
    engine.llm.mock_response = "Install the GlobalProtect client, then sign in."
    echoed: list[str] = []
    out = Shell(engine, echo=echoed.append).handle_line("how do I get VPN access?")
    assert len(echoed) > 1 and "".join(echoed) == "Install the GlobalProtect client, then sign in."
    # Not the text again: what follows it (sources, the built-in model's label, the footer).
    assert out is not None and out.startswith("\n") and "GlobalProtect" not in out
    assert out.splitlines()[-1].startswith("— ask · small")


def test_ask_on_the_built_in_model_prints_only_what_the_answer_keeps(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The built-in model loops; its answer is cut before the loop, and the console never printed it."""
    from bot.models import embedded
    from bot.models.repetition import loop_start
    from tests.cli.test_cli import run

    request.getfixturevalue("cli")
    monkeypatch.setenv("TIERWISE_TIERS__SMALL__MODEL", "tierwise-local/smollm2")
    looping = (
        "Reset a blorptastic token in the portal. Sign in with SSO first. "
        + "Then open the portal again. " * 4
    )
    tokens = [looping[i : i + 3] for i in range(0, len(looping), 3)]

    def generate(*_args: Any) -> Any:  # the model, with its loop stopper (embedded.loop_stopper)
        for i, token in enumerate(tokens, start=1):
            yield token
            if i % embedded.LOOP_CHECK_EVERY == 0 and loop_start("".join(tokens[:i])) is not None:
                return

    monkeypatch.setattr(embedded, "_generate", generate)
    monkeypatch.setattr(embedded, "prompt_tokens", lambda messages: 10)
    result = run("ask", "--skill", "helpdesk", "how do I reset my blorptastic token?")
    assert result.exit_code == 0, result.output
    kept = "Reset a blorptastic token in the portal. Sign in with SSO first. Then open the portal again."
    assert result.stdout.startswith(kept + "\n")  # printed as streamed, and nothing after the cut
    assert result.stdout.count("open the portal again") == 1
