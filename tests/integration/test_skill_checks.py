"""The built-in skills' verifiers, with passing and failing outputs: ATT&CK ids against the packs'
catalog, hunt rules executed on the threat-hunting pack's sample events, triage severity against the
severity matrix, label-email routing against the taxonomy; and held-out style checks on Sigma rules
and real-looking events."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.context.attack import CatalogError, catalog_for, load_catalog, sigma_tag_problems
from bot.context.pack_rules import RuleError, parse_severity_matrix, severity_matrix, taxonomy
from bot.context.packs import builtin_packs_dir, load_packs
from bot.context.sigma_run import execute, load_samples, sample_set_for
from bot.core.sigma_check import parse_rule
from bot.core.verify import VerifyContext
from skills.hunt import Hunt, attack_tags, known_fields, runs_on_samples
from skills.hunt import compare as hunt_compare
from skills.label_email import EmailLabel, priority_by_taxonomy, routes_by_taxonomy
from skills.triage_alert import Triage, follows_severity_matrix, known_techniques, looks_like_alert, prepare
from tests.paths import ROOT

PACKS = builtin_packs_dir()
EVALS = ROOT / "evals"


@pytest.fixture(scope="module")
def context() -> VerifyContext:
    packs, problems = load_packs([PACKS])
    assert not problems
    return VerifyContext("hunt request", packs)


def copy_pack(name: str, tmp_path: Path) -> Path:
    target = tmp_path / "packs" / name
    shutil.copytree(PACKS / name, target)
    return target


def context_with(tmp_path: Path, name: str) -> VerifyContext:
    packs, _ = load_packs([tmp_path / "packs"])
    assert name in packs
    return VerifyContext("request", packs)


def rule(
    detection: str, tags: tuple[str, ...] = ("attack.execution", "attack.t1059.001"), logsource: str = ""
) -> str:
    logsource = logsource or "    product: windows\n    category: process_creation\n"
    tag_lines = "".join(f"    - {t}\n" for t in tags)
    return (
        f"title: Test Rule\nstatus: experimental\ntags:\n{tag_lines}logsource:\n{logsource}"
        f"detection:\n{detection}level: high\n"
    )


def hunt(text: str) -> Hunt:
    return Hunt(title="Test hunt", hypothesis="Attackers do things.", sigma_rule=text, steps=["run it"])


ENCODED_PS = """    selection_parent:
        ParentImage|endswith:
            - '\\winword.exe'
            - '\\excel.exe'
    selection_cmd:
        CommandLine|contains: ' -enc'
    condition: all of selection_*
"""


# ATT&CK catalog --------------------------------------------------------------------------------


def test_shipped_catalog_is_v18_with_provenance_in_both_security_packs() -> None:
    for pack in ("security-runbooks", "threat-hunting"):
        catalog = load_catalog(PACKS / pack, pack)
        assert catalog.version == "18.0"
        assert catalog.source == f"{pack}/attack/enterprise-attack-v18.json"
        assert len(catalog.techniques) == 691
        raw = json.loads((PACKS / pack / "attack" / "enterprise-attack-v18.json").read_text())
        assert any("MITRE Corporation" in line for line in raw["provenance"])


@pytest.mark.parametrize(
    ("technique", "problem"),
    [
        ("T1059.001", None),  # a current sub-technique
        ("T1566", None),
        ("t1003.001", None),
        ("T1999", "T1999 is not in ATT&CK v18.0"),  # invented
        ("T1059.999", "T1059.999 is not in ATT&CK v18.0"),  # invented sub-technique
        ("T99999", "T99999 is not an ATT&CK technique id (T1234 or T1234.001)"),
        ("Phishing", "Phishing is not an ATT&CK technique id (T1234 or T1234.001)"),
    ],
)
def test_catalog_rejects_unknown_ids_and_accepts_current_ones(technique: str, problem: str | None) -> None:
    assert load_catalog(PACKS / "security-runbooks", "security-runbooks").problem(technique) == problem


def stix_bundle(version: str) -> dict[str, Any]:
    def pattern(ext: str, name: str, sid: str, **extra: Any) -> dict[str, Any]:
        refs = [{"source_name": "mitre-attack", "external_id": ext}]
        return {"type": "attack-pattern", "id": sid, "name": name, "external_references": refs, **extra}

    return {
        "type": "bundle",
        "objects": [
            {"type": "x-mitre-collection", "id": "x-mitre-collection--1", "x_mitre_version": version},
            pattern("T1059", "Command and Scripting Interpreter", "attack-pattern--a"),
            pattern("T1059.001", "PowerShell", "attack-pattern--b"),
            pattern("T1685", "A technique newer than v18", "attack-pattern--c"),
            pattern("T1086", "PowerShell", "attack-pattern--d", revoked=True),
            {
                "type": "relationship",
                "id": "relationship--1",
                "relationship_type": "revoked-by",
                "source_ref": "attack-pattern--d",
                "target_ref": "attack-pattern--b",
            },
        ],
    }


def test_a_newer_stix_catalog_dropped_in_wins_and_knows_revoked_ids(tmp_path: Path) -> None:
    root = copy_pack("security-runbooks", tmp_path)
    assert catalog_for(root, "security-runbooks").problem("T1685") == "T1685 is not in ATT&CK v18.0"
    (root / "attack" / "enterprise-attack.json").write_text(json.dumps(stix_bundle("19.0")))
    catalog = catalog_for(root, "security-runbooks")
    assert catalog.version == "19.0" and catalog.source == "security-runbooks/attack/enterprise-attack.json"
    assert catalog.problem("T1685") is None
    assert catalog.problem("T1086") == "T1086 is revoked in ATT&CK v19.0 (use T1059.001)"


def test_an_older_catalog_beside_the_shipped_one_does_not_win(tmp_path: Path) -> None:
    root = copy_pack("security-runbooks", tmp_path)
    (root / "attack" / "old.json").write_text(json.dumps(stix_bundle("17.1")))
    assert catalog_for(root, "security-runbooks").version == "18.0"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "pack security-runbooks: no ATT&CK catalog in attack/"),
        ("{not json", "ATT&CK catalog security-runbooks/attack/enterprise-attack-v18.json is not valid JSON"),
        ('{"mitre_attack_version": "18.0"}', "enterprise-attack-v18.json is not a catalog (KeyError"),
        ('{"type": "bundle", "objects": []}', "enterprise-attack-v18.json is not a catalog"),
    ],
)
def test_missing_or_corrupt_catalog_names_pack_and_file_and_checks_do_not_run(
    tmp_path: Path, content: str | None, says: str
) -> None:
    root = copy_pack("security-runbooks", tmp_path)
    target = root / "attack" / "enterprise-attack-v18.json"
    if content is None:
        target.unlink()
    else:
        target.write_text(content)
    with pytest.raises(CatalogError, match=re.escape(says)):
        load_catalog(root, "security-runbooks")
    check = known_techniques(triage(techniques=["T1566.001"]), context_with(tmp_path, "security-runbooks"))
    assert check.status == "not_run" and says in check.reason


# triage-alert ------------------------------------------------------------------------------------


def triage(**changes: Any) -> Triage:
    base: dict[str, Any] = {
        "severity": "high",
        "techniques": ["T1566.002", "T1204.001"],
        "false_positive_likelihood": "low",
        "false_positive_reason": "User confirmed the click.",
        "runbook": "RB-PHISH",
        "next_steps": ["Reset the password"],
        "summary": "A user entered credentials on a fake Okta page.",
    }
    return Triage.model_validate({**base, **changes})


def test_triage_rejects_an_invented_technique_and_accepts_sub_techniques(context: VerifyContext) -> None:
    assert known_techniques(triage(), context).status == "passed"
    check = known_techniques(triage(techniques=["T1566.002", "T1999"]), context)
    assert check.status == "failed" and check.reason == "T1999 is not in ATT&CK v18.0"
    assert known_techniques(triage(techniques=[]), context).status == "not_run"


def test_technique_pattern_is_in_the_json_schema() -> None:
    schema = Triage.model_json_schema()
    assert schema["properties"]["techniques"]["items"]["pattern"] == r"^[Tt]\d{4}(\.\d{3})?$"
    with pytest.raises(ValueError, match="String should match pattern"):
        triage(techniques=["Phishing"])


@pytest.mark.parametrize(
    ("changes", "status", "reason"),
    [
        ({"asset_tier": 1, "evidence": "confirmed"}, "passed", "Tier 1 × confirmed is high in the severity matrix"),
        ({"asset_tier": 1, "evidence": "suspected"}, "failed", "Tier 1 × suspected is medium in the severity matrix, not high"),
        ({"asset_tier": 1, "evidence": "suspected", "blast_radius_bump": True}, "passed", "Tier 1 × suspected + blast-radius bump is high"),
        # The bump alone never makes critical.
        ({"severity": "critical", "asset_tier": 0, "evidence": "suspected", "blast_radius_bump": True}, "failed", "is high in the severity matrix, not critical"),
        ({"hard_rule": 5}, "passed", "severity high follows hard rule 5"),
        ({"hard_rule": 2}, "failed", "hard rule 2 gives critical, not high"),
        ({"severity": "informational", "hard_rule": 1}, "failed", "hard rule 1 sets false-positive likelihood high, not low"),
        ({"severity": "informational", "hard_rule": 1, "false_positive_likelihood": "high"}, "passed", "hard rule 1"),
        ({"runbook": "RB-NOPE"}, "failed", "runbook RB-NOPE is not in pack security-runbooks: severity-matrix.md"),
        ({}, "not_run", "the answer cites no asset tier and evidence state"),
    ],
)  # fmt: skip
def test_triage_severity_follows_the_matrix_it_cites(
    context: VerifyContext, changes: dict[str, Any], status: str, reason: str
) -> None:
    check = follows_severity_matrix(triage(**changes), context)
    assert (check.status, reason in check.reason) == (status, True), check.reason


def test_severity_rules_come_from_the_pack_document() -> None:
    rules = severity_matrix(PACKS / "security-runbooks")
    assert rules.matrix[(0, "confirmed")] == "critical" and rules.matrix[(2, "blocked")] == "informational"
    assert rules.hard_rules[5] == {"high"} and rules.hard_rules[3] == {"high", "critical"}
    assert "RB-PHISH" in rules.runbooks and len(rules.runbooks) == 10


def test_a_changed_matrix_changes_the_check_and_a_broken_one_is_named(tmp_path: Path) -> None:
    root = copy_pack("security-runbooks", tmp_path)
    doc = root / "severity-matrix.md"
    text = doc.read_text()
    doc.write_text(
        text.replace(
            "| Tier 1 business | high | medium | low |", "| Tier 1 business | critical | medium | low |"
        )
    )
    ctx = context_with(tmp_path, "security-runbooks")
    assert follows_severity_matrix(triage(asset_tier=1, evidence="confirmed"), ctx).status == "failed"
    doc.write_text(text.replace("## Matrix", "## The grid"))
    check = follows_severity_matrix(triage(asset_tier=1, evidence="confirmed"), ctx)
    assert check.status == "not_run"
    assert check.reason == "pack security-runbooks: severity-matrix.md: no table under '## Matrix'"
    with pytest.raises(RuleError):
        parse_severity_matrix("# empty", "x")


# label-email ------------------------------------------------------------------------------------


def label(**changes: Any) -> EmailLabel:
    base = {"category": "phishing", "priority": "high", "team": "security-ops", "reason": "Fake Okta link."}
    return EmailLabel.model_validate({**base, **changes})


@pytest.mark.parametrize(
    ("changes", "check", "status", "reason"),
    [
        ({}, routes_by_taxonomy, "passed", "phishing → security-ops"),
        ({"team": "it-helpdesk"}, routes_by_taxonomy, "failed", "phishing routes to security-ops (pack email-taxonomy: taxonomy.md), not it-helpdesk"),
        ({"category": "legal-compliance", "team": "security-ops"}, routes_by_taxonomy, "passed", "legal-compliance → security-ops"),  # exception 1
        ({"category": "legal-compliance", "team": "legal"}, routes_by_taxonomy, "passed", "legal-compliance → legal"),
        ({"category": "hr-people", "team": "finance-ap"}, routes_by_taxonomy, "passed", "hr-people → finance-ap"),  # exception 2
        ({"category": "billing", "team": "finance-ap"}, routes_by_taxonomy, "failed", "billing routes to finance-billing"),
        ({"priority": "low"}, priority_by_taxonomy, "failed", "phishing is never low"),
        ({"category": "spam", "team": "none", "priority": "normal"}, priority_by_taxonomy, "failed", "every spam email is low"),
        ({"category": "spam", "team": "none", "priority": "low"}, priority_by_taxonomy, "passed", "no fixed-priority rule broken"),
    ],
)  # fmt: skip
def test_label_email_rules_from_the_taxonomy(
    context: VerifyContext, changes: dict[str, Any], check: Any, status: str, reason: str
) -> None:
    result = check(label(**changes), context)
    assert (result.status, reason in result.reason) == (status, True), result.reason


def test_every_label_email_golden_expectation_passes_the_pack_rules(context: VerifyContext) -> None:
    rules = taxonomy(PACKS / "email-taxonomy")
    assert rules.teams["phishing"] == "security-ops" and len(rules.teams) == 13
    for line in (EVALS / "label-email.jsonl").read_text().splitlines():
        case = json.loads(line)
        out = label(**case["expected"])
        for check in (routes_by_taxonomy, priority_by_taxonomy):
            assert check(out, context).status == "passed", (case["id"], check(out, context).reason)


# hunt: execution on sample events ---------------------------------------------------------------


def test_true_positive_rule_shows_its_preview(context: VerifyContext) -> None:
    check = runs_on_samples(hunt(rule(ENCODED_PS)), context)
    assert check.status == "passed"
    assert check.show == (
        "Preview on threat-hunting/samples/windows-process-creation.json: matches 2 of 2 sample attacks "
        "(T1059.001), 0 of 14 benign events"
    )
    assert check.details["matched_attacks"] == [
        "windows-process-creation-m01",
        "windows-process-creation-m02",
    ]


def test_rule_that_misses_the_attacks_it_is_tagged_for_fails(context: VerifyContext) -> None:
    detection = "    selection:\n        CommandLine|contains: 'Invoke-Mimikatz'\n    condition: selection\n"
    check = runs_on_samples(hunt(rule(detection)), context)
    assert check.status == "failed"
    assert check.reason == "the rule matches none of the 2 sample attacks (T1059.001)"
    assert "matches 0 of 2 sample attacks" in (check.show or "")


def test_rule_matching_everything_fails(context: VerifyContext) -> None:
    detection = "    selection:\n        Image|endswith: '.exe'\n    condition: selection\n"
    check = runs_on_samples(hunt(rule(detection)), context)
    assert check.status == "failed" and check.reason == "the rule matches every benign sample event (14)"
    assert "14 of 14 benign events" in (check.show or "")


def test_false_positives_are_counted_in_the_preview(context: VerifyContext) -> None:
    detection = "    selection:\n        Image|endswith: '\\powershell.exe'\n    condition: selection\n"
    check = runs_on_samples(hunt(rule(detection)), context)
    assert check.status == "passed"  # catches the attacks, but the preview shows the noise
    assert (check.show or "").endswith("matches 2 of 2 sample attacks (T1059.001), 2 of 14 benign events")
    assert check.details["matched_benign"] == ["windows-process-creation-b08", "windows-process-creation-b18"]


def test_keyword_regex_and_nested_field_rules_execute(context: VerifyContext) -> None:
    cloud = "    product: aws\n    service: cloudtrail\n"
    nested = (
        "    selection:\n        userIdentity.accessKeyId: 'AKIA4EXAMPLE7QX2LM5D'\n    condition: selection\n"
    )
    check = runs_on_samples(hunt(rule(nested, ("attack.t1078.004",), cloud)), context)
    assert check.status == "passed" and "matches 2 of 3 sample attacks (T1078.004)" in (check.show or "")
    dns = "    category: dns\n"
    regex = "    selection:\n        query|re: '^[a-zA-Z0-9-]{40,63}\\.'\n    condition: selection\n"
    assert runs_on_samples(hunt(rule(regex, ("attack.t1071.004",), dns)), context).status == "passed"
    keyword = "    keywords:\n        - 'comsvcs'\n    condition: keywords\n"
    check = runs_on_samples(hunt(rule(keyword, ("attack.t1003.001",))), context)
    assert check.status == "passed" and "matches 1 of 2 sample attacks" in (check.show or "")


def test_no_samples_for_the_log_source_is_not_run_with_the_reason(context: VerifyContext) -> None:
    mac = "    product: macos\n    category: process_creation\n"
    detection = "    selection:\n        Image|endswith: '/osascript'\n    condition: selection\n"
    for check in (runs_on_samples, known_fields):
        result = check(hunt(rule(detection, ("attack.t1059.002",), mac)), context)
        assert result.status == "not_run"
        assert result.reason == (
            "no field catalog or sample events for logsource (product: macos, category: process_creation) "
            "in threat-hunting/samples/"
        )


def test_a_rule_the_backend_cannot_compile_is_not_run(context: VerifyContext) -> None:
    detection = "    selection:\n        Image|expand: '%suspicious_paths%'\n    condition: selection\n"
    check = runs_on_samples(hunt(rule(detection)), context)
    assert check.status == "not_run"
    assert check.reason.startswith("the SQLite backend cannot compile the rule: ")
    assert "suspicious_paths" in check.reason


def test_a_broken_sample_file_is_named(tmp_path: Path) -> None:
    root = copy_pack("threat-hunting", tmp_path)
    (root / "samples" / "dns.json").write_text('{"logsource": {"category": "dns"}}')
    check = runs_on_samples(hunt(rule(ENCODED_PS)), context_with(tmp_path, "threat-hunting"))
    assert check.status == "not_run"
    assert check.reason.startswith("sample events threat-hunting/samples/dns.json are malformed (KeyError")


def test_fields_must_be_in_the_log_source_catalog(context: VerifyContext) -> None:
    assert known_fields(hunt(rule(ENCODED_PS)), context).status == "passed"
    ecs = "    selection:\n        process.command_line|contains: ' -enc'\n    condition: selection\n"
    check = known_fields(hunt(rule(ecs)), context)
    assert check.status == "failed"
    assert check.reason == (
        "field(s) process.command_line not in the windows/process_creation catalog "
        "(threat-hunting/samples/windows-process-creation.json)"
    )
    cloud = "    product: aws\n    service: cloudtrail\n"
    params = "    selection:\n        requestParameters.bucketName: 'x'\n    condition: selection\n"
    assert known_fields(hunt(rule(params, ("attack.t1537",), cloud)), context).status == "passed"


def test_attack_tags_reject_invented_ids(context: VerifyContext) -> None:
    assert attack_tags(hunt(rule(ENCODED_PS)), context).status == "passed"
    bad = attack_tags(hunt(rule(ENCODED_PS, ("attack.execution", "attack.t99999"))), context)
    assert bad.status == "failed"
    assert bad.reason == "tag attack.t99999: T99999 is not an ATT&CK technique id (T1234 or T1234.001)"
    bad = attack_tags(
        hunt(rule(ENCODED_PS, ("attack.t1059.001", "attack.t1999", "attack.evil_tactic"))), context
    )
    assert bad.status == "failed" and "T1999 is not in ATT&CK v18.0" in bad.reason
    assert "tag attack.evil_tactic: not an ATT&CK tactic" in bad.reason
    assert attack_tags(hunt(rule(ENCODED_PS, ("attack.execution",))), context).status == "not_run"


# Golden hunt cases: positive and negative events -------------------------------------------------


def golden_hunts() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (EVALS / "hunt.jsonl").read_text().splitlines()]


def test_golden_reference_rules_match_their_positive_events_and_none_of_the_negative() -> None:
    sets = load_samples(PACKS / "threat-hunting", "threat-hunting")
    with_events = 0
    for case in golden_hunts():
        events = case["expected"].get("events")
        parsed = parse_rule(case["reference_rule"])
        found = sample_set_for(parsed.logsource, sets)
        if found is None:
            assert events is None, case["id"]
            continue
        with_events += 1
        assert events["samples"] == found.file
        assert events["positive"] and events["negative"], case["id"]
        matched = execute(case["reference_rule"], found, parsed.fields).matched
        assert set(events["positive"]) <= matched, case["id"]
        assert not set(events["negative"]) & matched, case["id"]
        assert hunt_compare(case["expected"], {"sigma_rule": case["reference_rule"]}).passed, case["id"]
    assert with_events == 29  # macOS and two Google Workspace services have no sample events yet


def test_comparator_fails_a_rule_that_matches_a_negative_event() -> None:
    case = golden_hunts()[0]
    noisy = case["reference_rule"].replace("condition: all of selection_*", "condition: 1 of selection_*")
    score = hunt_compare(case["expected"], {"sigma_rule": noisy})
    events = next(f for f in score.fields if f.field == "events")
    assert not events.passed and not score.passed


# Held-out style: every local Sigma rule passes, broken variants do not ---------------------------


def local_rules() -> list[tuple[str, str]]:
    """Every Sigma rule the project has: golden reference rules, playbook and convention examples."""
    found = [(case["id"], case["reference_rule"]) for case in golden_hunts()]
    for doc in sorted((PACKS / "threat-hunting").rglob("*.md")):
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)):
            if "detection:" in block:
                found.append((f"{doc.name}#{i}", block))
    return found


def test_all_local_sigma_rules_are_accepted(context: VerifyContext) -> None:
    rules = local_rules()
    assert len(rules) >= 50
    rejected = []
    for name, text in rules:
        parse_rule(text)
        for check in (attack_tags, known_fields, runs_on_samples):
            result = check(hunt(text), context)
            if result.status == "failed":
                rejected.append((name, check.__name__, result.reason))
    assert rejected == []


def with_bad_modifier(text: str) -> str:
    """The first field inside a selection gets a modifier that does not exist."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("detection:"))
    field = re.compile(r"^(\s{8,}(?:- )?)([A-Za-z][\w.\-]*)(\|[\w|]+)?:")
    for i in range(start + 1, len(lines)):
        if field.match(lines[i]):
            lines[i] = field.sub(r"\1\2|containz:", lines[i], count=1)
            return "".join(lines)
    raise AssertionError("no detection field")


def broken_variants(text: str) -> dict[str, str]:
    return {
        "unknown tag": text.replace("tags:\n", "tags:\n    - attack.t99999\n", 1),
        "unknown technique": text.replace("tags:\n", "tags:\n    - attack.t1999\n", 1),
        "bad modifier": with_bad_modifier(text),
        "missing logsource": re.sub(r"logsource:\n(    .*\n)+", "", text, count=1),
        "condition names a missing selection": re.sub(r"condition: (.*)", r"condition: \1 and selection_missing", text, count=1),
    }  # fmt: skip


def test_broken_variants_of_every_local_rule_are_rejected(context: VerifyContext) -> None:
    accepted = []
    for name, text in local_rules():
        for kind, variant in broken_variants(text).items():
            assert variant != text, (name, kind)
            try:
                parse_rule(variant)
            except ValueError:
                continue  # rejected as invalid output
            if attack_tags(hunt(variant), context).status != "failed":
                accepted.append((name, kind))
    assert accepted == []


# triage-alert input handling on real-looking events ------------------------------------------------

AUDITD_LINES = """type=SYSCALL msg=audit(1732158612.123:4821): arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd2b1c a2=441 a3=1b6 items=2 ppid=2211 pid=2290 auid=4294967295 uid=0 gid=0 euid=0 comm="bash" exe="/usr/bin/bash" key="ssh_keys"
type=PATH msg=audit(1732158612.123:4821): item=1 name="/root/.ssh/authorized_keys" inode=131090 dev=ca:01 mode=0100600 ouid=0 ogid=0 nametype=CREATE
type=PROCTITLE msg=audit(1732158612.123:4821): proctitle=62617368002D63"""


def test_real_looking_events_pass_triage_input_handling() -> None:
    sets = load_samples(PACKS / "threat-hunting", "threat-hunting")
    documents = [json.dumps({"source": s.file, **e.event}) for s in sets for e in s.events]
    for text in [*documents, AUDITD_LINES, "\n".join(documents[:5])]:
        assert looks_like_alert(text), text[:80]
        prepared = prepare(text)
        assert prepared.startswith(("Alert (JSON):\n", "Raw log lines (not JSON):\n"))
    assert prepare(AUDITD_LINES).startswith("Raw log lines (not JSON):\ntype=SYSCALL")


def test_sample_catalogs_only_name_documented_fields() -> None:
    docs = "".join(p.read_text() for p in (PACKS / "threat-hunting").rglob("*.md"))
    for sample_set in load_samples(PACKS / "threat-hunting", "threat-hunting"):
        for field in sample_set.fields:
            assert f"`{field}`" in docs or field.replace(".*", ".<") in docs, (sample_set.file, field)
        assert {e.label for e in sample_set.events} == {"malicious", "benign"}
        assert all(e.source and e.techniques for e in sample_set.events if e.malicious)


def test_tag_problems_accept_tactics_groups_and_software() -> None:
    catalog = load_catalog(PACKS / "threat-hunting", "threat-hunting")
    ok = ["attack.credential_access", "attack.t1003.001", "attack.g0016", "attack.s0002", "cve.2021-44228"]
    assert sigma_tag_problems(ok, catalog) == []
    assert sigma_tag_problems(["attack.g9999"], catalog) == [
        "tag attack.g9999: no group G9999 in ATT&CK v18.0"
    ]


def test_catalog_error_is_a_value_error_with_the_pack_name(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="pack nowhere: no ATT&CK catalog"):
        load_catalog(tmp_path, "nowhere")


def test_tierwise_packs_names_a_corrupt_catalog_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bot.adapters.cli import app
    from bot.context.pack_data import pack_data_problems

    packs, _ = load_packs([PACKS])
    assert pack_data_problems(packs) == []
    root = copy_pack("threat-hunting", tmp_path)
    toml = root / "pack.toml"
    toml.write_text(toml.read_text().replace('name = "threat-hunting"', 'name = "hunting-local"'))
    (root / "attack" / "enterprise-attack-v18.json").write_text("{oops")
    monkeypatch.setenv("TIERWISE_PACK_DIRS", str(tmp_path / "packs"))
    result = CliRunner().invoke(app, ["packs"])
    assert result.exit_code == 0
    assert (
        "warning: checks will not run: ATT&CK catalog hunting-local/attack/enterprise-attack-v18.json "
        "is not valid JSON"
    ) in result.stderr


def test_a_sigma_rule_corpus_is_accepted_when_one_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Held-out check on a real corpus (e.g. a SigmaHQ checkout): SIGMA_RULES_DIR=/path/to/rules."""
    import os

    folder = os.environ.get("SIGMA_RULES_DIR")
    if not folder:
        pytest.skip("set SIGMA_RULES_DIR to a folder of Sigma rules (e.g. SigmaHQ's rules/)")
    catalog = load_catalog(PACKS / "threat-hunting", "threat-hunting")
    rejected, newer = [], []
    for path in sorted(Path(folder).rglob("*.yml")):
        try:
            parsed = parse_rule(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            rejected.append(f"{path}: {exc}")
            continue
        for problem in sigma_tag_problems(list(parsed.tags), catalog):
            # An id from a later ATT&CK release than the shipped catalog: drop the newer catalog in.
            (newer if f"is not in ATT&CK v{catalog.version}" in problem else rejected).append(
                f"{path}: {problem}"
            )
    print(f"{len(newer)} tags need a catalog newer than v{catalog.version}")
    assert rejected == []
