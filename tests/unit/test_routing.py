"""Routing: explicit skill wins; free text goes to the best-matching skill; weak matches go to the
default skill; the reason lands in the ledger; the same input always takes the same route."""

from __future__ import annotations

import random

import pytest
from sqlmodel import select

from bot.core.routing import MIN_SCORE, Router, words
from bot.core.skills import Skill
from bot.core.types import Request
from bot.ledger.models import RequestRow
from tests.paths import TESTS

DEFAULT = Skill(name="ask", description="Answer general questions from the handbook", instructions="x")
TRANSLATE = Skill(
    name="translate",
    description="Translate text between languages such as French, German and Spanish for the team",
    instructions="x",
    examples=("Translate this paragraph to French", "How do you say invoice in German?"),
)
SQL = Skill(
    name="sql-helper",
    description="Write and explain SQL queries against the analytics warehouse for the team",
    instructions="x",
    examples=("Write a query joining orders and customers", "Why is my SQL query slow?"),
)
STANDUP = Skill(
    name="standup",
    description="Turn standup notes into a weekly status update",
    instructions="x",
    examples=("Summarize my standup notes", "Draft the weekly status update from these notes"),
)
SKILLS = [DEFAULT, TRANSLATE, SQL, STANDUP]


@pytest.fixture
def router() -> Router:
    return Router(SKILLS, default="ask")


def test_words_drop_stopwords_and_stem() -> None:
    assert words("How do I get the VPN tokens?") == ["vpn", "token"]
    assert words("Translating queries") == ["translat", "query"]


@pytest.mark.parametrize(
    ("text", "skill", "shared"),
    [
        ("Please translate 'good morning' into German", "translate", "german"),
        ("Write a SQL query that counts orders per customer", "sql-helper", "sql"),
        ("Summarize these standup notes for me", "standup", "standup"),
        ("Draft a weekly status update", "standup", "weekly"),
    ],
)
def test_free_text_goes_to_the_best_matching_skill(
    router: Router, text: str, skill: str, shared: str
) -> None:
    route = router.route(text)
    assert route.skill == skill
    assert route.score >= MIN_SCORE
    assert route.reason.startswith("matched ")
    assert shared in route.reason
    assert f"(score {route.score:.2f})" in route.reason


def test_explicit_skill_wins_over_a_strong_match(router: Router) -> None:
    route = router.route("Translate this paragraph to French", explicit="sql-helper", explicit_via="--skill")
    assert route.skill == "sql-helper"
    assert route.reason == "--skill: sql-helper"


def test_no_match_falls_back_to_default(router: Router) -> None:
    route = router.route("What's the weather like on Mars?")
    assert route.skill == "ask"
    assert route.reason == "default skill: no strong match"


def test_weak_match_falls_back_to_default(router: Router) -> None:
    # "team" appears in two skills' descriptions: a shared word, but no evidence of intent.
    ranked = router.score("the team")
    assert ranked[0][1] < MIN_SCORE
    route = router.route("the team")
    assert route.skill == "ask"
    assert route.reason.startswith("default skill: no strong match")
    assert router.route("Translate this paragraph to German").skill == "translate"


def test_tie_between_two_skills_goes_to_default() -> None:
    a = Skill(name="alpha", description="zorblax quuxify", instructions="x")
    b = Skill(name="beta", description="zorblax quuxify", instructions="x")
    c = Skill(name="gamma", description="unrelated", instructions="x")
    router = Router([DEFAULT, a, b, c], default="ask")
    ranked = router.score("zorblax quuxify")
    assert ranked[0][1] == ranked[1][1] >= MIN_SCORE
    assert router.route("zorblax quuxify").skill == "ask"


def test_routing_is_deterministic(router: Router) -> None:
    texts = [
        "Please translate 'good morning' into German",
        "Write a SQL query that counts orders per customer",
        "the team",
        "nothing relevant at all",
        "standup notes translate SQL",
    ]
    expected = [router.route(t) for t in texts]
    for _ in range(20):
        assert [router.route(t) for t in texts] == expected
    # Independent of the order skills were registered in.
    shuffled = SKILLS[:]
    random.Random(7).shuffle(shuffled)
    other = Router(list(reversed(shuffled)), default="ask")
    assert [other.route(t) for t in texts] == expected


# ---------------------------------------------------------------------------------------------
# Through the engine: the reason is recorded in the ledger


INSTRUCTIONS = {
    "zorb-report": "You compile zorblax digests.",
    "quux-audit": "You audit quuxification ledgers.",
    "flurb-plan": "You plan flurbington migrations.",
}


@pytest.fixture
def routed_engine(make_engine):
    return make_engine(skill_dirs=[TESTS / "skill_sources" / "routing"])


def _row(engine, request_id: str) -> RequestRow:
    row = engine.ledger.get_request(request_id)
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("text", "skill", "word"),
    [
        ("Please compile the zorblax digest", "zorb-report", "zorblax"),
        ("audit our quuxification ledger", "quux-audit", "quuxification"),
        ("we need to plan a flurbington migration", "flurb-plan", "flurbington"),
    ],
)
def test_engine_routes_free_text_and_records_reason(routed_engine, script, text, skill, word) -> None:
    reply = routed_engine.handle(Request(text=text))
    assert reply.ok, reply.text
    assert reply.skill == skill
    row = _row(routed_engine, reply.request_id)
    assert row.skill == skill
    assert row.route_reason.startswith("matched ")
    assert word in row.route_reason
    assert row.route_reason.endswith("tier small (skill default)")
    # The model was called with that skill's instructions.
    system = script.calls[-1][1][0]
    assert system["role"] == "system"
    assert system["content"].startswith(INSTRUCTIONS[skill])


def test_engine_weak_match_goes_to_default_and_reason_says_so(routed_engine) -> None:
    reply = routed_engine.handle(Request(text="qwxz vbnm plok"))
    assert reply.ok
    assert reply.skill == "ask"
    assert _row(routed_engine, reply.request_id).route_reason.startswith("default skill: no strong match")


def test_engine_explicit_skill_wins_and_reason_names_it(routed_engine) -> None:
    reply = routed_engine.handle(
        Request(text="Please compile the zorblax digest", skill="flurb-plan", explicit_via="--skill")
    )
    assert reply.skill == "flurb-plan"
    assert _row(routed_engine, reply.request_id).route_reason.startswith("--skill: flurb-plan; tier small")
    by_command = routed_engine.handle(Request(text="zorblax", skill="/quux-audit", explicit_via="slash"))
    assert by_command.skill == "quux-audit"
    assert _row(routed_engine, by_command.request_id).route_reason.startswith("slash: quux-audit")


def test_engine_routing_is_deterministic(routed_engine) -> None:
    texts = [
        "Please compile the zorblax digest",
        "audit our quuxification ledger",
        "qwxz",
        "plan the flurbington migration",
    ]
    first = [routed_engine.handle(Request(text=t)).skill for t in texts]
    second = [routed_engine.handle(Request(text=t)).skill for t in texts]
    assert first == second == ["zorb-report", "quux-audit", "ask", "flurb-plan"]
    with routed_engine.ledger.session() as s:
        reasons = [r.route_reason for r in s.exec(select(RequestRow).order_by(RequestRow.created_at))]
    assert reasons[:4] == reasons[4:]
