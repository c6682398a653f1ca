"""`/triage`: a SIEM/EDR alert (JSON or raw log lines) → severity, ATT&CK techniques, false-positive
likelihood with the reason, and next steps from the matching runbook."""

import json
import re
from typing import Literal

from pydantic import BaseModel, Field

from bot.evals.comparators import exact, fields_comparator, technique_match
from bot.skills import Skill

_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")


class Triage(BaseModel):
    severity: Literal["critical", "high", "medium", "low", "informational"]
    techniques: list[str] = Field(description="MITRE ATT&CK technique ids, e.g. T1566.001")
    false_positive_likelihood: Literal["low", "medium", "high"]
    false_positive_reason: str = Field(min_length=3)
    runbook: str = Field(description="The runbook id, e.g. RB-PHISH")
    next_steps: list[str] = Field(min_length=1)
    summary: str = Field(min_length=3, description="One or two sentences: what happened.")


def check(triage: Triage) -> None:
    bad = [t for t in triage.techniques if not _TECHNIQUE.match(t.strip().upper())]
    if bad:
        raise ValueError(f"not ATT&CK technique ids: {', '.join(bad)}")
    if not re.match(r"^RB-[A-Z-]+$", triage.runbook.strip().upper()):
        raise ValueError(f"runbook {triage.runbook!r} is not a runbook id like RB-PHISH")


_LOG_LINE = re.compile(
    r"^(CEF:\d\||\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}\S*\s.*\b\w+[=:]\S+|\w{3} +\d+ \d{2}:\d{2}:\d{2} \S+ \S+(\[\d+\])?:)",
    re.MULTILINE,
)


def looks_like_alert(text: str) -> bool:
    """A pasted JSON object (SIEM/EDR alerts are) or syslog/CEF/timestamped key=value log lines."""
    stripped = text.strip()
    if stripped.startswith(("{", "[")):
        lines = [line for line in stripped.splitlines() if line.strip()]
        for candidate in (stripped, *lines[:1]):  # one document, or NDJSON (one event per line)
            try:
                if isinstance(json.loads(candidate), dict | list):
                    return True
            except ValueError:
                continue
    return bool(_LOG_LINE.search(stripped))


def prepare(text: str) -> str:
    """A JSON alert is re-serialised (normalised, unambiguous); anything else is raw log text, said so."""
    try:
        alert = json.loads(text)
    except ValueError:
        return f"Raw log lines (not JSON):\n{text}"
    if isinstance(alert, dict | list):
        return f"Alert (JSON):\n{json.dumps(alert, indent=1, ensure_ascii=False)}"
    return f"Raw log lines (not JSON):\n{text}"


triage_alert = Skill(
    name="triage-alert",
    command="/triage",
    description="Triage a security alert or suspicious log lines: severity, MITRE ATT&CK technique, "
    "false positive likelihood and runbook next steps.",
    tier="small",
    packs=("security-runbooks",),
    examples=(
        "triage this alert",
        "is this CrowdStrike detection a false positive",
        "what severity is this Okta alert",
        "suspicious powershell encoded command on a laptop",
        "GuardDuty finding triage",
    ),
    detect=looks_like_alert,
    output=Triage,
    check_output=check,
    prepare_input=prepare,
    sensitive=True,
    instructions=(
        "You are a SOC analyst at Larkspur Systems. Triage the alert below using the severity matrix and the "
        "runbooks in the context: pick the severity by the matrix, the ATT&CK technique ids that fit, how likely "
        "it is a false positive and why, the matching runbook id, and its next steps (concrete, in order)."
    ),
    max_output_tokens=450,
    context_budget=2200,
    comparator=fields_comparator(
        {
            "severity": exact,
            "techniques": technique_match,
            "runbook": exact,
            "false_positive_likelihood": exact,
        }
    ),
)
