"""`tierwise cost recompute`: re-price ledger rows from their token buckets after prices change.

Prices are powers of two, so tokens × prices is exact and costs compare with `==`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.adapters.cli import app
from bot.config import load_settings
from bot.economics.costs import recompute
from bot.ledger.models import RequestRow, utcnow
from bot.ledger.store import Ledger
from bot.models.llm import litellm_module
from tests.ledger_builder import CALL_COST, LedgerBuilder, at, dyadic_tiers

OLD = {"small": (2**-17, 2**-15), "medium": (2**-16, 2**-14)}
NEW = {
    "small": {"in": 2**-18, "out": 2**-16, "cache_read": 2**-20, "cache_write": 2**-17},
    "medium": {"in": 2**-19, "out": 2**-17, "cache_read": None, "cache_write": None},
}
SINCE = at(2026, 11, 1, 0)


def tiers(prices: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name in ("small", "medium", "large"):
        conf: dict[str, Any] = {"model": f"openai/{name}-model", "api_base": "http://127.0.0.1:9/v1"}
        p = prices.get(name)
        if isinstance(p, tuple):
            conf |= {"input_cost_per_token": p[0], "output_cost_per_token": p[1]}
        elif p:
            conf |= {"input_cost_per_token": p["in"], "output_cost_per_token": p["out"]}
            if p["cache_read"] is not None:
                conf["cache_read_cost_per_token"] = p["cache_read"]
            if p["cache_write"] is not None:
                conf["cache_write_cost_per_token"] = p["cache_write"]
        out[name] = conf
    return out


def new_price(tier: str, prompt: int, completion: int, cached: int = 0, cache_write: int = 0) -> float:
    p = NEW[tier]
    cache_read_price = p["cache_read"] if p["cache_read"] is not None else p["in"]
    return (
        (prompt - cached) * p["in"]
        + cached * cache_read_price
        + completion * p["out"]
        + cache_write * (p["cache_write"] or 0.0)
    )


def old_price(tier: str, prompt: int, completion: int) -> float:
    return prompt * OLD[tier][0] + completion * OLD[tier][1]


def rows_by_id(ledger: Ledger) -> dict[str, RequestRow]:
    with ledger.session() as s:
        return {r.id: r for r in s.execute(select(RequestRow)).scalars()}


# (id, tier, prompt, completion, cached, cache_write, purpose)
TIER_ROWS = [
    ("s1", "small", 1000, 200, 0, 0, "user"),
    ("s2", "small", 5000, 1000, 4096, 0, "user"),
    ("s3", "small", 12, 7, 0, 100, "user"),
    ("s4", "small", 640, 64, 0, 0, "shadow"),  # side rows are re-priced too
    ("m1", "medium", 2048, 512, 1024, 0, "user"),  # medium has no cache price: cached tokens at input price
    ("m2", "medium", 300, 100, 0, 0, "judge"),
]


@pytest.fixture
def priced_ledger(tmp_path: Any) -> Ledger:
    ledger = Ledger(f"sqlite:///{tmp_path / 'costs.db'}")
    b = LedgerBuilder(ledger)
    when = at(2026, 11, 10)
    for rid, tier, prompt, completion, cached, cache_write, purpose in TIER_ROWS:
        b.request(
            when,
            id=rid,
            skill="ask",
            tier=tier,
            purpose=purpose,
            user=None if purpose != "user" else "U1",
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            cache_write_tokens=cache_write,
            cost=old_price(tier, prompt, completion),
        )
    # before the window: untouched
    b.request(at(2026, 10, 31, 23, 59, 59), id="old", skill="ask", tier="small", prompt_tokens=100, cost=1.5)
    # a retired tier whose model litellm does not know
    b.request(
        when,
        id="u1",
        skill="ask",
        tier="retired",
        model_requested="openai/mystery-model-x",
        prompt_tokens=100,
        completion_tokens=10,
        cost=0.25,
    )
    # the small tier called another model then: the tier's new prices do not apply to it
    b.request(
        when,
        id="u2",
        skill="ask",
        tier="small",
        model_requested="openai/old-small-model",
        prompt_tokens=100,
        completion_tokens=10,
        cost=0.125,
    )
    # a tier gone from the config, on a model litellm prices
    b.request(
        when,
        id="k1",
        skill="ask",
        tier="legacy",
        model_requested="gpt-4o-mini",
        prompt_tokens=1000,
        completion_tokens=100,
        cost=9.0,
    )
    # a failed call: no model answered, nothing to price
    b.request(when, id="e1", skill="ask", tier="small", model_used=None, status="error", cost=0.0)
    return ledger


def test_recompute_prices_every_row_with_the_new_tier_prices(priced_ledger: Ledger) -> None:
    settings = load_settings(tiers=tiers(NEW))
    before = rows_by_id(priced_ledger)
    result = recompute(settings, priced_ledger, SINCE)
    after = rows_by_id(priced_ledger)

    for rid, tier, prompt, completion, cached, cache_write, _ in TIER_ROWS:
        row = after[rid]
        assert row.cost_usd == new_price(tier, prompt, completion, cached, cache_write), rid
        assert (row.cost_known, row.price_source) == (True, "tier-config")
    assert (
        after["s2"].cost_usd == 904 * 2**-18 + 4096 * 2**-20 + 1000 * 2**-16
    )  # cached tokens at the cache price
    assert after["m1"].cost_usd == 2048 * 2**-19 + 512 * 2**-17

    for rid in ("u1", "u2"):
        assert (after[rid].cost_usd, after[rid].cost_known, after[rid].price_source) == (
            0.0,
            False,
            "unknown",
        )
    litellm = litellm_module()
    known = litellm.model_cost["gpt-4o-mini"]
    expected_k1 = 1000 * known["input_cost_per_token"] + 100 * known["output_cost_per_token"]
    assert after["k1"].cost_usd == pytest.approx(expected_k1, rel=1e-12)
    assert (after["k1"].cost_known, after["k1"].price_source) == (True, "litellm-price-map")
    assert after["old"].cost_usd == 1.5 and after["e1"].cost_usd == 0.0  # outside the window / no model

    repriced = [rid for rid, *_ in TIER_ROWS] + ["u1", "u2", "k1"]
    assert result.groups == 5  # small, medium, retired, small+old model, legacy
    assert (result.rows, result.unknown_rows) == (9, 2)
    assert result.before_usd == sum(before[rid].cost_usd for rid in repriced)
    assert result.after_usd == pytest.approx(sum(after[rid].cost_usd for rid in repriced), rel=1e-12)


def test_recompute_with_unchanged_prices_keeps_call_time_costs(make_engine: Any) -> None:
    from bot.core.types import Request

    engine = make_engine(tiers=dyadic_tiers())
    reply = engine.handle(Request(text="How do I get VPN access?", skill="ask", user="U1"))
    assert reply.cost_usd == CALL_COST["small"]
    result = recompute(engine.settings, engine.ledger, utcnow() - timedelta(hours=1))
    assert (result.groups, result.rows, result.unknown_rows) == (1, 1, 0)
    assert result.before_usd == result.after_usd == CALL_COST["small"]
    assert engine.ledger.get_request(reply.request_id).cost_usd == CALL_COST["small"]


def test_cli_cost_recompute_prints_the_counts(isolated: Any) -> None:
    (isolated / "tierwise.toml").write_text(
        '[tiers.small]\nmodel = "openai/small-model"\ninput_cost_per_token = 0.0000152587890625\n'
        "output_cost_per_token = 0.00006103515625\n",  # 2**-16 and 2**-14
        encoding="utf-8",
    )
    settings = load_settings()
    ledger = Ledger(settings.effective_database_url)
    b = LedgerBuilder(ledger)
    recent = utcnow() - timedelta(days=2)
    b.request(recent, skill="ask", tier="small", prompt_tokens=65536, completion_tokens=16384, cost=0.5)
    b.request(recent, skill="ask", tier="small", prompt_tokens=0, completion_tokens=0, cost=0.25)
    b.request(
        recent,
        skill="ask",
        tier="gone",
        model_requested="openai/mystery-model-x",
        prompt_tokens=9,
        cost=0.125,
    )
    b.request(utcnow() - timedelta(days=31), skill="ask", tier="small", prompt_tokens=1, cost=7.0)

    result = CliRunner().invoke(app, ["cost", "recompute", "--since", "30d"])
    assert result.exit_code == 0, result.output
    day = f"{utcnow() - timedelta(days=30):%Y-%m-%d}"
    assert result.stdout.strip() == (
        f"Re-priced 3 request(s) in 2 tier/model group(s) since {day}: $0.875000 → $2.000000; "
        "1 without a known price"
    )  # 65536 × 2**-16 + 16384 × 2**-14 = 1 + 1


def test_cli_cost_recompute_rejects_a_bad_window() -> None:
    result = CliRunner().invoke(app, ["cost", "recompute", "--since", "last tuesday"])
    assert result.exit_code == 2
    assert re.fullmatch(r"tierwise: --since 'last tuesday': use a duration such as 7d.*\n", result.stderr)
