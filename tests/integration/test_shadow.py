"""Shadow evaluation: sampling, weekly caps, the candidate tier, the comparator and judge paths,
the side spend it creates, and the data boundary of sensitive skills.

Model calls are scripted litellm mock responses (10 + 20 tokens) priced with dyadic prices, so every
cost is exact (`CALL_COST`). `Shadow(ctx, engine, rng=Random(seed), background=False)` runs pairs inline.
"""

from __future__ import annotations

import json
import random
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import build_engine
from bot.config import load_settings
from bot.core.periods import week_start
from bot.core.types import Request
from bot.economics.context import EconomicsContext
from bot.economics.shadow import Shadow
from bot.ledger import queries
from bot.ledger.models import RequestRow, ShadowPair, utcnow
from bot.models.llm import LLM
from bot.pipeline.engine import Engine
from tests.ledger_builder import CALL_COST, LedgerBuilder, dyadic_tiers, priced_tiers

EMAIL = "From: ap@vendor.example\nSubject: invoice 1234 overdue\n\nPlease pay invoice 1234 by Friday."
LABEL = {
    "category": "vendor-invoice",
    "priority": "normal",
    "team": "finance-ap",
    "reason": "a supplier invoice",
}
OTHER_LABEL = {**LABEL, "category": "billing", "team": "finance-billing"}
VPN = "How do I get VPN access?"
PRIMARY_TEXT = "PRIMARY-ANSWER: open the VPN portal and request access."
CANDIDATE_TEXT = "CANDIDATE-ANSWER: file an IT ticket for VPN."


def inline_shadow(engine: Engine, seed: int = 0) -> Shadow:
    """Replace the engine's background shadow hook with a seeded inline one."""
    engine.after_reply.remove(engine.shadow)
    engine.shadow = Shadow(EconomicsContext.of(engine), engine, rng=random.Random(seed), background=False)
    engine.after_reply.append(engine.shadow)
    return engine.shadow


def shadow_engine(make_engine: Any, seed: int = 0, **skills: dict[str, Any]) -> Engine:
    engine = make_engine(tiers=dyadic_tiers(), skills=skills)
    inline_shadow(engine, seed)
    return engine


def pairs(engine: Engine) -> list[ShadowPair]:
    with engine.ledger.session() as s:
        return list(s.execute(select(ShadowPair).order_by(ShadowPair.id)).scalars())


def tiers_called(script: Any) -> list[str]:
    return [tier for tier, _ in script.calls]


def label(engine: Engine, user: str = "U1") -> Any:
    return engine.handle(Request(text=EMAIL, skill="label-email", user=user))


def ask(engine: Engine, user: str = "U1") -> Any:
    return engine.handle(Request(text=VPN, skill="ask", user=user))


# Sampling and caps -------------------------------------------------------------------------------------


def test_rate_zero_makes_no_pairs(make_engine: Any, script: Any) -> None:
    engine = shadow_engine(make_engine, **{"label-email": {"tier": "medium", "shadow_rate": 0.0}})
    script.default = json.dumps(LABEL)
    for _ in range(5):
        assert label(engine).ok
    assert pairs(engine) == [] and tiers_called(script) == ["medium"] * 5


def test_rate_one_makes_a_pair_per_request(make_engine: Any, script: Any) -> None:
    engine = shadow_engine(make_engine, **{"label-email": {"tier": "medium", "shadow_rate": 1.0}})
    script.default = json.dumps(LABEL)
    replies = [label(engine) for _ in range(4)]
    found = pairs(engine)
    assert [p.primary_request_id for p in found] == [r.request_id for r in replies]
    assert tiers_called(script) == ["medium", "small"] * 4
    for pair in found:
        assert (pair.skill, pair.primary_tier, pair.candidate_tier) == ("label-email", "medium", "small")
        assert (pair.verdict, pair.method, pair.detail) == (
            "tie",
            "comparator",
            "candidate agrees with the primary answer",
        )
        assert pair.candidate_cost_usd == CALL_COST["small"] and pair.judge_cost_usd == 0.0
        row = engine.ledger.get_request(pair.candidate_request_id)
        assert (row.purpose, row.source, row.tier, row.shadow, row.user_id) == (
            "shadow",
            "shadow",
            "small",
            True,
            None,
        )
        assert row.route_reason == f"shadow of {pair.primary_request_id} (medium → small)"


def test_rate_half_with_a_seeded_rng_samples_the_expected_requests(make_engine: Any, script: Any) -> None:
    engine = shadow_engine(make_engine, seed=2, **{"label-email": {"tier": "medium", "shadow_rate": 0.5}})
    script.default = json.dumps(LABEL)
    for _ in range(40):
        label(engine)
    draws = random.Random(2)
    expected = sum(draws.random() < 0.5 for _ in range(40))  # one draw per request (ties need no judge)
    assert expected == 18
    assert len(pairs(engine)) == 18
    assert tiers_called(script).count("small") == 18


def test_weekly_cap_on_calls(make_engine: Any, script: Any) -> None:
    conf = {"tier": "medium", "shadow_rate": 1.0, "shadow_weekly_max_calls": 3}
    engine = shadow_engine(make_engine, **{"label-email": conf})
    script.default = json.dumps(LABEL)
    for _ in range(5):
        assert label(engine).ok
    assert len(pairs(engine)) == 3
    assert tiers_called(script) == ["medium", "small"] * 3 + ["medium"] * 2


def test_weekly_cap_on_spend_counts_shadow_and_judge_calls_of_this_week(
    make_engine: Any, script: Any
) -> None:
    conf = {"tier": "medium", "shadow_rate": 1.0, "shadow_weekly_max_usd": 3 * CALL_COST["small"]}
    engine = shadow_engine(make_engine, **{"label-email": conf})
    script.default = json.dumps(LABEL)
    b = LedgerBuilder(engine.ledger)
    monday = week_start(utcnow())
    b.request(monday, skill="label-email", tier="large", cost=CALL_COST["small"], user=None, purpose="judge")
    b.request(
        monday - timedelta(seconds=1),
        skill="label-email",
        tier="small",
        cost=5.0,
        user=None,
        purpose="shadow",
    )
    b.request(monday, skill="ask", tier="small", cost=5.0, user=None, purpose="shadow")  # another skill
    for _ in range(4):
        label(engine)
    # $0.0488 of judge spend this week + two pairs = the $0.1465 cap: the third and fourth are skipped
    assert len(pairs(engine)) == 2


def test_candidate_is_one_tier_down_by_default_and_up_when_asked(
    make_engine: Any, script: Any, tmp_path: Any
) -> None:
    script.default = json.dumps(LABEL)
    down = make_engine(tiers=dyadic_tiers(), skills={"label-email": {"tier": "medium", "shadow_rate": 1.0}})
    inline_shadow(down)
    label(down)
    up_conf = {"tier": "medium", "shadow_rate": 1.0, "shadow_direction": "up"}
    up = make_engine(tiers=dyadic_tiers(), skills={"label-email": up_conf}, data_dir=tmp_path / "up")
    inline_shadow(up)
    label(up)
    assert [(p.primary_tier, p.candidate_tier) for p in pairs(down)] == [("medium", "small")]
    assert [(p.primary_tier, p.candidate_tier) for p in pairs(up)] == [("medium", "large")]
    assert tiers_called(script) == ["medium", "small", "medium", "large"]


@pytest.mark.parametrize(("tier", "direction"), [("small", "down"), ("large", "up")])
def test_no_candidate_beyond_the_ends_of_the_ladder(
    make_engine: Any, script: Any, tier: str, direction: str
) -> None:
    conf = {"tier": tier, "shadow_rate": 1.0, "shadow_direction": direction}
    engine = shadow_engine(make_engine, **{"label-email": conf})
    script.default = json.dumps(LABEL)
    assert label(engine).ok
    assert pairs(engine) == [] and tiers_called(script) == [tier]


def test_only_ok_user_replies_are_shadowed(make_engine: Any, script: Any) -> None:
    engine = shadow_engine(make_engine, **{"label-email": {"tier": "large", "shadow_rate": 1.0}})
    script.on("large", "not json at all")  # invalid on the strongest tier: no escalation, no reply
    assert label(engine).status == "invalid"
    script.default = json.dumps(LABEL)
    engine.handle(Request(text=EMAIL, skill="label-email", user="U1", purpose="eval"))
    assert pairs(engine) == []


def test_the_background_hook_runs_pairs_off_the_request_thread(make_engine: Any, script: Any) -> None:
    engine = make_engine(tiers=dyadic_tiers(), skills={"label-email": {"tier": "medium", "shadow_rate": 1.0}})
    script.default = json.dumps(LABEL)
    reply = label(engine)
    engine.shadow.drain(timeout=20)
    (pair,) = pairs(engine)
    assert pair.primary_request_id == reply.request_id and pair.verdict == "tie"


# Comparator path (structured skills) -------------------------------------------------------------------


def judge_by_content(favour: str, *, answers: dict[str, str] | None = None, orders: list[bool] | None = None):
    """A script default: tiers answer from `answers`; the judge (large) names the answer containing
    `favour` as the winner, whichever position it was shown in (and notes that position in `orders`)."""

    def reply(tier: str, messages: list[dict[str, Any]]) -> str:
        if answers and tier in answers:
            return answers[tier]
        prompt = messages[-1]["content"]
        first = re.search(r"<answer_1>\n(.*?)\n</answer_1>", prompt, re.S)
        second = re.search(r"<answer_2>\n(.*?)\n</answer_2>", prompt, re.S)
        assert first and second, prompt
        if favour == "tie":
            return '{"winner": "tie", "reason": "same"}'
        in_first = favour in first.group(1)
        assert in_first != (favour in second.group(1))
        if orders is not None:
            orders.append(in_first)
        return json.dumps({"winner": "1" if in_first else "2", "reason": f"{favour} is right"})

    return reply


def test_comparator_agreement_is_a_tie_without_a_judge(make_engine: Any, script: Any) -> None:
    """label-email's comparator checks category, priority and team. A candidate that gives the same
    labels agrees, however it words its free-text `reason`: a tie, and no judge call."""
    engine = shadow_engine(make_engine, **{"label-email": {"tier": "medium", "shadow_rate": 1.0}})
    script.on("medium", json.dumps(LABEL)).on("small", json.dumps({**LABEL, "reason": "worded differently"}))
    label(engine)
    (pair,) = pairs(engine)
    assert pair.verdict == "tie", pair.detail
    assert (pair.method, pair.judge_request_id) == ("comparator", None)
    assert tiers_called(script) == ["medium", "small"]


def test_an_invalid_candidate_is_a_loss(make_engine: Any, script: Any) -> None:
    engine = shadow_engine(make_engine, **{"label-email": {"tier": "medium", "shadow_rate": 1.0}})
    script.on("medium", json.dumps(LABEL)).on("small", '{"category": "made-up"}')
    label(engine)
    (pair,) = pairs(engine)
    assert (pair.verdict, pair.method) == ("loss", "comparator")
    assert pair.detail.startswith("candidate output invalid:")
    assert tiers_called(script) == ["medium", "small"]


@pytest.mark.parametrize(("favour", "verdict"), [("billing", "win"), ("vendor-invoice", "loss")])
def test_disagreement_is_decided_by_the_judge(
    make_engine: Any, script: Any, favour: str, verdict: str
) -> None:
    engine = shadow_engine(make_engine, **{"label-email": {"tier": "medium", "shadow_rate": 1.0}})
    script.default = judge_by_content(
        f'"category": "{favour}"', answers={"medium": json.dumps(LABEL), "small": json.dumps(OTHER_LABEL)}
    )
    label(engine)
    (pair,) = pairs(engine)
    assert (pair.verdict, pair.method) == (verdict, "comparator+judge")
    assert pair.detail.startswith(
        "disagree (category: expected 'vendor-invoice', got 'billing'; team: expected 'finance-ap', "
        "got 'finance-billing'); "
    )
    assert tiers_called(script) == ["medium", "small", "large"]
    judge_row = engine.ledger.get_request(pair.judge_request_id)
    assert (judge_row.purpose, judge_row.tier, judge_row.source) == ("judge", "large", "judge")
    assert (pair.candidate_cost_usd, pair.judge_cost_usd) == (CALL_COST["small"], CALL_COST["large"])


# Judge path (open skills) ------------------------------------------------------------------------------


@pytest.mark.parametrize(("favour", "verdict"), [("CANDIDATE-ANSWER", "win"), ("PRIMARY-ANSWER", "loss")])
def test_pairwise_judge_maps_the_winner_back_for_both_orders(
    make_engine: Any, script: Any, favour: str, verdict: str
) -> None:
    engine = shadow_engine(make_engine, seed=3, ask={"tier": "medium", "shadow_rate": 1.0})
    orders: list[bool] = []
    script.default = judge_by_content(
        favour, answers={"medium": PRIMARY_TEXT, "small": CANDIDATE_TEXT}, orders=orders
    )
    for _ in range(8):
        assert ask(engine).ok
    assert set(orders) == {True, False}  # the judge saw both orders
    found = pairs(engine)
    assert [p.verdict for p in found] == [verdict] * 8
    assert {p.method for p in found} == {"judge"}
    assert {p.detail for p in found} == {f"{favour} is right"}


def test_judge_tie_and_unreadable_verdicts(make_engine: Any, script: Any) -> None:
    engine = shadow_engine(make_engine, ask={"tier": "medium", "shadow_rate": 1.0})
    script.default = judge_by_content("tie", answers={"medium": PRIMARY_TEXT, "small": CANDIDATE_TEXT})
    ask(engine)
    script.default = judge_by_content(
        "x", answers={"medium": PRIMARY_TEXT, "small": CANDIDATE_TEXT, "large": "no idea"}
    )
    ask(engine)
    tie, unreadable = pairs(engine)
    assert tie.verdict == "tie"
    assert (unreadable.verdict, unreadable.detail) == ("error", "the judge's reply was not a JSON verdict")


def test_a_failed_candidate_call_is_an_error_pair(make_engine: Any, script: Any) -> None:
    engine = shadow_engine(make_engine, ask={"tier": "medium", "shadow_rate": 1.0})
    script.on("medium", PRIMARY_TEXT).on("small", Exception("provider down"))
    assert ask(engine).ok
    (pair,) = pairs(engine)
    assert pair.verdict == "error" and pair.detail.startswith("candidate call failed: ")
    assert engine.ledger.get_request(pair.candidate_request_id).status == "error"
    assert tiers_called(script) == ["medium", "small"]  # no judge for a missing answer


def test_shadow_and_judge_spend_stay_out_of_user_figures(make_engine: Any, script: Any) -> None:
    engine = shadow_engine(make_engine, ask={"tier": "medium", "shadow_rate": 1.0})
    script.default = judge_by_content(
        "CANDIDATE-ANSWER", answers={"medium": PRIMARY_TEXT, "small": CANDIDATE_TEXT}
    )
    since = utcnow() - timedelta(minutes=1)
    for user in ("U1", "U2", "U3"):
        ask(engine, user)
    (usage,) = engine.ledger.usage(since)
    assert (usage.skill, usage.requests, usage.cost_usd) == ("ask", 3, 3 * CALL_COST["medium"])
    assert (usage.prompt_tokens, usage.completion_tokens) == (30, 60)
    until = utcnow() + timedelta(seconds=1)
    assert queries.side_spend(engine.ledger, since, until) == {
        "shadow": 3 * CALL_COST["small"],
        "judge": 3 * CALL_COST["large"],
    }
    assert queries.distinct_users(engine.ledger, since, until) == 3
    assert queries.count_requests(engine.ledger, since, until, skill="ask") == 3
    with engine.ledger.session() as s:
        purposes = sorted(r.purpose for r in s.execute(select(RequestRow)).scalars())
    assert purposes == ["judge"] * 3 + ["shadow"] * 3 + ["user"] * 3


# Sensitive skills and the data boundary -------------------------------------------------------------------


def boundary_engine(fake_openai: Any, boundaries: dict[str, str], **ask_conf: Any) -> Engine:
    """`ask` marked sensitive, every tier served by the fake OpenAI server (real HTTP, no mock)."""
    tiers = priced_tiers(api_base=fake_openai.url)
    for name, boundary in boundaries.items():
        tiers[name]["data_boundary"] = boundary
    settings = load_settings(
        tiers=tiers, skills={"ask": {"sensitive": True, "tier": "medium", "shadow_rate": 1.0, **ask_conf}}
    )
    engine = build_engine(settings, llm=LLM(settings.tiers))
    inline_shadow(engine)
    return engine


@pytest.mark.parametrize(
    ("direction", "external"),
    [("down", "small"), ("up", "large")],
    ids=["down-to-external", "up-to-external"],
)
def test_sensitive_skills_are_never_shadowed_onto_an_external_tier(
    fake_openai: Any, direction: str, external: str
) -> None:
    boundaries = {"small": "local", "medium": "local", "large": "local", external: "external"}
    engine = boundary_engine(fake_openai, boundaries, shadow_direction=direction)
    fake_openai.default = "VPN: use the portal."
    assert ask(engine).ok
    assert [r["model"] for r in fake_openai.requests] == ["medium-model"]  # the primary call only
    assert pairs(engine) == []


def test_a_sensitive_pair_is_not_judged_on_an_external_judge_tier(fake_openai: Any) -> None:
    engine = boundary_engine(fake_openai, {"small": "local", "medium": "local", "large": "external"})
    fake_openai.default = "VPN: use the portal."
    assert ask(engine).ok
    (pair,) = pairs(engine)
    assert (pair.verdict, pair.detail) == ("error", "no judge tier may see this sensitive skill's data")
    assert [r["model"] for r in fake_openai.requests] == ["medium-model", "small-model"]  # no call to large
