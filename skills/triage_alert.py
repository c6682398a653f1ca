"""`/triage`: a SIEM/EDR alert (JSON or raw log lines) → severity, ATT&CK techniques, false-positive
likelihood with the reason, and next steps from the matching runbook."""

import json
import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from bot.context.attack import CatalogError, catalog_for
from bot.context.pack_rules import RuleError, severity_matrix
from bot.core.skills import Skill
from bot.core.verify import Check, VerifyContext
from bot.evals.comparators import exact, fields_comparator, technique_match

PACK = "security-runbooks"
_TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
# In the JSON schema too, so a grammar or a provider's structured output can only produce this shape.
TechniqueId = Annotated[str, Field(pattern=r"^[Tt]\d{4}(\.\d{3})?$")]


class Triage(BaseModel):
    severity: Literal["critical", "high", "medium", "low", "informational"]
    techniques: list[TechniqueId] = Field(description="MITRE ATT&CK technique ids, e.g. T1566.001")
    false_positive_likelihood: Literal["low", "medium", "high"]
    false_positive_reason: str = Field(min_length=3)
    runbook: str = Field(description="The runbook id, e.g. RB-PHISH")
    next_steps: list[str] = Field(min_length=1)
    summary: str = Field(min_length=3, description="One or two sentences: what happened.")
    # The severity matrix criteria the severity rests on (checked against severity-matrix.md).
    asset_tier: Literal[0, 1, 2] | None = Field(
        default=None, description="Asset tier from the severity matrix: 0 crown jewel, 1 business, 2 test"
    )
    evidence: Literal["confirmed", "suspected", "blocked"] | None = Field(
        default=None, description="Evidence state from the severity matrix"
    )
    hard_rule: int | None = Field(
        default=None, ge=1, le=6, description="The severity matrix hard rule (1-6) that decided, if one did"
    )
    blast_radius_bump: bool = Field(
        default=False, description="Raised one level: >= 5 hosts, >= 10 accounts or > 1 AWS account"
    )


def check(triage: Triage) -> None:
    bad = [t for t in triage.techniques if not _TECHNIQUE.match(t.strip().upper())]
    if bad:
        raise ValueError(f"not ATT&CK technique ids: {', '.join(bad)}")
    if not re.match(r"^RB-[A-Z-]+$", triage.runbook.strip().upper()):
        raise ValueError(f"runbook {triage.runbook!r} is not a runbook id like RB-PHISH")


def known_techniques(triage: Triage, context: VerifyContext) -> Check:
    """Every technique id is a current ATT&CK technique or sub-technique (not unknown, not revoked)."""
    name = "attack-catalog"
    root = context.pack_root(PACK)
    if root is None:
        return Check.not_run(name, f"the {PACK} pack is not loaded")
    if not triage.techniques:
        return Check.not_run(name, "the answer names no technique")
    try:
        catalog = catalog_for(root, PACK)
    except CatalogError as exc:
        return Check.not_run(name, str(exc))
    problems = [p for p in (catalog.problem(t) for t in triage.techniques) if p]
    if problems:
        return Check.failed(name, "; ".join(problems), catalog=catalog.label)
    return Check.passed(name, f"{len(triage.techniques)} technique(s) current in {catalog.label}")


def follows_severity_matrix(triage: Triage, context: VerifyContext) -> Check:
    """The severity is what the pack's severity matrix gives for the criteria the answer cites, and
    the runbook is one of the pack's runbook ids."""
    name = "severity-matrix"
    root = context.pack_root(PACK)
    if root is None:
        return Check.not_run(name, f"the {PACK} pack is not loaded")
    try:
        rules = severity_matrix(root, PACK)
    except RuleError as exc:
        return Check.not_run(name, str(exc))
    runbook = triage.runbook.strip().upper()
    if runbook not in rules.runbooks:
        return Check.failed(
            name, f"runbook {triage.runbook} is not in {rules.source} ({', '.join(sorted(rules.runbooks))})"
        )
    if triage.hard_rule is not None:
        allowed = rules.hard_rules.get(triage.hard_rule)
        if allowed is None:
            return Check.failed(name, f"{rules.source} has no hard rule {triage.hard_rule}")
        if allowed and triage.severity not in allowed:
            return Check.failed(
                name,
                f"hard rule {triage.hard_rule} gives {' or '.join(sorted(allowed))}, not {triage.severity}",
            )
        fp = rules.hard_rule_fp.get(triage.hard_rule)
        if fp and triage.false_positive_likelihood != fp:
            return Check.failed(
                name,
                f"hard rule {triage.hard_rule} sets false-positive likelihood {fp}, not {triage.false_positive_likelihood}",
            )
        return Check.passed(name, f"severity {triage.severity} follows hard rule {triage.hard_rule}")
    if triage.asset_tier is None or triage.evidence is None:
        return Check.not_run(name, "the answer cites no asset tier and evidence state (nor a hard rule)")
    want = rules.expected(triage.asset_tier, triage.evidence, triage.blast_radius_bump)
    cited = f"Tier {triage.asset_tier} × {triage.evidence}" + (
        " + blast-radius bump" if triage.blast_radius_bump else ""
    )
    if triage.severity != want:
        return Check.failed(name, f"{cited} is {want} in the severity matrix, not {triage.severity}")
    return Check.passed(name, f"{cited} is {want} in the severity matrix")


_LOG_LINE = re.compile(
    r"^(type=[A-Z_]+ msg=audit\(|CEF:\d\||\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}\S*\s.*\b\w+[=:]\S+|\w{3} +\d+ \d{2}:\d{2}:\d{2} \S+ \S+(\[\d+\])?:)",
    re.MULTILINE,
)


def looks_like_alert(text: str) -> bool:
    """A pasted JSON object (SIEM/EDR alerts are) or syslog/CEF/auditd/timestamped key=value log lines."""
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
    verifiers=(known_techniques, follows_severity_matrix),
    prepare_input=prepare,
    sensitive=True,
    instructions=(
        "You are a SOC analyst at Larkspur Systems. Triage the alert below using the severity matrix and the "
        "runbooks in the context: pick the severity by the matrix and cite what it rests on (the asset tier and "
        "evidence state, or the hard rule), the ATT&CK technique ids that fit, how likely it is a false positive "
        "and why, the matching runbook id, and its next steps (concrete, in order)."
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
