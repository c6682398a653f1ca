"""Comparators: exact values for every field check, the per-field comparator, and the skills' own
comparators (label-email, triage-alert, hunt) on hand-built outputs."""

from __future__ import annotations

import pytest

from bot.core.skills import CaseScore, FieldScore
from bot.evals.comparators import (
    exact,
    fields_comparator,
    set_contains,
    set_equal,
    summarize,
    technique_match,
)
from skills.hunt import compare as hunt_compare
from skills.label_email import label_email
from skills.triage_alert import triage_alert

# Field checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "result"),
    [
        ("billing", "billing", True),
        ("billing", "  Billing \n", True),  # case and surrounding space do not matter
        ("billing", "billings", False),
        ("billing", None, False),
        ("high", "urgent", False),
        (3, 3, True),
        (3, "3", False),  # only strings are normalised
        (None, None, True),
        (["a"], ["a"], True),
    ],
)
def test_exact(expected: object, actual: object, result: bool) -> None:
    assert exact(expected, actual) is result


@pytest.mark.parametrize(
    ("expected", "actual", "result"),
    [
        (["T1566", "T1204"], ["t1204", " t1566 "], True),  # order, case and spaces ignored
        (["T1566"], ["T1566", "T1204"], False),  # an extra item breaks equality
        (["T1566", "T1204"], ["T1566"], False),
        ("T1566", ["T1566"], True),  # a lone string is a one-item set
        (None, [], True),
        ([], None, True),
        ([], ["T1566"], False),
        (["T1566", "T1566"], ["T1566"], True),  # duplicates collapse
    ],
)
def test_set_equal(expected: object, actual: object, result: bool) -> None:
    assert set_equal(expected, actual) is result


@pytest.mark.parametrize(
    ("expected", "actual", "result"),
    [
        (["T1566"], ["T1566", "T1204"], True),  # extra items are allowed
        (["T1566", "T1204"], ["T1566"], False),
        (["t1566"], ["T1566"], True),
        ([], ["anything"], True),
        (None, None, True),
        (["T1566"], None, False),
        ("T1566", "T1566", True),
    ],
)
def test_set_contains(expected: object, actual: object, result: bool) -> None:
    assert set_contains(expected, actual) is result


@pytest.mark.parametrize(
    ("expected", "actual", "result"),
    [
        (["T1566.001"], ["T1566.001"], True),  # the same sub-technique
        (["T1566.001"], ["T1566"], True),  # the parent of the expected id
        (["T1566"], ["T1566.002"], True),  # a child of the expected id
        (["T1566"], ["T1566"], True),
        (["t1566.001"], [" T1566.001 "], True),
        (["T1566.001", "T1204.002"], ["T1566", "T1204.002", "T1059"], True),  # extras allowed
        (["T1566.001", "T1204.002"], ["T1566.001"], False),  # one expected id has no match
        (["T1566"], ["T1059.001"], False),
        (["T1566"], [], False),
        (["T1566"], None, False),
        (["T1078"], ["T1078.004"], True),
        (["T1078.004"], ["T1078"], True),
        ([], ["T1566"], True),  # nothing expected: nothing can be missing
        ("T1566.001", "T1566.001", True),  # a lone string is one id
    ],
)
def test_technique_match_parent_and_child(expected: object, actual: object, result: bool) -> None:
    assert technique_match(expected, actual) is result


def test_technique_match_rejects_sibling_sub_techniques() -> None:
    # The docstring promises "each expected id is present, or its parent/child is (T1566 ~ T1566.001)".
    # A sibling sub-technique (same parent, different id) is neither the id, its parent nor its child:
    # spearphishing attachment is not spearphishing link, PowerShell is not cmd, cloud is not domain accounts.
    siblings = [("T1566.001", "T1566.002"), ("T1059.001", "T1059.003"), ("T1078.004", "T1078.002")]
    assert [technique_match([want], [got]) for want, got in siblings] == [False, False, False]


# fields_comparator -------------------------------------------------------------------------------


def test_fields_comparator_scores_each_expected_field_with_its_check() -> None:
    compare = fields_comparator({"severity": exact, "techniques": technique_match, "tags": set_equal})
    verdict = compare(
        {"severity": "high", "techniques": ["T1566.001"], "tags": ["a", "b"]},
        {"severity": "HIGH", "techniques": ["T1566"], "tags": ["b", "c"], "summary": "ignored"},
    )
    assert verdict == CaseScore(
        passed=False,
        score=pytest.approx(2 / 3),
        fields=(
            FieldScore("severity", "high", "HIGH", True),
            FieldScore("techniques", ["T1566.001"], ["T1566"], True),
            FieldScore("tags", ["a", "b"], ["b", "c"], False),
        ),
        detail="tags: expected ['a', 'b'], got ['b', 'c']",
    )


def test_fields_comparator_scores_only_expected_fields() -> None:
    compare = fields_comparator({"category": exact, "priority": exact, "team": exact})
    verdict = compare({"category": "billing"}, {"category": "billing", "priority": "low", "team": "sales"})
    assert verdict.passed is True
    assert verdict.score == 1.0
    assert [f.field for f in verdict.fields] == ["category"]
    assert verdict.detail == "all fields match"


def test_fields_comparator_unknown_field_defaults_to_exact_and_missing_output_fails() -> None:
    compare = fields_comparator({"category": exact})
    verdict = compare({"category": "billing", "reason": "Invoice"}, {"category": "billing"})
    assert verdict.passed is False
    assert verdict.score == 0.5
    assert verdict.fields[1] == FieldScore("reason", "Invoice", None, False)
    assert verdict.detail == "reason: expected 'Invoice', got None"


def test_fields_comparator_detail_lists_every_miss_in_order() -> None:
    compare = fields_comparator({"category": exact, "priority": exact, "team": exact})
    verdict = compare(
        {"category": "phishing", "priority": "high", "team": "security-ops"},
        {"category": "spam", "priority": "low", "team": "security-ops"},
    )
    assert verdict.passed is False
    assert verdict.score == pytest.approx(1 / 3)
    assert verdict.detail == "category: expected 'phishing', got 'spam'; priority: expected 'high', got 'low'"


def test_fields_comparator_with_nothing_expected_fails() -> None:
    verdict = fields_comparator({"category": exact})({}, {"category": "billing"})
    assert verdict == CaseScore(passed=False, score=0.0, detail="nothing to compare")


def test_summarize_all_pass() -> None:
    verdict = summarize([FieldScore("a", 1, 1, True), FieldScore("b", 2, 2, True)])
    assert (verdict.passed, verdict.score, verdict.detail) == (True, 1.0, "all fields match")


# label-email ---------------------------------------------------------------------------------------

LABEL = {"category": "phishing", "priority": "high", "team": "security-ops", "reason": "Lookalike domain."}


def test_label_email_comparator_pass() -> None:
    verdict = label_email.comparator(
        {"category": "phishing", "priority": "high", "team": "security-ops"},
        {**LABEL, "category": "Phishing", "reason": "a different reason is fine"},
    )
    assert verdict.passed is True
    assert verdict.score == 1.0
    assert [(f.field, f.passed) for f in verdict.fields] == [
        ("category", True),
        ("priority", True),
        ("team", True),
    ]


def test_label_email_comparator_wrong_team() -> None:
    verdict = label_email.comparator(
        {"category": "phishing", "priority": "high", "team": "security-ops"}, {**LABEL, "team": "it-helpdesk"}
    )
    assert verdict.passed is False
    assert verdict.score == pytest.approx(2 / 3)
    assert verdict.detail == "team: expected 'security-ops', got 'it-helpdesk'"


def test_label_email_comparator_on_empty_output() -> None:
    verdict = label_email.comparator(
        {"category": "billing", "priority": "normal", "team": "finance-billing"}, {}
    )
    assert verdict.passed is False
    assert verdict.score == 0.0
    assert len(verdict.fields) == 3


# triage-alert --------------------------------------------------------------------------------------

TRIAGE_OUT = {
    "severity": "medium",
    "techniques": ["T1566.002", "T1204.001"],
    "false_positive_likelihood": "low",
    "false_positive_reason": "Reported by two users.",
    "runbook": "RB-PHISH",
    "next_steps": ["Pull the message", "Search Zscaler for clicks"],
    "summary": "A phishing link was clicked.",
}


def test_triage_comparator_pass_with_parent_technique_and_case() -> None:
    verdict = triage_alert.comparator(
        {
            "severity": "Medium",
            "techniques": ["T1566"],
            "runbook": "rb-phish",
            "false_positive_likelihood": "low",
        },
        TRIAGE_OUT,
    )
    assert verdict.passed is True
    assert verdict.score == 1.0
    assert [f.field for f in verdict.fields] == [
        "severity",
        "techniques",
        "runbook",
        "false_positive_likelihood",
    ]


def test_triage_comparator_misses() -> None:
    verdict = triage_alert.comparator(
        {"severity": "high", "techniques": ["T1078"], "runbook": "RB-PHISH"}, TRIAGE_OUT
    )
    assert verdict.passed is False
    assert verdict.score == pytest.approx(1 / 3)
    assert verdict.detail == (
        "severity: expected 'high', got 'medium'; "
        "techniques: expected ['T1078'], got ['T1566.002', 'T1204.001']"
    )


# hunt ----------------------------------------------------------------------------------------------

RULE = """title: PowerShell Encoded Command Launched By Office Application
id: 3c0ad4de-2234-4065-9286-efb9988d8741
status: experimental
logsource:
    product: windows
    category: process_creation
detection:
    selection_parent:
        ParentImage|endswith:
            - '\\winword.exe'
            - '\\excel.exe'
    selection_child:
        Image|endswith: '\\powershell.exe'
        CommandLine|contains:
            - ' -enc'
            - ' -EncodedCommand'
    condition: all of selection_*
level: high
"""

EXPECTED_HUNT = {
    "logsource": {"product": "windows", "category": "process_creation"},
    "fields": ["Image", "CommandLine"],
}


def test_hunt_compare_pass() -> None:
    verdict = hunt_compare(EXPECTED_HUNT, {"sigma_rule": RULE, "title": "t"})
    assert verdict.passed is True
    assert verdict.score == 1.0
    assert verdict.detail == "log source and fields match"
    assert verdict.fields == (
        FieldScore("logsource.product", "windows", "windows", True),
        FieldScore("logsource.category", "process_creation", "process_creation", True),
        FieldScore(
            "fields", ["commandline", "image"], ["commandline", "image", "parentimage"], True
        ),  # a subset is enough; names compare case-insensitively
    )


def test_hunt_compare_wrong_logsource_key() -> None:
    verdict = hunt_compare(
        {"logsource": {"product": "windows", "service": "security"}, "fields": ["Image"]},
        {"sigma_rule": RULE},
    )
    assert verdict.passed is False
    assert verdict.score == pytest.approx(2 / 3)
    assert verdict.detail == "logsource.service: expected 'security', got None"


def test_hunt_compare_missing_field() -> None:
    verdict = hunt_compare(
        {"logsource": {"product": "windows"}, "fields": ["Image", "User"]}, {"sigma_rule": RULE}
    )
    assert verdict.passed is False
    assert verdict.score == 0.5
    assert verdict.fields[-1] == FieldScore(
        "fields", ["image", "user"], ["commandline", "image", "parentimage"], False
    )
    assert verdict.detail.startswith("fields: expected ['image', 'user']")


def test_hunt_compare_unparseable_rule_fails_with_pysigma_reason() -> None:
    broken = RULE.replace("condition: all of selection_*", "condition: selection_parent and filter_admin")
    verdict = hunt_compare(EXPECTED_HUNT, {"sigma_rule": broken})
    assert verdict == CaseScore(
        passed=False,
        score=0.0,
        detail="Sigma rule does not parse: SigmaConditionError: Detection 'filter_admin' not defined in detections",
    )


def test_hunt_compare_missing_rule_fails() -> None:
    verdict = hunt_compare(EXPECTED_HUNT, {})
    assert verdict.passed is False
    assert verdict.score == 0.0
    assert verdict.detail == "Sigma rule does not parse: SigmaTitleError: Sigma rule must have a title"


def test_hunt_compare_with_nothing_expected_fails_without_claiming_a_match() -> None:
    verdict = hunt_compare({}, {"sigma_rule": RULE})
    assert verdict.passed is False
    assert verdict.score == 0.0
    # A failed case must not be explained as "log source and fields match" in eval results.
    assert verdict.detail == "nothing to compare"
