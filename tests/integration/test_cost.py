"""Cost accounting: tier price overrides (exact), litellm's price map, unknown prices, and the
figures `tierwise usage --json` shows. Calls go over HTTP to the fake OpenAI server."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import build_engine
from bot.config import TierConfig, load_settings
from bot.core.types import Request
from bot.ledger.models import RequestRow
from bot.pipeline.engine import Engine
from tests.paths import TESTS

IN = 0.000003  # $3 per million input tokens
OUT = 0.000015  # $15 per million output tokens

SKILLS = TESTS / "skill_sources" / "cost"


@pytest.fixture
def skill_dir() -> Path:
    return SKILLS


def priced(url: str, model: str = "openai/cheap", **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "api_base": url,
        "data_boundary": "local",
        "max_retries": 0,
        "input_cost_per_token": IN,
        "output_cost_per_token": OUT,
        **extra,
    }


def invoke(app: Any, *args: str) -> Any:
    """CliRunner, dropping the root-logger handler `setup_logging` binds to the runner's stderr."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def rows(engine: Engine) -> list[RequestRow]:
    with engine.ledger.session() as s:
        return list(s.exec(select(RequestRow).order_by(RequestRow.created_at)))


USAGE = [(1000, 200), (1, 1), (12345, 678), (0, 50), (999999, 0)]


def test_priced_tier_cost_is_exact(skill_dir: Path, fake_openai) -> None:
    for n, m in USAGE:
        fake_openai.script("cheap", {"content": f"answer {n}", "prompt_tokens": n, "completion_tokens": m})
    engine = build_engine(load_settings(tiers={"small": priced(fake_openai.url)}, skill_dirs=[skill_dir]))
    replies = [engine.handle(Request(text=f"question {i}", skill="costly")) for i in range(len(USAGE))]
    assert all(r.ok for r in replies), [r.text for r in replies]
    assert [r["model"] for r in fake_openai.requests] == ["cheap"] * len(USAGE)
    recorded = rows(engine)
    assert [(r.prompt_tokens, r.completion_tokens) for r in recorded] == USAGE
    for row, (n, m) in zip(recorded, USAGE, strict=True):
        assert row.cost_usd == pytest.approx(n * IN + m * OUT, rel=1e-12)
        assert row.cost_known and row.price_source == "tier-config"
    for reply, (n, m) in zip(replies, USAGE, strict=True):
        assert reply.cost_usd == pytest.approx(n * IN + m * OUT, rel=1e-12)
    [usage] = [u for u in engine.ledger.usage(recorded[0].created_at) if u.skill == "costly"]
    assert usage.requests == len(USAGE)
    assert usage.cost_usd == pytest.approx(sum(n * IN + m * OUT for n, m in USAGE), rel=1e-12)
    assert usage.prompt_tokens == sum(n for n, _ in USAGE)
    assert usage.completion_tokens == sum(m for _, m in USAGE)
    assert usage.unknown_cost == 0


def test_usage_json_shows_the_exact_cost(skill_dir: Path, fake_openai, monkeypatch) -> None:
    from bot.adapters.cli import app

    monkeypatch.setenv("TIERWISE_SKILL_DIRS", str(skill_dir))
    for name in ("SMALL", "MEDIUM", "LARGE"):
        monkeypatch.setenv(f"TIERWISE_TIERS__{name}__MODEL", "openai/cheap")
        monkeypatch.setenv(f"TIERWISE_TIERS__{name}__API_BASE", fake_openai.url)
        monkeypatch.setenv(f"TIERWISE_TIERS__{name}__DATA_BOUNDARY", "local")
        monkeypatch.setenv(f"TIERWISE_TIERS__{name}__MAX_RETRIES", "0")
        monkeypatch.setenv(f"TIERWISE_TIERS__{name}__INPUT_COST_PER_TOKEN", str(IN))
        monkeypatch.setenv(f"TIERWISE_TIERS__{name}__OUTPUT_COST_PER_TOKEN", str(OUT))
    fake_openai.script("cheap", {"content": "one", "prompt_tokens": 2000, "completion_tokens": 300})
    fake_openai.script("cheap", {"content": "two", "prompt_tokens": 777, "completion_tokens": 33})
    expected = [2000 * IN + 300 * OUT, 777 * IN + 33 * OUT]
    for question, cost in zip(("first question", "second question"), expected, strict=True):
        result = invoke(app, "ask", "--skill", "costly", question)
        assert result.exit_code == 0, result.output
        assert f" · ${cost:.6f} · " in result.stdout
    result = invoke(app, "usage", "--since", "7d", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [skill] = [s for s in data["skills"] if s["skill"] == "costly"]
    assert skill["requests"] == 2
    assert skill["cost_usd"] == pytest.approx(sum(expected), rel=1e-12)
    assert (skill["prompt_tokens"], skill["completion_tokens"]) == (2777, 333)
    requests = sorted(
        (r for r in data["requests"] if r["skill"] == "costly"),
        key=lambda r: r["prompt_tokens"],
        reverse=True,
    )
    assert [r["cost_usd"] for r in requests] == pytest.approx(expected, rel=1e-12)
    assert all(r["cost_known"] and r["price_source"] == "tier-config" for r in requests)


def test_escalation_costs_both_attempts(skill_dir: Path, fake_openai) -> None:
    fake_openai.script("cheap", {"content": "not json", "prompt_tokens": 100, "completion_tokens": 10})
    fake_openai.script(
        "pricier", {"content": '{"answer": "42"}', "prompt_tokens": 120, "completion_tokens": 12}
    )
    tiers = {
        "small": priced(fake_openai.url),
        "medium": priced(
            fake_openai.url, "openai/pricier", input_cost_per_token=0.00001, output_cost_per_token=0.00003
        ),
        "large": priced(fake_openai.url, "openai/top"),
    }
    engine = build_engine(load_settings(tiers=tiers, skill_dirs=[skill_dir]))
    reply = engine.handle(Request(text="q", skill="costly-json"))
    assert reply.ok and reply.escalated
    first, second = rows(engine)
    assert first.cost_usd == pytest.approx(100 * IN + 10 * OUT, rel=1e-12)
    assert second.cost_usd == pytest.approx(120 * 0.00001 + 12 * 0.00003, rel=1e-12)
    assert reply.cost_usd == pytest.approx(first.cost_usd + second.cost_usd, rel=1e-12)
    [usage] = [u for u in engine.ledger.usage(first.created_at) if u.skill == "costly-json"]
    assert usage.requests == 1
    assert usage.cost_usd == pytest.approx(first.cost_usd + second.cost_usd, rel=1e-12)


def test_unknown_model_without_prices_is_cost_unknown(skill_dir: Path, fake_openai) -> None:
    fake_openai.script("cheap", {"content": "hi", "prompt_tokens": 500, "completion_tokens": 50})
    tier = priced(fake_openai.url)
    del tier["input_cost_per_token"], tier["output_cost_per_token"]
    engine = build_engine(load_settings(tiers={"small": tier}, skill_dirs=[skill_dir]))
    reply = engine.handle(Request(text="q", skill="costly"))
    assert reply.ok
    assert not reply.cost_known
    assert "$?" in reply.footer()
    [row] = rows(engine)
    assert (row.prompt_tokens, row.completion_tokens) == (500, 50)
    assert row.cost_known is False
    assert row.price_source == "unknown"
    assert row.cost_usd == 0
    [usage] = [u for u in engine.ledger.usage(row.created_at) if u.skill == "costly"]
    assert usage.unknown_cost == 1


def test_known_model_uses_the_litellm_price_map(make_engine, skill_dir: Path, script) -> None:
    from bot.models.llm import litellm_module

    prices = litellm_module().model_cost["gpt-4o-mini"]
    engine = make_engine(
        tiers={"small": {"model": "openai/gpt-4o-mini", "data_boundary": "local"}}, skill_dirs=[skill_dir]
    )
    script.on("small", "priced by the map")
    reply = engine.handle(Request(text="q", skill="costly"))
    assert reply.ok
    [row] = rows(engine)
    assert row.model_used == "gpt-4o-mini"
    assert row.prompt_tokens > 0 and row.completion_tokens > 0
    assert row.price_source == "litellm-price-map" and row.cost_known
    expected = (
        row.prompt_tokens * prices["input_cost_per_token"]
        + row.completion_tokens * prices["output_cost_per_token"]
    )
    assert row.cost_usd > 0
    assert row.cost_usd == pytest.approx(expected, rel=1e-9)


def test_price_tokens_buckets() -> None:
    from bot.models.llm import price_tokens

    tier = TierConfig(
        model="openai/cheap",
        input_cost_per_token=IN,
        output_cost_per_token=OUT,
        cache_read_cost_per_token=0.0000003,
        cache_write_cost_per_token=0.00000375,
    )
    usd, known, source = price_tokens(
        tier, "cheap", prompt=1000, completion=100, cache_read=400, cache_write=200
    )
    assert (known, source) == (True, "tier-config")
    assert usd == pytest.approx(600 * IN + 100 * OUT + 400 * 0.0000003 + 200 * 0.00000375, rel=1e-12)
    # Without a cache price, cached input is charged at the input price.
    plain = TierConfig(model="openai/cheap", input_cost_per_token=IN, output_cost_per_token=OUT)
    usd, _, _ = price_tokens(plain, "cheap", prompt=1000, completion=100, cache_read=400)
    assert usd == pytest.approx(1000 * IN + 100 * OUT, rel=1e-12)
    # Only an output price configured: input is free, still a known cost.
    out_only = TierConfig(model="openai/cheap", output_cost_per_token=OUT)
    assert price_tokens(out_only, "cheap", 1000, 100) == (
        pytest.approx(100 * OUT, rel=1e-12),
        True,
        "tier-config",
    )
    # The embedded model is free.
    assert price_tokens(TierConfig(model="tierwise-local/smollm2"), "smollm2", 1000, 100) == (
        0.0,
        True,
        "embedded",
    )
    # Unknown model, no override.
    assert price_tokens(TierConfig(model="openai/no-such-model-xyz"), "no-such-model-xyz", 10, 10) == (
        0.0,
        False,
        "unknown",
    )
