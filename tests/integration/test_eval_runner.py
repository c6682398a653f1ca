"""`tierwise eval`: loading golden sets, running them on tiers, the judge for open skills, the stored
runs and results, and the CLI (JSON and table) against an OpenAI-compatible fake with priced tiers."""

from __future__ import annotations

import json
import logging
import random
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from bot.app import build_engine
from bot.config import load_settings
from bot.evals import judge
from bot.evals.runner import EvalCase, load_cases, run_eval
from bot.ledger.models import EvalResult, EvalRun, RequestRow
from bot.pipeline.engine import Engine
from tests.conftest import Script
from tests.paths import TESTS

DATA = TESTS / "data" / "evals"
SMALL_SET = DATA / "label-email-small.jsonl"

# Prices (USD per token) and fixed usage: every scripted call costs exactly this much.
CHEAP = {"in": 1e-6, "out": 2e-6}
PRICEY = {"in": 1e-5, "out": 3e-5}
PROMPT_TOKENS, COMPLETION_TOKENS = 1000, 40
CHEAP_CALL = PROMPT_TOKENS * CHEAP["in"] + COMPLETION_TOKENS * CHEAP["out"]  # 0.00108
PRICEY_CALL = PROMPT_TOKENS * PRICEY["in"] + COMPLETION_TOKENS * PRICEY["out"]  # 0.0112


def _label(category: str, priority: str, team: str) -> str:
    return json.dumps({"category": category, "priority": priority, "team": team, "reason": "Scripted."})


RIGHT = {
    "le-a": _label("billing", "normal", "finance-billing"),
    "le-b": _label("phishing", "high", "security-ops"),
    "le-c": _label("it-request", "normal", "it-helpdesk"),
}
# The cheap model gets le-a right, mislabels the critical phishing case, and answers le-c in prose.
CHEAP_ANSWERS = {"le-a": RIGHT["le-a"], "le-b": _label("spam", "low", "none"), "le-c": "It is an IT request."}
# Latencies (seconds) for the cheap model, so its p50 is known: the middle one is 0.1 s.
CHEAP_SLEEP = {"le-a": 0.2, "le-b": 0.0, "le-c": 0.1}


def _case_id(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    for case in load_cases(SMALL_SET)[0]:
        if case.input.strip() == user.strip():
            return case.id
    raise AssertionError(f"unexpected request: {user[:80]!r}")


def _fake_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The fake server's answer: by model and by which golden case the request carries."""
    case = _case_id(body)
    if body["model"] == "cheap":
        content, sleep = CHEAP_ANSWERS[case], CHEAP_SLEEP[case]
    elif body["model"] == "pricey":
        content, sleep = RIGHT[case], 0.0
    else:
        raise AssertionError(f"unexpected model {body['model']!r}")
    return {
        "content": content,
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "sleep": sleep,
    }


def _tier(model: str, url: str, price: dict[str, float]) -> dict[str, Any]:
    return {
        "model": f"openai/{model}",
        "api_base": url,
        "input_cost_per_token": price["in"],
        "output_cost_per_token": price["out"],
        "max_retries": 0,
        "timeout": 20,
    }


@pytest.fixture
def priced(fake_openai: Any) -> Engine:
    """An engine whose small and medium tiers are priced models on the fake server (large stays embedded)."""
    fake_openai.default = _fake_answer
    settings = load_settings(
        tiers={
            "small": _tier("cheap", fake_openai.url, CHEAP),
            "medium": _tier("pricey", fake_openai.url, PRICEY),
        }
    )
    return build_engine(settings)


def _runs(engine: Engine) -> list[EvalRun]:
    with engine.ledger.session() as s:
        return list(s.exec(select(EvalRun)))


def _results(engine: Engine, run_id: str) -> dict[str, EvalResult]:
    with engine.ledger.session() as s:
        return {r.case_id: r for r in s.exec(select(EvalResult).where(EvalResult.run_id == run_id))}


def _requests(engine: Engine) -> list[RequestRow]:
    with engine.ledger.session() as s:
        return list(s.exec(select(RequestRow)))


# load_cases ------------------------------------------------------------------------------------


def test_load_cases_reports_broken_lines_and_loads_the_rest(tmp_path: Path) -> None:
    bad_json = '{"id": "b", "input": "x", "expected": '
    lines = [
        '{"id": "a", "input": "hello", "expected": {"category": "billing"}}',
        bad_json,
        "",
        '{"id": "c", "expected": {"category": "spam"}}',
        '{"id": "a", "input": "again", "expected": {"category": "spam"}}',
        '{"id": "d", "input": "   ", "rubric": "r"}',
        '["not", "an", "object"]',
        '{"id": "e", "input": "y", "expected": ["category"]}',
        '{"id": "f", "input": "z"}',
        '{"input": "no id", "rubric": "be kind", "reference": "ref", "critical": true}',
        '{"id": "g", "input": "last", "expected": {"team": "sales"}, "critical": false}',
        '{"id": 7, "input": "numeric id", "rubric": "r"}',
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        json.loads(bad_json)
    except ValueError as exc:
        json_error = str(exc)

    cases, problems = load_cases(path)

    assert problems == [
        f"set.jsonl line 2: {json_error}",
        "set.jsonl line 4: 'input' must be a non-empty string",
        "set.jsonl line 5: duplicate id 'a'",
        "set.jsonl line 6: 'input' must be a non-empty string",
        "set.jsonl line 7: a line must be a JSON object",
        "set.jsonl line 8: 'expected' must be an object",
        "set.jsonl line 9: a case needs 'expected' fields or a 'rubric'",
    ]
    assert cases == [
        EvalCase(id="a", input="hello", line=1, expected={"category": "billing"}),
        EvalCase(id="line-10", input="no id", line=10, critical=True, rubric="be kind", reference="ref"),
        EvalCase(id="g", input="last", line=11, expected={"team": "sales"}),
        EvalCase(id="7", input="numeric id", line=12, rubric="r"),
    ]


def test_load_cases_of_the_small_test_set() -> None:
    cases, problems = load_cases(SMALL_SET)
    assert problems == []
    assert [(c.id, c.critical) for c in cases] == [("le-a", False), ("le-b", True), ("le-c", False)]


# run_eval with priced tiers ----------------------------------------------------------------------


def test_run_eval_summaries_and_stored_rows(priced: Engine, fake_openai: Any) -> None:
    cases, _ = load_cases(SMALL_SET)
    seen: list[tuple[str, str]] = []

    small, medium = run_eval(
        priced, "label-email", ["small", "medium"], cases, on_case=lambda t, c: seen.append((t, c.id))
    )

    assert seen == [(t, c) for t in ("small", "medium") for c in ("le-a", "le-b", "le-c")]
    assert [r["model"] for r in fake_openai.requests] == ["cheap"] * 3 + ["pricey"] * 3  # no escalation

    # small: 1 of 3, the critical phishing case failed, the prose answer is invalid (not an error)
    assert (small.skill, small.tier, small.model) == ("label-email", "small", "openai/cheap")
    assert (small.cases, small.passed, small.critical_failures, small.errors) == (3, 1, 1, 0)
    assert small.pass_rate == pytest.approx(1 / 3)
    assert small.mean_cost_usd == pytest.approx(CHEAP_CALL, rel=1e-12)
    assert small.judge_cost_usd == 0.0
    by_case = {o.case.id: o for o in small.outcomes}
    assert [o.passed for o in small.outcomes] == [True, False, False]
    assert by_case["le-a"].detail == "all fields match"
    assert by_case["le-a"].score == 1.0
    assert by_case["le-b"].detail == (
        "category: expected 'phishing', got 'spam'; priority: expected 'high', got 'low'; "
        "team: expected 'security-ops', got 'none'"
    )
    assert by_case["le-b"].score == 0.0
    assert by_case["le-c"].detail == (
        "invalid: Sorry: I could not produce a valid label-email answer (tried small). "
        f"An admin can see the details under request {by_case['le-c'].request_id}."
    )
    assert by_case["le-c"].error is False
    assert by_case["le-c"].cost_usd == pytest.approx(CHEAP_CALL, rel=1e-12)  # an invalid answer still costs

    # p50 latency: the median of the three cases, whose middle one slept 0.1 s
    latencies = [o.latency_ms for o in small.outcomes]
    assert small.p50_latency_ms == round(statistics.median(latencies))
    assert 100 <= small.p50_latency_ms < 200
    assert by_case["le-a"].latency_ms >= 200

    # medium: 3 of 3 at a higher price
    assert (medium.tier, medium.model) == ("medium", "openai/pricey")
    assert (medium.cases, medium.passed, medium.critical_failures, medium.errors) == (3, 3, 0, 0)
    assert medium.pass_rate == 1.0
    assert medium.mean_cost_usd == pytest.approx(PRICEY_CALL, rel=1e-12)

    assert small.as_dict() == {
        "run_id": small.run_id,
        "skill": "label-email",
        "tier": "small",
        "model": "openai/cheap",
        "cases": 3,
        "passed": 1,
        "pass_rate": 0.3333,
        "critical_failures": 1,
        "errors": 0,
        "mean_cost_usd": small.mean_cost_usd,
        "judge_cost_usd": 0.0,
        "p50_latency_ms": small.p50_latency_ms,
        "failed_cases": ["le-b", "le-c"],
    }

    # Stored runs
    runs = {r.tier: r for r in _runs(priced)}
    assert set(runs) == {"small", "medium"}
    run = runs["small"]
    assert run.id == small.run_id
    assert (run.skill, run.model, run.judge_tier) == ("label-email", "openai/cheap", None)
    assert run.pack_hash == f"email-taxonomy@{priced.packs['email-taxonomy'].hash}"
    assert (run.cases, run.passed, run.critical_failures, run.errors) == (3, 1, 1, 0)
    assert run.total_cost_usd == pytest.approx(3 * CHEAP_CALL, rel=1e-12)
    assert run.judge_cost_usd == 0.0
    assert run.p50_latency_ms == small.p50_latency_ms
    assert run.pass_rate == pytest.approx(1 / 3)
    assert (runs["medium"].passed, runs["medium"].total_cost_usd) == (3, pytest.approx(3 * PRICEY_CALL))

    # Stored results, each linked to the request it came from
    results = _results(priced, small.run_id)
    assert set(results) == {"le-a", "le-b", "le-c"}
    assert [(results[c].passed, results[c].critical) for c in ("le-a", "le-b", "le-c")] == [
        (True, False),
        (False, True),
        (False, False),
    ]
    assert json.loads(results["le-a"].output) == json.loads(RIGHT["le-a"])
    assert results["le-c"].output == by_case["le-c"].detail.removeprefix("invalid: ")
    assert results["le-b"].detail == by_case["le-b"].detail
    assert results["le-a"].cost_usd == pytest.approx(CHEAP_CALL, rel=1e-12)
    assert results["le-a"].latency_ms == by_case["le-a"].latency_ms
    requests = {r.id: r for r in _requests(priced)}
    assert len(requests) == 6
    for case_id, result in results.items():
        row = requests[result.request_id]
        assert (row.purpose, row.source, row.user_id, row.tier, row.skill) == (
            "eval",
            "eval",
            "eval",
            "small",
            "label-email",
        ), case_id
        assert (row.prompt_tokens, row.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
        assert row.price_source == "tier-config"
        assert row.escalated_from is None
    assert requests[results["le-c"].request_id].status == "invalid"
    assert len(_results(priced, medium.run_id)) == 3


def test_run_eval_counts_model_errors(priced: Engine, fake_openai: Any) -> None:
    fake_openai.default = {"content": "upstream exploded", "status": 500}
    cases, _ = load_cases(SMALL_SET)
    [summary] = run_eval(priced, "label-email", ["small"], cases[:2])
    assert (summary.cases, summary.passed, summary.errors, summary.critical_failures) == (2, 0, 2, 1)
    assert all(
        o.detail.startswith("error: Sorry: the model provider had an internal error.")
        for o in summary.outcomes
    )
    assert _runs(priced)[0].errors == 2


# The judge for open skills -----------------------------------------------------------------------

REFERENCE = "Request ZPA-Standard in Okta; your manager approves; IT assigns it within 1 business day."
OPEN_CASES = [
    EvalCase(id=f"ask-{i}", input=q, line=i, rubric="Mentions ZPA and Okta.", reference=REFERENCE)
    for i, q in enumerate(
        [
            "How do I get VPN access?",
            "What is the hotel cap in Toronto?",
            "Can I expense a monitor?",
            "Who do I page for a SEV1 at night?",
        ],
        start=1,
    )
]


def _between(text: str, tag: str) -> str:
    return text.split(f"<{tag}>\n", 1)[1].split(f"\n</{tag}>", 1)[0]


class Judge:
    """A scripted judge on the large tier; the skill's own answers come from the small tier."""

    def __init__(self, rubric: Any, pair: str = "tie") -> None:
        self.rubric = rubric  # a reply, or a list of replies in order
        self.pair = pair  # "reference" | "candidate" | "tie" | raw text
        self.reference_positions: list[str] = []
        self.rubric_calls = 0

    def __call__(self, tier: str, messages: list[dict[str, Any]]) -> str:
        system, user = messages[0]["content"], messages[-1]["content"]
        if system == judge.RUBRIC_SYSTEM:
            assert tier == "large"
            assert _between(user, "answer") == f"Answer to: {_between(user, 'request')}"
            self.rubric_calls += 1
            reply = self.rubric if isinstance(self.rubric, str) else self.rubric[self.rubric_calls - 1]
            return reply
        if system == judge.PAIR_SYSTEM:
            assert tier == "large"
            first, second = _between(user, "answer_1"), _between(user, "answer_2")
            assert REFERENCE in (first, second)
            position = "1" if first == REFERENCE else "2"
            self.reference_positions.append(position)
            if self.pair == "reference":
                return json.dumps({"winner": position, "reason": "the reference is complete"})
            if self.pair == "candidate":
                return json.dumps({"winner": "2" if position == "1" else "1", "reason": "clearer"})
            if self.pair == "tie":
                return json.dumps({"winner": "tie", "reason": "equivalent"})
            return self.pair
        assert tier == "small", "the skill runs on the tier under evaluation"
        # On the embedded tier the excerpt leads the user turn and the question ends it (issue 14).
        return f"Answer to: {user.rsplit(chr(10) * 2 + 'Question: ', 1)[-1]}"


def _open_engine(make_engine: Any, judge_script: Judge) -> Engine:
    return make_engine(mock=Script(default=judge_script))


def test_rubric_5_passes_without_a_pairwise_call(make_engine: Any) -> None:
    script = Judge(json.dumps({"score": 5, "reason": "covers every point"}))
    engine = _open_engine(make_engine, script)

    [summary] = run_eval(engine, "ask", ["small"], OPEN_CASES[:2], judge_tier="large")

    assert summary.passed == 2
    assert [o.detail for o in summary.outcomes] == ["rubric 5/5: covers every point"] * 2
    assert [o.score for o in summary.outcomes] == [1.0, 1.0]
    assert script.reference_positions == []
    [run] = _runs(engine)
    assert run.judge_tier == "large"
    judge_rows = [r for r in _requests(engine) if r.source == "judge"]
    assert len(judge_rows) == 2
    assert {(r.tier, r.purpose, r.skill) for r in judge_rows} == {("large", "eval", "ask")}


def test_rubric_scores_4_pass_2_fail_and_out_of_range_is_clamped(make_engine: Any) -> None:
    script = Judge(
        [
            json.dumps({"score": 4, "reason": "minor gaps"}),
            json.dumps({"score": 2, "reason": "mostly wrong"}),
            '```json\n{"score": 9, "reason": "generous"}\n```',
            json.dumps({"score": "1", "reason": "empty"}),
        ]
    )
    engine = _open_engine(make_engine, script)
    [summary] = run_eval(engine, "ask", ["small"], OPEN_CASES, judge_tier="large")
    assert [(o.passed, o.score, o.detail) for o in summary.outcomes] == [
        (True, 0.8, "rubric 4/5: minor gaps"),
        (False, 0.4, "rubric 2/5: mostly wrong"),
        (True, 1.0, "rubric 5/5: generous"),
        (False, 0.2, "rubric 1/5: empty"),
    ]
    assert script.reference_positions == []  # only a 3 is compared with the reference


@pytest.mark.parametrize(
    ("pair", "passed", "outcome"),
    [("reference", False, "loss"), ("candidate", True, "win"), ("tie", True, "tie")],
)
def test_rubric_3_is_settled_against_the_reference_in_both_orders(
    make_engine: Any, pair: str, passed: bool, outcome: str
) -> None:
    script = Judge(json.dumps({"score": 3, "reason": "partly"}), pair=pair)
    engine = _open_engine(make_engine, script)

    [summary] = run_eval(engine, "ask", ["small"], OPEN_CASES, judge_tier="large", seed=0)

    # random.Random(0) swaps the 3rd and 4th comparisons: the reference is shown in both positions.
    assert script.reference_positions == ["2", "2", "1", "1"]
    assert [o.passed for o in summary.outcomes] == [passed] * 4
    assert [o.detail for o in summary.outcomes] == [f"rubric 3/5: partly; vs reference: {outcome}"] * 4
    assert [o.score for o in summary.outcomes] == [0.6] * 4
    assert summary.passed == (4 if passed else 0)


def test_pairwise_order_follows_the_seed(make_engine: Any) -> None:
    script = Judge(json.dumps({"score": 3, "reason": "partly"}), pair="candidate")
    engine = _open_engine(make_engine, script)
    run_eval(engine, "ask", ["small"], OPEN_CASES, judge_tier="large", seed=7)
    rng = random.Random(7)
    assert script.reference_positions == ["1" if rng.random() < 0.5 else "2" for _ in OPEN_CASES]


def test_judge_reply_that_is_not_json_fails_the_case(make_engine: Any) -> None:
    script = Judge(["I'd give it a solid four out of five.", json.dumps({"reason": "no score"})])
    engine = _open_engine(make_engine, script)
    [summary] = run_eval(engine, "ask", ["small"], OPEN_CASES[:2], judge_tier="large")
    assert [(o.passed, o.score, o.detail) for o in summary.outcomes] == [
        (False, 0.0, "the judge's reply was not a JSON score"),
        (False, 0.0, "the judge's reply was not a JSON score"),
    ]
    assert summary.errors == 0  # the answer itself was fine; the verdict is missing


def test_pairwise_reply_that_is_not_json_fails_the_case(make_engine: Any) -> None:
    script = Judge(json.dumps({"score": 3, "reason": "partly"}), pair="Answer 1 is better.")
    engine = _open_engine(make_engine, script)
    [summary] = run_eval(engine, "ask", ["small"], OPEN_CASES[:1], judge_tier="large")
    [outcome] = summary.outcomes
    assert (outcome.passed, outcome.detail) == (False, "rubric 3/5: partly; vs reference: error")


def test_default_judge_is_the_last_tier(make_engine: Any) -> None:
    script = Judge(json.dumps({"score": 5, "reason": "fine"}))
    engine = _open_engine(make_engine, script)
    [summary] = run_eval(engine, "ask", ["small"], OPEN_CASES[:1])
    assert summary.passed == 1
    assert _runs(engine)[0].judge_tier == "large"


def test_fractional_rubric_score_detail_agrees_with_the_verdict(make_engine: Any) -> None:
    # The judge is asked for 1-5 but may answer 3.5: halves round down to 3, so the reference comparison
    # decides; here the reference wins, so the case fails.
    script = Judge(json.dumps({"score": 3.5, "reason": "between partly and minor gaps"}), pair="reference")
    engine = _open_engine(make_engine, script)
    [summary] = run_eval(engine, "ask", ["small"], OPEN_CASES[:1], judge_tier="large")
    [outcome] = summary.outcomes
    assert outcome.passed is False
    assert outcome.score == 0.6
    assert outcome.detail.startswith("rubric 3/5"), outcome.detail
    # A failed case must not be explained with a passing score ("rubric 4/5").
    assert not outcome.detail.startswith(("rubric 4/5", "rubric 5/5")), outcome.detail


def test_eval_of_a_sensitive_skill_is_not_attributed_to_a_tier_it_did_not_run_on(make_engine: Any) -> None:
    """triage-alert is sensitive: an external tier is never called, the engine moves it to a local tier.
    A run stored as "medium / openai/pricey" must then really hold medium's answers, or not be stored."""
    triage = {
        "severity": "low",
        "techniques": ["T1566.002"],
        "false_positive_likelihood": "low",
        "false_positive_reason": "Lookalike domain.",
        "runbook": "RB-PHISH",
        "next_steps": ["Pull the message"],
        "summary": "Reported phishing, not clicked.",
    }
    script = Script(default=json.dumps(triage))
    engine = make_engine(
        mock=script, tiers={"medium": {"model": "openai/pricey", "api_base": "http://127.0.0.1:9/v1"}}
    )
    assert engine.settings.tiers["medium"].boundary == "external"
    case = EvalCase(
        id="ta-x",
        input='{"alert": "User reported phishing", "clicked": false}',
        line=1,
        expected={"severity": "low", "techniques": ["T1566"], "runbook": "RB-PHISH"},
    )

    try:
        summaries = run_eval(engine, "triage-alert", ["medium"], [case])
    except ValueError:  # refusing to evaluate a tier the skill may not use is a correct answer too
        assert _runs(engine) == []
        return

    assert [tier for tier, _ in script.calls] == ["small"]  # the external tier was (rightly) not called
    requests = {r.id: r for r in _requests(engine)}
    for summary in summaries:
        for outcome in summary.outcomes:
            row = requests[outcome.request_id]
            assert (row.tier, row.model_requested) == (summary.tier, summary.model), (
                f"eval run says {summary.tier}/{summary.model}, the case ran on {row.tier}/{row.model_requested}"
            )


class FixedRng(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(("draw", "a_position"), [(0.9, "1"), (0.1, "2")], ids=["kept", "swapped"])
@pytest.mark.parametrize(("winner", "expected"), [("1", None), ("2", None), ("tie", "tie")])
def test_pairwise_maps_the_verdict_back_to_answer_a(
    make_engine: Any, draw: float, a_position: str, winner: str, expected: str | None
) -> None:
    shown: list[str] = []

    def reply(tier: str, messages: list[dict[str, Any]]) -> str:
        shown.append(messages[-1]["content"])
        return json.dumps({"winner": winner, "reason": "scripted"})

    engine = make_engine(mock=reply)
    verdict = judge.pairwise(engine, "large", "ask", "q", "ANSWER A", "ANSWER B", rng=FixedRng(draw))

    assert _between(shown[0], f"answer_{a_position}") == "ANSWER A"
    if expected is None:
        expected = "win" if winner == a_position else "loss"
    assert verdict.outcome == expected
    assert verdict.reason == "scripted"
    assert verdict.score is None


def test_judge_cost_is_counted_separately(fake_openai: Any) -> None:
    """An open skill on a priced tier, judged by a priced tier: answer and judge costs are exact."""

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        system = body["messages"][0]["content"]
        if body["model"] == "judge":
            content = (
                json.dumps({"score": 3, "reason": "partly"})
                if system == judge.RUBRIC_SYSTEM
                else json.dumps({"winner": "tie", "reason": "same"})
            )
            return {"content": content, "prompt_tokens": 500, "completion_tokens": 20}
        return {"content": "Use ZPA.", "prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS}

    fake_openai.default = answer
    judge_price = {"in": 2e-6, "out": 4e-6}
    engine = build_engine(
        load_settings(
            tiers={
                "small": _tier("cheap", fake_openai.url, CHEAP),
                "judge": _tier("judge", fake_openai.url, judge_price),
            }
        )
    )
    [summary] = run_eval(engine, "ask", ["small"], OPEN_CASES[:2], judge_tier="judge")

    judge_call = 500 * judge_price["in"] + 20 * judge_price["out"]
    assert summary.passed == 2
    assert summary.mean_cost_usd == pytest.approx(CHEAP_CALL, rel=1e-12)
    assert summary.judge_cost_usd == pytest.approx(2 * 2 * judge_call, rel=1e-12)  # rubric + pairwise, twice
    assert [o.judge_cost_usd for o in summary.outcomes] == [pytest.approx(2 * judge_call)] * 2
    [run] = _runs(engine)
    assert run.total_cost_usd == pytest.approx(2 * CHEAP_CALL, rel=1e-12)
    assert run.judge_cost_usd == pytest.approx(4 * judge_call, rel=1e-12)
    assert run.judge_tier == "judge"


# CLI ----------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(fake_openai: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """Two priced tiers on the fake server, configured the way an operator would: environment variables."""
    fake_openai.default = _fake_answer
    for tier, model, price in (("SMALL", "cheap", CHEAP), ("MEDIUM", "pricey", PRICEY)):
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__MODEL", f"openai/{model}")
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__API_BASE", fake_openai.url)
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__INPUT_COST_PER_TOKEN", str(price["in"]))
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__OUTPUT_COST_PER_TOKEN", str(price["out"]))
        monkeypatch.setenv(f"TIERWISE_TIERS__{tier}__MAX_RETRIES", "0")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield CliRunner()
    root.handlers[:] = handlers  # the CLI installs a stderr handler bound to the runner's stream
    root.setLevel(level)


def _cli(runner: CliRunner, *args: str) -> Any:
    from bot.adapters.cli import app

    return runner.invoke(app, list(args), catch_exceptions=False)


def test_cli_eval_json_compares_tiers(cli_env: CliRunner, fake_openai: Any) -> None:
    result = _cli(
        cli_env,
        "eval",
        "--skill",
        "label-email",
        "--tiers",
        "small,medium",
        "--file",
        str(SMALL_SET),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert [(r["tier"], r["model"]) for r in runs] == [("small", "openai/cheap"), ("medium", "openai/pricey")]
    small, medium = runs
    figures = [
        {k: r[k] for k in ("cases", "passed", "pass_rate", "critical_failures", "errors")} for r in runs
    ]
    assert figures == [
        {"cases": 3, "passed": 1, "pass_rate": 0.3333, "critical_failures": 1, "errors": 0},
        {"cases": 3, "passed": 3, "pass_rate": 1.0, "critical_failures": 0, "errors": 0},
    ]
    assert small["mean_cost_usd"] == pytest.approx(CHEAP_CALL, rel=1e-12)
    assert medium["mean_cost_usd"] == pytest.approx(PRICEY_CALL, rel=1e-12)
    assert small["failed_cases"] == ["le-b", "le-c"]
    assert medium["failed_cases"] == []
    assert 100 <= small["p50_latency_ms"] < 200
    assert len(fake_openai.requests) == 6

    # The runs are in the ledger the CLI used.
    from bot.ledger.store import Ledger

    ledger = Ledger(load_settings().effective_database_url)
    with ledger.session() as s:
        stored = {r.id: r for r in s.exec(select(EvalRun))}
    assert set(stored) == {small["run_id"], medium["run_id"]}
    assert stored[small["run_id"]].passed == 1


def test_cli_eval_table(cli_env: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "label-email-broken.jsonl"
    broken.write_text(
        SMALL_SET.read_text(encoding="utf-8") + '{"id": "le-x", "input": ""}\n', encoding="utf-8"
    )

    result = _cli(cli_env, "eval", "-s", "label-email", "--tiers", "small,medium", "--file", str(broken))

    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "eval: label-email" in out
    header = next(line for line in out.splitlines() if "pass rate" in line)
    for column in ("tier", "model", "cases", "critical failures", "mean cost/case", "p50 latency", "run"):
        assert column in header
    small = next(line for line in out.splitlines() if "openai/cheap" in line)
    medium = next(line for line in out.splitlines() if "openai/pricey" in line)
    assert "33% (1/3)" in small and f"${CHEAP_CALL:.6f}" in small  # $0.001080
    assert "100% (3/3)" in medium and f"${PRICEY_CALL:.6f}" in medium  # $0.011200
    assert small.split("│")[1].strip() == "small"
    assert small.split("│")[5].strip() == "1"  # one critical failure
    assert "warning: label-email-broken.jsonl line 4: 'input' must be a non-empty string" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--skill", "nope"], "tierwise: unknown skill nope. Valid skills: "),
        (
            ["--skill", "label-email", "--tiers", "small,huge"],
            "tierwise: unknown tier huge. Valid tiers: small, medium, large",
        ),
        (["--skill", "label-email", "--judge", "oracle"], "tierwise: unknown tier oracle. Valid tiers: "),
        (
            ["--skill", "label-email", "--skill", "ask", "--file", str(SMALL_SET)],
            "--file needs exactly one --skill",
        ),
    ],
    ids=["unknown-skill", "unknown-tier", "unknown-judge", "file-needs-one-skill"],
)
def test_cli_eval_rejects_bad_arguments(
    cli_env: CliRunner, fake_openai: Any, args: list[str], message: str
) -> None:
    result = _cli(cli_env, "eval", *args, "--json")
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""
    assert fake_openai.requests == []


def test_key_fact_recall_and_right_source_rate_are_reported_per_tier(make_engine: Any) -> None:
    """Deterministic grounding scores beside the judge's (issue 14): no judge needed for them."""
    engine = _open_engine(make_engine, Judge(json.dumps({"score": 5, "reason": "fine"})))
    cases = [
        EvalCase(
            id="vpn",
            input="How do I get VPN access?",
            line=1,
            rubric="r",
            key_facts=("VPN access", "ZPA|Zscaler Private Access"),
            sources=("it/vpn-access.md",),
        ),
        EvalCase(
            id="vpn-wrong-doc",
            input="How do I get VPN access?",
            line=2,
            rubric="r",
            key_facts=("vpn",),
            sources=("hr/benefits.md",),
        ),
    ]
    [summary] = run_eval(engine, "ask", ["small"], cases, judge_tier="large")
    # "Answer to: How do I get VPN access?" states "VPN access" but not ZPA.
    assert [o.recall for o in summary.outcomes] == [0.5, 1.0]
    assert [o.source_ok for o in summary.outcomes] == [True, False]
    assert summary.key_fact_recall == 0.75
    assert summary.right_source_rate == 0.5
    assert summary.as_dict()["key_fact_recall"] == 0.75
    assert summary.outcomes[0].detail.endswith("; key facts 50%; source right")
