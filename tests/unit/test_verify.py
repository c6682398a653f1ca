"""Verifiers in the pipeline: run on every structured answer, a failed one escalates once, the outcome
and the structured-output mode land on the ledger row, and `tierwise usage` shows the pass rates."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlmodel import select
from typer.testing import CliRunner

from bot.core.types import Request
from bot.core.verify import Check, Verdict, VerifyContext, run_verifiers
from bot.ledger.models import RequestRow
from bot.ledger.verification import verified_rates
from bot.pipeline.engine import Engine
from tests.paths import ROOT, TESTS

SKILLS = TESTS / "skill_sources" / "verify"

GOOD = json.dumps({"items": ["a", "b"], "total": 2})
BAD = json.dumps({"items": ["a", "b"], "total": 3})


@pytest.fixture
def eng(make_engine: Any) -> Engine:
    return make_engine(skill_dirs=[SKILLS])


def rows(engine: Engine) -> list[RequestRow]:
    with engine.ledger.session() as s:
        return list(s.exec(select(RequestRow).order_by(RequestRow.created_at)))


class Out(BaseModel):
    n: int


def test_verdict_folds_checks() -> None:
    ok, bad, skip = Check.passed("a", "fine"), Check.failed("b", "wrong"), Check.not_run("c", "no data")
    assert Verdict(()).status is None
    assert Verdict((ok, skip)).status == "passed"
    assert Verdict((skip,)).status == "not_run"
    assert Verdict((ok, bad, skip)).status == "failed"
    verdict = Verdict((ok, bad, skip))
    assert verdict.problem() == "b: wrong"
    assert json.loads(verdict.detail() or "") == [
        {"check": "a", "status": "passed", "reason": "fine"},
        {"check": "b", "status": "failed", "reason": "wrong"},
        {"check": "c", "status": "not_run", "reason": "no data"},
    ]
    assert verdict.lines() == ["⚠ Check failed (b): wrong", "Check not run (c): no data"]


def test_a_crashing_or_wrong_verifier_is_not_run_never_an_exception() -> None:
    def crashes(out: Out, context: VerifyContext) -> Check:
        raise KeyError("missing")

    def returns_text(out: Out, context: VerifyContext) -> Check:
        return "fine"  # type: ignore[return-value]

    verdict = run_verifiers((crashes, returns_text), Out(n=1), VerifyContext("x", {}))
    assert [c.status for c in verdict.checks] == ["not_run", "not_run"]
    assert "KeyError" in verdict.checks[0].reason
    assert "returned str" in verdict.checks[1].reason


def test_passing_answer_records_verdict_and_output_mode(eng: Engine, script: Any) -> None:
    script.on("small", GOOD)
    reply = eng.handle(Request(text="count a and b", skill="counter"))
    assert reply.status == "ok" and not reply.escalated
    assert "checked against: count a and b" in reply.notes  # a check's preview travels with the notes
    [row] = rows(eng)
    assert row.verify_status == "passed"
    assert [c["check"] for c in json.loads(row.verify_detail or "")] == ["total", "echo"]
    assert row.output_mode == "grammar"  # the default tiers are the embedded model
    assert row.error is None


def test_failed_check_escalates_once_and_both_rows_keep_their_verdict(eng: Engine, script: Any) -> None:
    script.on("small", BAD)
    script.on("medium", GOOD)
    reply = eng.handle(Request(text="count a and b", skill="counter"))
    assert reply.status == "ok" and reply.escalated and reply.tier == "medium"
    assert "escalated from small to medium after a failed check" in reply.notes
    first, second = rows(eng)
    assert (first.tier, first.verify_status, first.status) == ("small", "failed", "ok")
    assert first.error == "check failed: total: total 3 but 2 items"
    assert (second.tier, second.verify_status, second.escalated_from) == ("medium", "passed", first.id)


def test_failing_twice_still_answers_and_flags_the_failure(eng: Engine, script: Any) -> None:
    script.on("small", BAD)
    script.on("medium", BAD)
    reply = eng.handle(Request(text="count a and b", skill="counter"))
    assert reply.status == "ok" and reply.structured == json.loads(BAD)
    assert "⚠ Check failed (total): total 3 but 2 items" in reply.notes
    assert [r.verify_status for r in rows(eng)] == ["failed", "failed"]
    assert len(script.calls) == 2  # one escalation only


def test_a_flagged_answer_beats_a_broken_one_from_the_stronger_tier(eng: Engine, script: Any) -> None:
    script.on("small", BAD)
    script.on("medium", "Sorry, I cannot count.")
    reply = eng.handle(Request(text="count a and b", skill="counter"))
    assert reply.status == "ok" and reply.tier == "small" and reply.structured == json.loads(BAD)
    assert reply.escalated and "⚠ Check failed (total): total 3 but 2 items" in reply.notes
    assert any(n.startswith("tried medium after a failed check: ") for n in reply.notes)
    first, second = rows(eng)
    assert reply.request_id == first.id and second.escalated_from == first.id
    assert second.status == "invalid"


def test_no_escalation_when_disallowed_and_crashing_check_is_not_run(eng: Engine, script: Any) -> None:
    script.on("small", BAD)
    reply = eng.handle(Request(text="count", skill="counter", allow_escalation=False))
    assert reply.tier == "small" and not reply.escalated
    script.on("small", GOOD)
    reply = eng.handle(Request(text="count", skill="fragile"))
    assert reply.status == "ok"
    assert any(
        n.startswith("Check not run (crashes): the check crashed: RuntimeError: boom") for n in reply.notes
    )
    assert rows(eng)[-1].verify_status == "not_run"


def test_free_text_skill_has_text_mode_and_no_verdict(eng: Engine, script: Any) -> None:
    script.on("small", "hello")
    eng.handle(Request(text="hi", skill="chatty"))
    [row] = rows(eng)
    assert (row.output_mode, row.verify_status, row.verify_detail) == ("text", None, None)


def test_verified_rates_per_skill_and_tier_and_usage_shows_them(eng: Engine, script: Any) -> None:
    script.on("small", GOOD, BAD, GOOD)
    script.on("medium", GOOD)
    for _ in range(3):
        eng.handle(Request(text="count a and b", skill="counter"))
    since = datetime.now(UTC) - timedelta(days=1)
    rates = {(r.skill, r.tier): r for r in verified_rates(eng.ledger, since)}
    small, medium = rates[("counter", "small")], rates[("counter", "medium")]
    assert (small.passed, small.failed, small.not_run) == (2, 1, 0)
    assert small.rate == pytest.approx(2 / 3)
    low, high = small.interval
    assert 0 < low < 2 / 3 < high < 1
    assert (medium.passed, medium.failed) == (1, 0)

    from bot.adapters.cli import app

    runner = CliRunner()
    table = runner.invoke(app, ["usage", "--since", "1d"])
    assert table.exit_code == 0, table.output
    assert "Verified answers" in table.stdout
    line = next(line for line in table.stdout.splitlines() if "counter" in line and "small" in line)
    assert "67%" in line and "2" in line
    data = json.loads(runner.invoke(app, ["usage", "--since", "1d", "--json"]).stdout)
    by_tier = {(v["skill"], v["tier"]): v for v in data["verification"]}
    assert by_tier[("counter", "small")]["checked"] == 3
    assert {r["verify_status"] for r in data["requests"]} == {"passed", "failed"}
    assert {r["output_mode"] for r in data["requests"]} == {"grammar"}


# The built-in skills, end to end ------------------------------------------------------------------

HUNT_RULE = json.loads((ROOT / "evals" / "hunt.jsonl").read_text().splitlines()[0])["reference_rule"]
HUNT = {"title": "Encoded PowerShell from Office", "hypothesis": "Macro documents start encoded PowerShell.",
        "sigma_rule": HUNT_RULE, "steps": ["Run it over 30 days"]}  # fmt: skip
TRIAGE = {"severity": "medium", "techniques": ["T1621"], "false_positive_likelihood": "medium",
          "false_positive_reason": "No push approved.", "runbook": "RB-ACCOUNT", "next_steps": ["Call the user"],
          "summary": "Nine denied Okta pushes.", "asset_tier": 1, "evidence": "suspected"}  # fmt: skip


def test_hunt_answer_shows_its_execution_preview(make_engine: Any, script: Any) -> None:
    script.on("small", json.dumps(HUNT))
    engine = make_engine()
    reply = engine.handle(Request(text="hunt for encoded powershell from office", skill="hunt"))
    assert reply.status == "ok" and not reply.escalated
    assert (
        "Preview on threat-hunting/samples/windows-process-creation.json: matches 2 of 3 sample attacks "
        "(T1059.001, T1204.002), 0 of 14 benign events"
    ) in reply.notes
    [row] = rows(engine)
    assert row.verify_status == "passed"
    assert {c["check"]: c["status"] for c in json.loads(row.verify_detail or "")} == {
        "attack-tags": "passed",
        "field-catalog": "passed",
        "sample-events": "passed",
    }


def test_hunt_with_an_invented_technique_is_rejected_and_escalated(make_engine: Any, script: Any) -> None:
    invented = {**HUNT, "sigma_rule": HUNT_RULE.replace("attack.t1204.002", "attack.t1999")}
    script.on("small", json.dumps(invented))
    script.on("medium", json.dumps(HUNT))
    engine = make_engine()
    reply = engine.handle(Request(text="hunt for encoded powershell from office", skill="hunt"))
    assert reply.escalated and reply.tier == "medium" and reply.structured == HUNT
    first = next(r for r in rows(engine) if r.tier == "small")
    assert first.verify_status == "failed"
    assert first.error == "check failed: attack-tags: tag attack.t1999: T1999 is not in ATT&CK v18.0"


def test_triage_with_an_invented_technique_is_rejected(make_engine: Any, script: Any) -> None:
    script.on("small", json.dumps({**TRIAGE, "techniques": ["T1621", "T1999.001"]}))
    script.on("medium", json.dumps(TRIAGE))
    engine = make_engine()
    reply = engine.handle(Request(text='{"alert": "Okta push denied 9 times"}', skill="triage-alert"))
    assert reply.escalated and reply.structured is not None and reply.structured["techniques"] == ["T1621"]
    first, second = sorted(rows(engine), key=lambda r: r.tier != "small")
    assert first.error == "check failed: attack-catalog: T1999.001 is not in ATT&CK v18.0"
    assert second.verify_status == "passed"
