"""`/hunt`: a hunting hypothesis or indicators → a Sigma rule for our log sources plus the steps to run it.

The rule is parsed with pySigma; a rule that does not parse is invalid output and escalates a tier.
Verifiers then check it against the threat-hunting pack: its ATT&CK tags against the pack's catalog,
its fields against the log source's field catalog, and its behaviour by executing it on the pack's
sample events (the answer shows the preview: "matches 2 of 3 sample attacks, 0 of 40 benign events").
"""

from typing import Any

from pydantic import BaseModel, Field

from bot.context.attack import CatalogError, catalog_for, sigma_tag_problems
from bot.context.packs import builtin_packs_dir
from bot.context.sigma_run import NotRunnable, SampleError, SampleSet, execute, load_samples, sample_set_for
from bot.core.sigma_check import ParsedRule, parse_rule
from bot.core.skills import CaseScore, FieldScore, Skill
from bot.core.verify import Check, VerifyContext

PACK = "threat-hunting"


class Hunt(BaseModel):
    title: str = Field(min_length=3)
    hypothesis: str = Field(min_length=3)
    sigma_rule: str = Field(min_length=20, description="A complete Sigma rule in YAML.")
    steps: list[str] = Field(min_length=1, description="How to run the hunt and triage the results.")


def check(hunt: Hunt) -> None:
    parse_rule(hunt.sigma_rule)


def _parsed(hunt: Hunt) -> ParsedRule:
    return parse_rule(hunt.sigma_rule)  # already parsed once by check_output: it does parse


def attack_tags(hunt: Hunt, context: VerifyContext) -> Check:
    """The rule's ATT&CK tags exist in the pack's catalog (techniques current, not revoked)."""
    name = "attack-tags"
    root = context.pack_root(PACK)
    if root is None:
        return Check.not_run(name, f"the {PACK} pack is not loaded")
    try:
        catalog = catalog_for(root, PACK)
    except CatalogError as exc:
        return Check.not_run(name, str(exc))
    rule = _parsed(hunt)
    problems = sigma_tag_problems(list(rule.tags), catalog)
    if problems:
        return Check.failed(name, "; ".join(problems), catalog=catalog.label)
    techniques = [t for t in rule.tags if t.lower().startswith("attack.t")]
    if not techniques:
        return Check.not_run(name, f"the rule has no ATT&CK technique tag to check against {catalog.label}")
    return Check.passed(name, f"{len(techniques)} technique tag(s) current in {catalog.label}")


def _sample_set(hunt: Hunt, context: VerifyContext, name: str) -> SampleSet | Check:
    root = context.pack_root(PACK)
    if root is None:
        return Check.not_run(name, f"the {PACK} pack is not loaded")
    try:
        sets = load_samples(root, PACK)
    except SampleError as exc:
        return Check.not_run(name, str(exc))
    rule = _parsed(hunt)
    found = sample_set_for(rule.logsource, sets)
    if found is None:
        where = ", ".join(f"{k}: {v}" for k, v in rule.logsource.items()) or "none"
        return Check.not_run(
            name, f"no field catalog or sample events for logsource ({where}) in {PACK}/samples/"
        )
    return found


def known_fields(hunt: Hunt, context: VerifyContext) -> Check:
    """Every detection field exists in the field catalog of the rule's log source."""
    name = "field-catalog"
    found = _sample_set(hunt, context, name)
    if isinstance(found, Check):
        return found
    unknown = sorted(f for f in _parsed(hunt).fields if not found.knows(f))
    if unknown:
        return Check.failed(
            name,
            f"field(s) {', '.join(unknown)} not in the {found.label} catalog ({found.file})",
            unknown=unknown,
        )
    return Check.passed(name, f"all fields in the {found.label} catalog")


def _related(rule_tags: tuple[str, ...], techniques: tuple[str, ...]) -> bool:
    """A sample attack is one the rule hunts for when they share a technique (or its parent)."""
    tagged = {t.split(".", 1)[1].upper() for t in rule_tags if t.lower().startswith("attack.t")}
    parents = {t.split(".")[0] for t in tagged}
    return any(t in tagged or t.split(".")[0] in parents for t in techniques)


def runs_on_samples(hunt: Hunt, context: VerifyContext) -> Check:
    """Execute the rule on the log source's sample events: it must catch the sample attacks of the
    techniques it is tagged with, and must not match every benign event."""
    name = "sample-events"
    found = _sample_set(hunt, context, name)
    if isinstance(found, Check):
        return found
    rule = _parsed(hunt)
    try:
        run = execute(hunt.sigma_rule, found, rule.fields)
    except NotRunnable as exc:
        return Check.not_run(name, str(exc))
    tagged = sorted({t.split(".", 1)[1].upper() for t in rule.tags if t.lower().startswith("attack.t")})
    # Tagged: the sample attacks of those techniques; untagged: any sample attack of the log source.
    attacks = [e for e in found.events if e.malicious and (not tagged or _related(rule.tags, e.techniques))]
    benign = [e for e in found.events if not e.malicious]
    hit_attacks = [e.id for e in attacks if e.id in run.matched]
    hit_benign = [e.id for e in benign if e.id in run.matched]
    scope = f" ({', '.join(tagged)})" if tagged else ""
    preview = (
        f"Preview on {found.file}: matches {len(hit_attacks)} of {len(attacks)} sample attacks{scope}, "
        f"{len(hit_benign)} of {len(benign)} benign events"
    )
    details = {"samples": found.file, "attacks": [e.id for e in attacks], "matched_attacks": hit_attacks,
               "matched_benign": hit_benign, "benign": len(benign)}  # fmt: skip
    if benign and len(hit_benign) == len(benign):
        return Check.failed(
            name, f"the rule matches every benign sample event ({len(benign)})", preview, **details
        )
    if attacks and not hit_attacks:
        return Check.failed(
            name, f"the rule matches none of the {len(attacks)} sample attacks{scope}", preview, **details
        )
    if not attacks:
        return Check.not_run(
            name,
            f"{found.file} holds no sample attack for the rule's techniques{scope or ' (untagged)'}; {len(hit_benign)} of {len(benign)} benign events match",
        )
    return Check.passed(
        name, f"{len(hit_attacks)} of {len(attacks)} sample attacks matched", preview, **details
    )


def compare(expected: dict[str, Any], output: dict[str, Any]) -> CaseScore:
    """Log source keys must match; the detection must use every expected field; when the case lists
    sample events, the rule must match its positive events and none of its negative ones."""
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
    events = expected.get("events")
    if events:
        scores.append(_event_score(str(output.get("sigma_rule", "")), rule, events))
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


def _event_score(rule_text: str, rule: ParsedRule, events: dict[str, Any]) -> FieldScore:
    """Execute the rule on the golden case's sample events (from the built-in pack)."""
    positive, negative = set(events.get("positive", ())), set(events.get("negative", ()))
    want = {"match": sorted(positive), "no_match": sorted(negative)}
    try:
        sets = load_samples(builtin_packs_dir() / PACK, PACK)
        by_id = {e.id: s for s in sets for e in s.events}
        chosen = {by_id[i].name: by_id[i] for i in positive | negative if i in by_id}
        matched: set[str] = set()
        for sample_set in chosen.values():
            matched |= execute(rule_text, sample_set, rule.fields).matched
    except (SampleError, NotRunnable) as exc:
        return FieldScore("events", want, f"not run: {exc}", False)
    got = {"match": sorted(positive & matched), "no_match": sorted(negative - matched)}
    return FieldScore("events", want, got, positive <= matched and not (negative & matched))


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
    verifiers=(attack_tags, known_fields, runs_on_samples),
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
