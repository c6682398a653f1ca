"""The golden sets in evals/: present for every built-in skill, big enough, parseable, and consistent
with the skill's output model, its comparator and its context pack.

Checked against whatever files exist when the tests run: a missing expected set is a failure.
"""

from __future__ import annotations

import json
import re
import typing
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bot.context.packs import Pack, builtin_packs_dir, load_pack
from bot.core.sigma_check import parse_rule
from bot.evals.runner import EvalCase, evals_dir, load_cases
from skills.hunt import compare as hunt_compare
from skills.label_email import EmailLabel, label_email
from skills.triage_alert import Triage, triage_alert

EXPECTED_SETS = ("ask", "label-email", "write-report", "triage-alert", "hunt", "summarize")
STRUCTURED = ("label-email", "triage-alert", "hunt")
OPEN = ("ask", "write-report", "summarize")
PACK_OF = {
    "ask": "company-handbook",
    "label-email": "email-taxonomy",
    "write-report": "report-style",
    "summarize": "report-style",
    "triage-alert": "security-runbooks",
    "hunt": "threat-hunting",
}
MIN_CASES = 25
TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
RUNBOOK = re.compile(r"^RB-[A-Z-]+$")


def _path(skill: str) -> Path:
    return evals_dir() / f"{skill}.jsonl"


def _require(skill: str) -> Path:
    path = _path(skill)
    if not path.is_file():
        pytest.fail(f"golden set evals/{skill}.jsonl is missing (expected for the built-in skill {skill})")
    return path


def _raw(skill: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, JSON object) for every non-blank line; a line that is not JSON fails the test."""
    out = []
    for number, line in enumerate(_require(skill).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as exc:
            pytest.fail(f"evals/{skill}.jsonl line {number}: not JSON ({exc})")
        out.append((number, data))
    return out


def _cases(skill: str) -> list[EvalCase]:
    """The cases that load (broken lines are the subject of test_golden_set_loads_without_problems)."""
    cases, _ = load_cases(_require(skill))
    return cases


@cache
def _pack(name: str) -> Pack:
    return load_pack(builtin_packs_dir() / name)


def _literals(model: type, field: str) -> set[str]:
    return set(typing.get_args(model.model_fields[field].annotation))


def _existing_sets() -> list[str]:
    return sorted(p.stem for p in evals_dir().glob("*.jsonl"))


# Every set -----------------------------------------------------------------------------------


@pytest.mark.parametrize("skill", EXPECTED_SETS)
def test_golden_set_exists(skill: str) -> None:
    assert _path(skill).is_file(), f"evals/{skill}.jsonl is missing"


def test_every_golden_set_file_belongs_to_a_built_in_skill() -> None:
    # `tierwise eval` looks sets up by skill name: a stray or misnamed file would never run.
    assert set(_existing_sets()) <= set(EXPECTED_SETS), _existing_sets()


@pytest.mark.parametrize("skill", EXPECTED_SETS)
def test_golden_set_loads_without_problems(skill: str) -> None:
    cases, problems = load_cases(_require(skill))
    assert problems == []
    assert len(cases) >= MIN_CASES, f"{skill}: {len(cases)} cases, need at least {MIN_CASES}"
    assert len(cases) == len(_raw(skill))  # nothing silently skipped


@pytest.mark.parametrize("skill", EXPECTED_SETS)
def test_golden_set_ids_are_explicit_and_unique(skill: str) -> None:
    raw = _raw(skill)
    missing = [n for n, data in raw if not isinstance(data.get("id"), str) or not data["id"].strip()]
    assert missing == [], f"lines without an id: {missing}"
    ids = [data["id"] for _, data in raw]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == []
    assert all(len(i) <= 64 for i in ids)  # eval_results.case_id is 64 characters


@pytest.mark.parametrize("skill", EXPECTED_SETS)
def test_golden_set_has_a_critical_case(skill: str) -> None:
    assert any(case.critical for case in _cases(skill))
    # "critical" is a real boolean, not a truthy string such as "false"
    assert all(isinstance(data.get("critical", False), bool) for _, data in _raw(skill))


@pytest.mark.parametrize("skill", EXPECTED_SETS)
def test_golden_set_inputs_are_distinct(skill: str) -> None:
    inputs = [case.input.strip() for case in _cases(skill)]
    assert len(set(inputs)) == len(inputs)


# Structured sets -------------------------------------------------------------------------------


@pytest.mark.parametrize("skill", STRUCTURED)
def test_structured_sets_have_expected_fields_for_every_case(skill: str) -> None:
    without = [case.id for case in _cases(skill) if not case.expected]
    assert without == []


def test_label_email_expectations_are_valid_labels() -> None:
    allowed = {f: _literals(EmailLabel, f) for f in ("category", "priority", "team")}
    bad = []
    for case in _cases("label-email"):
        assert case.expected is not None
        assert set(case.expected) == {"category", "priority", "team"}, case.id
        bad += [(case.id, f, case.expected[f]) for f in allowed if case.expected[f] not in allowed[f]]
    assert bad == []
    for case in _cases("label-email"):
        # The expectation, completed with a reason, is a valid output and its comparator passes it.
        label = EmailLabel.model_validate({**(case.expected or {}), "reason": "golden set"})
        assert label_email.comparator(case.expected or {}, label.model_dump()).passed, case.id


def test_label_email_set_covers_every_category() -> None:
    used = {case.expected["category"] for case in _cases("label-email") if case.expected}
    assert used == _literals(EmailLabel, "category")


def test_triage_expectations_are_valid_triage_output() -> None:
    severities = _literals(Triage, "severity")
    likelihoods = _literals(Triage, "false_positive_likelihood")
    scored = {"severity", "techniques", "runbook", "false_positive_likelihood"}
    bad = []
    for case in _cases("triage-alert"):
        expected = case.expected or {}
        assert {"severity", "techniques", "runbook"} <= set(expected) <= scored, case.id
        if expected["severity"] not in severities:
            bad.append((case.id, "severity", expected["severity"]))
        if (
            "false_positive_likelihood" in expected
            and expected["false_positive_likelihood"] not in likelihoods
        ):
            bad.append((case.id, "false_positive_likelihood", expected["false_positive_likelihood"]))
        techniques = expected["techniques"]
        if not isinstance(techniques, list) or not all(
            isinstance(t, str) and TECHNIQUE.match(t) for t in techniques
        ):
            bad.append((case.id, "techniques", techniques))
        if not isinstance(expected["runbook"], str) or not RUNBOOK.match(expected["runbook"]):
            bad.append((case.id, "runbook", expected["runbook"]))
    assert bad == []


def test_triage_expectations_pass_the_skill_check_and_comparator() -> None:
    for case in _cases("triage-alert"):
        expected = case.expected or {}
        output = Triage.model_validate(
            {
                "false_positive_likelihood": "low",
                "false_positive_reason": "golden set",
                "next_steps": ["follow the runbook"],
                "summary": "golden set",
                **expected,
            }
        )
        assert triage_alert.check_output is not None
        triage_alert.check_output(output)  # raises on a bad technique or runbook id
        assert triage_alert.comparator(expected, output.model_dump()).passed, case.id


def test_triage_runbooks_exist_in_the_security_runbooks_pack() -> None:
    pack = _pack("security-runbooks")
    runbooks = {
        doc.path.removeprefix("runbooks/").removesuffix(".md")
        for doc in pack.documents
        if doc.path.startswith("runbooks/") and doc.title.startswith(doc.path[9:-3])
    }
    assert runbooks, "no runbooks/RB-*.md documents in the security-runbooks pack"
    used = {(case.expected or {})["runbook"] for case in _cases("triage-alert")}
    assert used - runbooks == set(), f"unknown runbooks; the pack has {sorted(runbooks)}"


def test_hunt_expectations_have_logsource_and_fields() -> None:
    for case in _cases("hunt"):
        expected = case.expected or {}
        assert set(expected) <= {"logsource", "fields", "events"}, case.id  # events: issue 10
        logsource = expected.get("logsource")
        assert isinstance(logsource, dict) and logsource, case.id
        assert set(logsource) <= {"product", "category", "service"}, case.id
        assert all(isinstance(v, str) and v for v in logsource.values()), case.id
        fields = expected.get("fields")
        assert isinstance(fields, list) and fields, case.id
        assert all(isinstance(f, str) and f for f in fields), case.id


def test_hunt_reference_rules_parse_and_pass_their_own_expectation() -> None:
    problems = []
    raw = {data["id"]: data for _, data in _raw("hunt")}
    for case in _cases("hunt"):
        rule = raw[case.id].get("reference_rule")
        if not isinstance(rule, str) or not rule.strip():
            problems.append(f"{case.id}: no reference_rule")
            continue
        try:
            parse_rule(rule)
        except ValueError as exc:
            problems.append(f"{case.id}: {exc}")
            continue
        verdict = hunt_compare(case.expected or {}, {"sigma_rule": rule})
        if not verdict.passed:
            problems.append(f"{case.id}: {verdict.detail}")
    assert problems == []


def test_hunt_reference_rules_follow_the_logsource_catalog() -> None:
    # Every (product, category, service) a reference rule uses is a row of the conventions table.
    conventions = next(d for d in _pack("threat-hunting").documents if d.path == "sigma-conventions.md").text
    catalog_rows = [line for line in conventions.splitlines() if line.startswith("|") and ":" in line]
    catalog = "\n".join(catalog_rows)
    raw = {data["id"]: data for _, data in _raw("hunt")}
    for case in _cases("hunt"):
        logsource = parse_rule(raw[case.id]["reference_rule"]).logsource
        for key, value in logsource.items():
            assert f"{key}: {value.split('.')[0]}" in catalog, (case.id, key, value)


# Open sets -------------------------------------------------------------------------------------


@pytest.mark.parametrize("skill", OPEN)
def test_open_sets_have_rubric_and_reference(skill: str) -> None:
    lacking = [c.id for c in _cases(skill) if len(c.rubric.strip()) < 20 or len(c.reference.strip()) < 20]
    assert lacking == []


@pytest.mark.parametrize("skill", OPEN)
def test_open_set_sources_exist_in_the_skill_pack(skill: str) -> None:
    docs = {doc.path for doc in _pack(PACK_OF[skill]).documents}
    unknown = [
        (data["id"], source)
        for _, data in _raw(skill)
        for source in data.get("sources", [])
        if source not in docs
    ]
    assert unknown == []


def test_ask_cases_list_their_sources() -> None:
    # An empty list is allowed: questions the handbook does not cover (the answer must say so).
    assert all(isinstance(data.get("sources"), list) for _, data in _raw("ask"))
    assert sum(1 for _, data in _raw("ask") if data["sources"]) >= MIN_CASES


def test_write_report_templates_exist_in_the_report_style_pack() -> None:
    templates = {
        doc.path.removeprefix("templates/").removesuffix(".md")
        for doc in _pack("report-style").documents
        if doc.path.startswith("templates/")
    }
    used = {data.get("template") for _, data in _raw("write-report") if "template" in data}
    assert used - templates == set()
