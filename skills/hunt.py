"""`/hunt`: a hunting hypothesis or indicators → a Sigma rule for our log sources plus the steps to run it.

The rule is parsed with pySigma; a rule that does not parse is invalid output and escalates a tier.
"""

from typing import Any

from pydantic import BaseModel, Field

from bot.sigma_check import parse_rule
from bot.skills import CaseScore, FieldScore, Skill


class Hunt(BaseModel):
    title: str = Field(min_length=3)
    hypothesis: str = Field(min_length=3)
    sigma_rule: str = Field(min_length=20, description="A complete Sigma rule in YAML.")
    steps: list[str] = Field(min_length=1, description="How to run the hunt and triage the results.")


def check(hunt: Hunt) -> None:
    parse_rule(hunt.sigma_rule)


def compare(expected: dict[str, Any], output: dict[str, Any]) -> CaseScore:
    """Log source keys must match; the detection must use every expected field."""
    try:
        rule = parse_rule(str(output.get("sigma_rule", "")))
    except ValueError as exc:
        return CaseScore(passed=False, score=0.0, detail=str(exc))
    scores = []
    for key, want in (expected.get("logsource") or {}).items():
        got = rule.logsource.get(key)
        scores.append(FieldScore(f"logsource.{key}", want, got, str(want).lower() == str(got or "").lower()))
    want_fields = {f.lower() for f in expected.get("fields", [])}
    got_fields = {f.lower() for f in rule.fields}
    if want_fields:
        scores.append(
            FieldScore("fields", sorted(want_fields), sorted(got_fields), want_fields <= got_fields)
        )
    if not scores:
        return CaseScore(passed=False, score=0.0, detail="nothing to compare")
    passed = sum(s.passed for s in scores)
    misses = [f"{s.field}: expected {s.expected!r}, got {s.actual!r}" for s in scores if not s.passed]
    return CaseScore(
        passed=passed == len(scores),
        score=passed / len(scores),
        fields=tuple(scores),
        detail="; ".join(misses) or "log source and fields match",
    )


hunt = Skill(
    name="hunt",
    command="/hunt",
    description="Turn a threat hunting hypothesis or indicators of compromise into a Sigma detection rule "
    "for our log sources, with the steps to run the hunt.",
    tier="small",
    packs=("threat-hunting",),
    examples=(
        "hunt for encoded powershell",
        "write a sigma rule for these IOCs",
        "hypothesis: attackers abuse AWS access keys from new IPs",
        "detect DNS tunnelling",
        "hunt for Okta MFA fatigue",
        "check every windows host for certutil downloads",
        "find every CloudTrail call from these IP ranges",
        "search auditd for writes to authorized_keys on linux hosts",
        "detect LSASS credential dumping on servers",
        "who is running suspicious command lines across our laptops",
    ),
    input_patterns=(
        r"\b(hypothesis|sigma|iocs?|indicators? of compromise|threat intel|hunt (for|across|on|in|the))\b",
    ),
    output=Hunt,
    check_output=check,
    sensitive=True,
    instructions=(
        "You are a threat hunter at Larkspur Systems. Turn the hypothesis or indicators into one Sigma rule in "
        "YAML for the matching log source in our catalog, following our Sigma conventions (logsource values and "
        "field names exactly as in the catalog), and list the steps to run the hunt and triage results."
    ),
    max_output_tokens=700,
    context_budget=2200,
    comparator=compare,
)
