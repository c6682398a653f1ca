"""The pySigma check: valid rules parse to exact log sources and fields; broken rules raise ValueError
with pySigma's reason; a `hunt` reply whose rule does not parse is invalid output and escalates a tier."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from bot.core.sigma_check import ParsedRule, parse_rule
from bot.core.types import Request
from bot.ledger.models import RequestRow

OFFICE_POWERSHELL = r"""title: PowerShell Encoded Command Launched By Office Application
id: 3c0ad4de-2234-4065-9286-efb9988d8741
status: experimental
description: Finds Word or Excel starting PowerShell with an encoded command.
author: Larkspur SecOps
date: 2026-11-22
tags:
    - attack.execution
    - attack.t1059.001
logsource:
    product: windows
    category: process_creation
detection:
    selection_parent:
        ParentImage|endswith:
            - '\winword.exe'
            - '\excel.exe'
    selection_child:
        Image|endswith: '\powershell.exe'
        CommandLine|contains:
            - ' -enc'
            - ' -EncodedCommand'
    filter_admin:
        - User: 'NT AUTHORITY\SYSTEM'
        - ParentCommandLine|contains: 'sccm'
    condition: all of selection_* and not 1 of filter_*
falsepositives:
    - Unknown
level: high
"""

CLOUDTRAIL = """title: Access Key Used From New Network
logsource:
    product: aws
    service: cloudtrail
detection:
    selection:
        eventSource: iam.amazonaws.com
        eventName:
            - CreateAccessKey
            - UpdateAccessKey
        userIdentity.arn|contains: ':user/'
    filter_error:
        errorCode|exists: true
    condition: selection and not filter_error
level: medium
"""

PROXY_KEYWORDS = """title: Exfil Keyword In Proxy Log
logsource:
    category: proxy
detection:
    keywords:
        - 'transfer.sh'
        - 'anonfiles'
    condition: keywords
"""


def test_valid_windows_rule_parses_exactly() -> None:
    assert parse_rule(OFFICE_POWERSHELL) == ParsedRule(
        title="PowerShell Encoded Command Launched By Office Application",
        logsource={"product": "windows", "category": "process_creation"},
        fields=frozenset({"ParentImage", "Image", "CommandLine", "User", "ParentCommandLine"}),
        level="high",
    )


def test_valid_cloudtrail_rule_keeps_dotted_field_names() -> None:
    assert parse_rule(CLOUDTRAIL) == ParsedRule(
        title="Access Key Used From New Network",
        logsource={"product": "aws", "service": "cloudtrail"},
        fields=frozenset({"eventSource", "eventName", "userIdentity.arn", "errorCode"}),
        level="medium",
    )


def test_keyword_rule_has_no_fields_and_category_only_logsource() -> None:
    assert parse_rule(PROXY_KEYWORDS) == ParsedRule(
        title="Exfil Keyword In Proxy Log", logsource={"category": "proxy"}, fields=frozenset(), level=None
    )


BASE = """title: Broken Rule
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\\\whoami.exe'
    condition: selection
"""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("title: x\nlogsource: [unclosed\n", "ParserError: while parsing a flow sequence"),
        ("title: x\nlogsource:\n    product: windows\n", "must have a detection definitions"),
        (
            BASE.replace("    condition: selection\n", ""),
            "SigmaConditionError: Sigma rule must contain at least one condition",
        ),
        (
            BASE.replace("    product: windows\n    category: process_creation\n", "    {}\n").replace(
                "logsource:\n    {}", "logsource: {}"
            ),
            "SigmaLogsourceError: Sigma log source can't be empty",
        ),
        (
            BASE.replace("condition: selection", "condition: selection and not filter"),
            "SigmaConditionError: Detection 'filter' not defined in detections",
        ),
        (
            BASE.replace("condition: selection", "condition: selection and not 1 of filter_*"),
            "SigmaConditionError: Selector '1 of filter_*' doesn't match any detection",
        ),
        (BASE.replace("condition: selection", "condition: (selection"), "Unbalanced parentheses"),
        (
            BASE.replace("condition: selection", "condition: selection | count() by Image > 5"),
            "pipe syntax in Sigma conditions has been deprecated",
        ),
        (BASE.replace("Image|endswith", "Image|endswiht"), "SigmaModifierError: Unknown modifier 'endswiht'"),
        ("title: x\ndetection:\n    sel:\n        a: b\n    condition: sel\n", "must have a log source"),
        ("", "SigmaTitleError: Sigma rule must have a title"),
        ("just a sentence, not a rule", "AttributeError"),
        ("- a\n- b\n", "AttributeError"),
        (BASE + "---\ntitle: second\n", "expected a single document"),
        ("id: not-a-uuid\n" + BASE, "SigmaIdentifierError"),
    ],
    ids=[
        "bad-yaml",
        "missing-detection",
        "missing-condition",
        "empty-logsource",
        "undefined-selection",
        "selector-matches-nothing",
        "unbalanced-condition",
        "aggregation-pipe",
        "unknown-modifier",
        "missing-logsource",
        "empty-text",
        "prose",
        "yaml-list",
        "two-documents",
        "bad-id",
    ],
)
def test_invalid_rules_raise_value_error_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=r"^Sigma rule does not parse: ") as caught:
        parse_rule(text)
    assert reason in str(caught.value)


def test_base_rule_of_the_invalid_cases_is_itself_valid() -> None:
    # So every failure above comes from the one change made to it.
    assert parse_rule(BASE).fields == frozenset({"Image"})


def test_parse_error_is_chained_to_pysigma_exception() -> None:
    from sigma.exceptions import SigmaConditionError

    with pytest.raises(ValueError) as caught:
        parse_rule(BASE.replace("condition: selection", "condition: selection or nothing_here"))
    assert isinstance(caught.value.__cause__, SigmaConditionError)


# The hunt skill through the engine ---------------------------------------------------------------


def _hunt_reply(rule: str) -> str:
    return json.dumps(
        {
            "title": "Encoded PowerShell from Office",
            "hypothesis": "A phishing document runs encoded PowerShell.",
            "sigma_rule": rule,
            "steps": ["Convert with the Larkspur pipeline", "Run over 30 days in Elastic"],
        }
    )


def _rows(engine: Any) -> list[RequestRow]:
    with engine.ledger.session() as s:
        return list(s.exec(select(RequestRow)))


def test_hunt_reply_with_unparseable_rule_escalates_a_tier(make_engine: Any, script: Any) -> None:
    broken = OFFICE_POWERSHELL.replace("not 1 of filter_*", "not filter_admins")
    script.on("small", _hunt_reply(broken))
    script.on("medium", _hunt_reply(OFFICE_POWERSHELL))
    engine = make_engine()

    reply = engine.handle(Request(text="hunt for encoded powershell from office apps", skill="hunt"))

    assert reply.status == "ok"
    assert reply.escalated is True
    assert reply.tier == "medium"
    assert reply.structured is not None and reply.structured["sigma_rule"] == OFFICE_POWERSHELL
    assert [tier for tier, _ in script.calls] == ["small", "medium"]
    rows = _rows(engine)
    assert len(rows) == 2
    first = next(r for r in rows if r.tier == "small")
    second = next(r for r in rows if r.tier == "medium")
    assert first.status == "invalid"
    assert first.error == (
        "invalid output: Sigma rule does not parse: SigmaConditionError: "
        "Detection 'filter_admins' not defined in detections"
    )
    assert second.status == "ok" and second.error is None
    assert second.escalated_from == first.id
    assert reply.request_id == second.id


def test_hunt_reply_with_valid_rule_does_not_escalate(make_engine: Any, script: Any) -> None:
    script.on("small", _hunt_reply(CLOUDTRAIL))
    engine = make_engine()
    reply = engine.handle(Request(text="hunt for new access keys", skill="hunt"))
    assert reply.status == "ok"
    assert reply.escalated is False
    assert [tier for tier, _ in script.calls] == ["small"]
    assert [(r.tier, r.status) for r in _rows(engine)] == [("small", "ok")]
