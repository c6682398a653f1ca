"""Routing over the golden sets: free text (no explicit skill) should reach the skill the case was
written for. Deterministic, so the figures are exact for a given set of declarations."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bot.evals.runner import evals_dir

SKILLS = ("ask", "label-email", "triage-alert", "hunt", "write-report", "summarize")


@pytest.fixture(scope="module")
def router():
    # Built from the real registry and packs, without an engine: routing needs no database.
    from bot.config import DEFAULT_TIER_NAMES
    from bot.context.packs import builtin_packs_dir, load_packs
    from bot.core.routing import Router
    from bot.core.skills import load_registry

    packs, _ = load_packs([builtin_packs_dir()])
    return Router(load_registry(DEFAULT_TIER_NAMES, packs))


def _inputs(skill: str) -> list[str]:
    path = evals_dir() / f"{skill}.jsonl"
    return [json.loads(line)["input"] for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("skill", "floor"),
    [
        ("ask", 0.95),
        ("label-email", 0.95),
        ("triage-alert", 0.95),
        ("write-report", 0.8),
        ("summarize", 0.7),
        ("hunt", 0.7),
    ],
)
def test_golden_inputs_route_to_their_skill(router, skill: str, floor: float) -> None:
    inputs = _inputs(skill)
    routed = Counter(router.route(text).skill for text in inputs)
    share = routed[skill] / len(inputs)
    assert share >= floor, f"{skill}: {routed[skill]}/{len(inputs)} routed home; elsewhere: {dict(routed)}"


def test_routing_overall_accuracy(router) -> None:
    total = hits = 0
    for skill in SKILLS:
        for text in _inputs(skill):
            total += 1
            hits += router.route(text).skill == skill
    assert hits / total >= 0.88, f"{hits}/{total}"


def test_questions_about_email_go_to_ask_not_label_email(router) -> None:
    route = router.route("got a weird email saying my payroll account is suspended. how do I report it?")
    assert route.skill == "ask"
    assert (
        router.route("From: billing@acme.example\nSubject: invoice 42 overdue\n\nPlease pay.").skill
        == "label-email"
    )
