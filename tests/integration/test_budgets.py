"""Budgets, checked before the model call: a monthly USD budget per skill (alert once at 80 %,
step down or refuse past 100 %) and a daily request cap per user.

Model calls are litellm mock responses (10 prompt + 20 completion tokens) priced with dyadic
per-token prices, so every cost is exact: a small call is $0.048828125, a medium one $0.09765625.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.core.periods import day_start, month_bounds
from bot.core.types import Request
from bot.economics.budgets import Budgets
from bot.ledger.models import BudgetAlert, RequestRow, utcnow
from bot.ledger.store import Ledger
from tests.ledger_builder import CALL_COST, LedgerBuilder, at, dyadic_tiers

VPN = "How do I get VPN access?"


def budget_engine(make_engine: Any, notes: list[str], clock: Any = None, **ask: Any) -> Any:
    """An engine whose `ask` skill has the given settings and whose budget alerts land in `notes`."""
    engine = make_engine(tiers=dyadic_tiers(), skills={"ask": ask})
    engine.budget = Budgets(
        engine.settings, engine.ledger, notify=notes.append, **({"clock": clock} if clock else {})
    )
    return engine


def month_start() -> Any:
    return month_bounds(utcnow())[0]


def spend(engine: Any, usd: float, when: Any = None, purpose: str = "user", skill: str = "ask") -> None:
    """Earlier spend of this month (at the month's first instant unless `when` is given)."""
    LedgerBuilder(engine.ledger).request(
        when or month_start(), skill=skill, tier="medium", cost=usd, user="U_EARLIER", purpose=purpose
    )


def ask(engine: Any, user: str = "U1", text: str = VPN) -> Any:
    return engine.handle(Request(text=text, skill="ask", user=user, source="slack"))


def alerts(ledger: Ledger) -> list[tuple[str, str, float]]:
    with ledger.session() as s:
        return [(a.skill, a.period, a.threshold) for a in s.execute(select(BudgetAlert)).scalars()]


# Monthly budget -----------------------------------------------------------------------------------------


def test_alert_once_at_80_percent(make_engine: Any, script: Any) -> None:
    notes: list[str] = []
    engine = budget_engine(make_engine, notes, monthly_budget_usd=1.0)
    spend(engine, 0.78125)  # 78 %: no alert yet
    period = f"{utcnow():%Y-%m}"

    assert ask(engine).ok and notes == []  # spent before the call: $0.78125
    assert ask(engine).ok  # spent $0.830078125 ≥ 80 % → the alert
    assert ask(engine).ok  # spent $0.87890625: still past 80 %, no second alert
    assert notes == [f":warning: ask has used $0.83 of its $1.00 monthly budget (83%) for {period}."]
    assert alerts(engine.ledger) == [("ask", period, 0.8)]
    assert [tier for tier, _ in script.calls] == ["small"] * 3

    # another process on the same database does not alert again this month
    other_notes: list[str] = []
    other = Budgets(
        engine.settings, Ledger(engine.settings.effective_database_url), notify=other_notes.append
    )
    decision = other.check(engine.registry.get("ask"), "small", Request(text=VPN, user="U2"))
    assert (decision.tier, decision.refuse, decision.note) == ("small", None, None)
    assert other_notes == [] and len(alerts(engine.ledger)) == 1


def test_two_processes_racing_past_80_percent_alert_once(make_engine: Any) -> None:
    notes: list[str] = []
    engine = budget_engine(make_engine, notes, monthly_budget_usd=1.0)
    spend(engine, 0.875)
    url = engine.settings.effective_database_url
    guards = [Budgets(engine.settings, Ledger(url), notify=notes.append) for _ in range(4)]
    barrier = threading.Barrier(len(guards))
    skill = engine.registry.get("ask")

    def check(guard: Budgets) -> None:
        barrier.wait(5)
        guard.check(skill, "small", Request(text=VPN, user="U1"))

    threads = [threading.Thread(target=check, args=(g,)) for g in guards]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(notes) == 1 and len(alerts(engine.ledger)) == 1


def test_step_down_one_tier_past_100_percent(make_engine: Any, script: Any) -> None:
    notes: list[str] = []
    engine = budget_engine(
        make_engine, notes, tier="medium", monthly_budget_usd=1.0, on_budget_exceeded="step_down"
    )
    spend(engine, 1.0)
    reply = ask(engine)
    assert reply.status == "ok" and reply.tier == "small"
    assert [tier for tier, _ in script.calls] == ["small"]
    assert "monthly budget $1.00 used ($1.00): stepped down medium → small" in reply.notes
    row = engine.ledger.get_request(reply.request_id)
    assert (row.tier, row.status, row.cost_usd) == ("small", "ok", CALL_COST["small"])
    assert "tier small" in row.route_reason
    assert len(notes) == 1  # past 100 % is past 80 % too: one alert


def test_just_under_the_budget_runs_then_the_next_request_steps_down(make_engine: Any, script: Any) -> None:
    notes: list[str] = []
    engine = budget_engine(
        make_engine, notes, tier="medium", monthly_budget_usd=1.0, on_budget_exceeded="step_down"
    )
    spend(engine, 1.0 - 2**-10)
    assert ask(engine).tier == "medium"  # $0.9990234375 < $1.00
    second = ask(engine)
    assert second.tier == "small"
    assert "monthly budget $1.00 used ($1.10): stepped down medium → small" in second.notes
    assert [tier for tier, _ in script.calls] == ["medium", "small"]


def test_refuse_past_100_percent_without_calling_the_model(make_engine: Any, script: Any) -> None:
    notes: list[str] = []
    engine = budget_engine(
        make_engine, notes, tier="medium", monthly_budget_usd=1.0, on_budget_exceeded="refuse"
    )
    spend(engine, 1.25)
    reply = ask(engine)
    message = (
        "/ask has used its monthly budget ($1.25 of $1.00); it is paused until next month. "
        "Ask an admin if this is urgent."
    )
    assert (reply.status, reply.text, reply.tier) == ("refused", message, "medium")
    assert script.calls == []
    row = engine.ledger.get_request(reply.request_id)
    assert (row.status, row.error, row.tier, row.purpose, row.user_id) == (
        "refused",
        message,
        "medium",
        "user",
        "U1",
    )
    assert (row.cost_usd, row.model_used, row.prompt_tokens) == (0.0, None, 0)


def test_step_down_on_the_cheapest_tier_refuses(make_engine: Any, script: Any) -> None:
    notes: list[str] = []
    engine = budget_engine(make_engine, notes, monthly_budget_usd=1.0, on_budget_exceeded="step_down")
    spend(engine, 1.0)
    reply = ask(engine)
    assert reply.status == "refused" and reply.text.startswith(
        "/ask has used its monthly budget ($1.00 of $1.00)"
    )
    assert script.calls == []


def test_only_this_months_user_spend_counts(make_engine: Any, script: Any) -> None:
    notes: list[str] = []
    engine = budget_engine(make_engine, notes, tier="medium", monthly_budget_usd=1.0)
    for purpose in ("shadow", "judge", "eval"):
        spend(engine, 10.0, purpose=purpose)
    spend(engine, 10.0, when=month_start() - timedelta(seconds=1))  # last month
    spend(engine, 10.0, skill="summarize")  # another skill's budget
    assert ask(engine).tier == "medium"
    assert notes == [] and alerts(engine.ledger) == []


def test_sensitive_step_down_never_moves_onto_an_external_tier(make_engine: Any, script: Any) -> None:
    """`ask` is marked sensitive and runs on local medium; the tier below (small) is external.
    Stepping down must not send the request (and its data) to the external tier."""
    notes: list[str] = []
    engine = make_engine(
        tiers=dyadic_tiers(small="external", medium="local", large="local"),
        skills={
            "ask": {
                "sensitive": True,
                "tier": "medium",
                "monthly_budget_usd": 1.0,
                "on_budget_exceeded": "step_down",
            }
        },
    )
    engine.budget = Budgets(engine.settings, engine.ledger, notify=notes.append)
    spend(engine, 1.0)
    reply = ask(engine)
    assert "small" not in [tier for tier, _ in script.calls]
    assert reply.tier != "small"


def test_month_boundary_with_an_injected_clock(make_engine: Any) -> None:
    notes: list[str] = []
    engine = make_engine(tiers=dyadic_tiers(), skills={"ask": {"monthly_budget_usd": 1.0}})
    spend(engine, 1.0, when=at(2026, 11, 30, 23, 59, 59))
    skill, req = engine.registry.get("ask"), Request(text=VPN, user="U1")

    november = Budgets(
        engine.settings, engine.ledger, notify=notes.append, clock=lambda: at(2026, 11, 30, 23, 59, 59)
    )
    assert november.check(skill, "small", req).refuse is not None
    december = Budgets(
        engine.settings, engine.ledger, notify=notes.append, clock=lambda: at(2026, 12, 1, 0, 0, 0)
    )
    decision = december.check(skill, "small", req)
    assert (decision.tier, decision.refuse) == ("small", None)
    assert notes == [":warning: ask has used $1.00 of its $1.00 monthly budget (100%) for 2026-11."]


# Daily cap per user ------------------------------------------------------------------------------------


def test_the_request_after_the_daily_cap_is_refused(make_engine: Any, script: Any) -> None:
    engine = make_engine(tiers=dyadic_tiers(), user_daily_request_cap=3)
    yesterday = day_start(utcnow()) - timedelta(hours=1)
    LedgerBuilder(engine.ledger).requests(5, yesterday, step=timedelta(minutes=1), skill="ask", user="U1")

    assert [ask(engine, "U1").status for _ in range(3)] == ["ok", "ok", "ok"]  # yesterday's 5 do not count
    fourth = ask(engine, "U1")
    assert (fourth.status, fourth.text) == (
        "refused",
        "You have reached today's limit of 3 requests; it resets at 00:00 UTC.",
    )
    assert len(script.calls) == 3  # checked before the model call
    assert ask(engine, "U2").ok  # another user is fine
    with engine.ledger.session() as s:
        refused = s.execute(select(RequestRow).where(RequestRow.status == "refused")).scalars().all()
    assert [(r.user_id, r.skill) for r in refused] == [("U1", "ask")]


def test_daily_cap_resets_at_midnight_utc(make_engine: Any) -> None:
    engine = make_engine(tiers=dyadic_tiers(), user_daily_request_cap=2)
    b = LedgerBuilder(engine.ledger)
    b.requests(2, at(2026, 11, 19, 23, 59, 0), step=timedelta(seconds=10), skill="ask", user="U1")
    skill, req = engine.registry.get("ask"), Request(text=VPN, user="U1")
    after_midnight = Budgets(engine.settings, engine.ledger, clock=lambda: at(2026, 11, 20, 0, 0, 30))
    assert after_midnight.check(skill, "small", req).refuse is None
    before_midnight = Budgets(engine.settings, engine.ledger, clock=lambda: at(2026, 11, 19, 23, 59, 59))
    assert before_midnight.check(skill, "small", req).refuse is not None
    # escalation rows are not extra requests
    first = b.request(at(2026, 11, 20, 0, 0, 5), skill="ask", user="U1", status="invalid")
    b.request(at(2026, 11, 20, 0, 0, 6), skill="ask", tier="medium", user="U1", escalated_from=first.id)
    assert after_midnight.check(skill, "small", req).refuse is None


def test_an_operator_tier_override_skips_budgets(make_engine: Any) -> None:
    notes: list[str] = []
    engine = budget_engine(make_engine, notes, monthly_budget_usd=1.0)
    spend(engine, 5.0)
    reply = engine.handle(Request(text=VPN, skill="ask", user="cli", tier="large"))
    assert reply.ok and reply.tier == "large"
    assert notes == []
