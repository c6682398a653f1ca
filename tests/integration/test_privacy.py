"""Privacy: metadata-only storage, redaction before storage and before external tiers, per-person
export and erase, and secrets kept out of logs."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, Text, func, inspect, select, text
from typer.testing import CliRunner

from bot.adapters.cli import app
from bot.core.types import Request
from bot.economics.context import EconomicsContext
from bot.economics.shadow import Shadow
from bot.ledger.models import EvalResult, EvalRun, Feedback, PrivacyAudit, RequestRow, ShadowPair
from bot.ledger.privacy import subject_hash
from bot.pipeline.engine import Engine
from tests.ledger_builder import LedgerBuilder, at, dyadic_tiers, priced_tiers
from tests.paths import ROOT, TESTS

runner = CliRunner()

QUESTION = "How do I reach the zebracorn team about invoice 77?"
ANSWER = "Quokkaline answer: write to the zebracorn team lead."
LABEL = {"category": "vendor-invoice", "priority": "normal", "team": "finance-ap", "reason": "quokkaline"}
EMAIL = "jane.doe@customer.example"
CARD = "4111 1111 1111 1111"
SLACK_TOKEN = "xoxb-2222222222-PLANTEDslacktoken"
API_KEY = "sk-proj-PLANTEDproviderkey0123456789"


def text_values(engine: Engine) -> list[tuple[str, str, str]]:
    """(table, column, value) for every non-empty string in every table of the ledger."""
    found = []
    with engine.ledger.engine.connect() as conn:
        insp = inspect(conn)
        for table in insp.get_table_names():
            if table == "alembic_version":
                continue
            for col in insp.get_columns(table):
                if not isinstance(col["type"], String | Text):
                    continue
                name = col["name"]
                for (value,) in conn.execute(
                    text(f'SELECT "{name}" FROM "{table}" WHERE "{name}" IS NOT NULL')
                ):
                    if value:
                        found.append((table, name, str(value)))
    return found


def inline_shadow(engine: Engine) -> None:
    engine.after_reply.remove(engine.shadow)
    engine.shadow = Shadow(EconomicsContext.of(engine), engine, rng=random.Random(0), background=False)
    engine.after_reply.append(engine.shadow)


# Metadata-only ------------------------------------------------------------------------------------


def run_traffic(engine: Engine, script: Any) -> None:
    """Answers, an invalid answer and its escalation, shadow pairs with a judge, a rated comment, an eval."""
    inline_shadow(engine)
    script.default = ANSWER
    reply = engine.handle(Request(text=QUESTION, skill="ask", user="U1", channel="C1", thread="1.1"))
    assert reply.ok
    engine.rate(reply.request_id, "U1", -1, comment=f"zebracorn answer was wrong, mail me at {EMAIL}")
    script.on("medium", "not json quokkaline", json.dumps(LABEL))
    script.on("large", json.dumps(LABEL))
    label = engine.handle(Request(text=f"From: a@b.example\n{QUESTION}", skill="label-email", user="U2"))
    assert label.ok and label.escalated
    routed = engine.handle(Request(text="please label this email: invoice overdue from a vendor", user="U3"))
    assert routed.route_reason.startswith("matched ")
    with engine.ledger.session() as s:
        run = EvalRun(skill="ask", tier="small", cases=1, passed=1)
        s.add(run)
        s.flush()
        s.add(EvalResult(run_id=run.id, case_id="c1", output=ANSWER, detail=f"quokkaline: {QUESTION}"))
        s.commit()


@pytest.fixture
def traffic_settings() -> dict[str, Any]:
    return {
        "tiers": dyadic_tiers(),
        "skills": {
            "ask": {"tier": "medium", "shadow_rate": 1.0},
            "label-email": {"tier": "medium", "shadow_rate": 1.0},
        },
    }


def test_metadata_only_stores_no_text_anywhere(make_engine: Any, script: Any, traffic_settings: Any) -> None:
    engine = make_engine(privacy={"metadata_only": True}, **traffic_settings)
    run_traffic(engine, script)
    values = text_values(engine)
    leaks = [v for v in values if any(w in v[2] for w in ("zebracorn", "quokkaline", "Quokkaline", EMAIL))]
    assert leaks == []
    with engine.ledger.session() as s:
        rows = list(s.execute(select(RequestRow)).scalars())
        pairs = list(s.execute(select(ShadowPair)).scalars())
        assert s.execute(select(func.count()).select_from(Feedback)).scalar_one() == 1
    # Figures and verdicts are all there.
    assert {r.purpose for r in rows} >= {"user", "shadow"}
    assert all(r.prompt_tokens and r.cost_usd > 0 for r in rows if r.status == "ok")
    # One pair per shadow call (how many the sampler takes is its own business: tests/integration/test_shadow.py).
    shadow_rows = [r for r in rows if r.purpose == "shadow"]
    assert pairs and len(pairs) == len(shadow_rows)
    assert all(p.verdict in ("win", "tie", "loss", "error") for p in pairs)
    invalid = next(r for r in rows if r.status == "invalid")
    assert invalid.error == "invalid output"  # the kind stays, the text does not
    # The router's matched words are the message's words: only their count stays.
    matched = [r.route_reason for r in rows if r.route_reason.startswith("matched")]
    assert matched and all(re.match(r"matched \d+ term\(s\) \(score", reason) for reason in matched)


def test_without_metadata_only_the_same_traffic_does_store_text(
    make_engine: Any, script: Any, traffic_settings: Any
) -> None:
    """The scan above can fail: the same traffic with default settings leaves text in the ledger."""
    engine = make_engine(**traffic_settings)
    run_traffic(engine, script)
    tables = {t for t, _, v in text_values(engine) if "quokkaline" in v.lower() or "zebracorn" in v}
    assert {"requests", "feedback", "eval_results"} <= tables


# Redaction before storage --------------------------------------------------------------------------


def test_detectors_redact_stored_text_and_count_on_the_row(make_engine: Any, script: Any) -> None:
    engine = make_engine(privacy={"redact": ["email", "card", "secret"]})
    script.default = f"Charge card {CARD} and tell {EMAIL}; the key is {API_KEY}."
    reply = engine.handle(Request(text="what now?", skill="ask", user="U1"))
    row = engine.ledger.get_request(reply.request_id)
    assert row.response == "Charge card [card] and tell [email]; the key is [secret]."
    assert row.redactions == 3
    assert reply.text.startswith(f"Charge card {CARD}")  # the user still sees the answer itself
    engine.rate(reply.request_id, "U1", -1, comment=f"call me, {EMAIL}")
    assert [f.comment for f in engine.ledger.feedback_for(reply.request_id)] == ["call me, [email]"]
    # Saving the row again counts nothing twice: redacted text has nothing left to redact.
    with engine.ledger.session() as s:
        again = s.get(RequestRow, reply.request_id)
        again.response = again.response + " (edited)"
        s.add(again)
        s.commit()
    assert engine.ledger.get_request(reply.request_id).redactions == 3


# Redaction before external tiers -----------------------------------------------------------------


def external_engine(make_engine: Any, fake: Any, redact_external: bool, boundary: str = "external") -> Engine:
    tiers = priced_tiers(api_base=fake.url)
    for conf in tiers.values():
        conf["data_boundary"] = boundary
    return make_engine(
        tiers=tiers, skills={"ask": {"tier": "small", "redact_external": redact_external}}, mock=None
    )


PLANTED = f"My card is {CARD}, mail {EMAIL}, token {SLACK_TOKEN}. Why was I charged twice?"


def sent_text(fake: Any) -> str:
    return json.dumps(fake.requests)


def test_external_tier_request_body_carries_no_planted_secret(make_engine: Any, fake_openai: Any) -> None:
    engine = external_engine(make_engine, fake_openai, redact_external=True)
    engine.llm.mock_response = None
    reply = engine.handle(Request(text=PLANTED, skill="ask", user="U1"))
    assert reply.ok, reply.text
    body = sent_text(fake_openai)
    assert "Why was I charged twice?" in body  # the question itself went out
    for secret in (CARD, "4111111111111111", EMAIL, SLACK_TOKEN):
        assert secret not in body
    assert "[card]" in body and "[email]" in body and "[secret]" in body
    assert engine.ledger.get_request(reply.request_id).redactions >= 3


def test_without_redact_external_the_body_carries_the_text(make_engine: Any, fake_openai: Any) -> None:
    engine = external_engine(make_engine, fake_openai, redact_external=False)
    engine.llm.mock_response = None
    assert engine.handle(Request(text=PLANTED, skill="ask", user="U1")).ok
    assert CARD in sent_text(fake_openai) and EMAIL in sent_text(fake_openai)


def test_local_tiers_get_the_text_unredacted(make_engine: Any, fake_openai: Any) -> None:
    engine = external_engine(make_engine, fake_openai, redact_external=True, boundary="local")
    engine.llm.mock_response = None
    reply = engine.handle(Request(text=PLANTED, skill="ask", user="U1"))
    assert reply.ok and CARD in sent_text(fake_openai)
    assert engine.ledger.get_request(reply.request_id).redactions == 0


def test_a_pack_can_ask_for_outbound_redaction(make_engine: Any, fake_openai: Any, tmp_path: Path) -> None:
    packs = tmp_path / "packs" / "billing-notes"
    packs.mkdir(parents=True)
    (packs / "pack.toml").write_text('name = "billing-notes"\ndescription = "x"\nredact_external = true\n')
    (packs / "refunds.md").write_text("# Refunds\nRefunds go to refunds@larkspur.example within 5 days.\n")
    skills = TESTS / "skill_sources" / "billing"
    tiers = priced_tiers(api_base=fake_openai.url)
    engine = make_engine(tiers=tiers, pack_dirs=[tmp_path / "packs"], skill_dirs=[skills])
    engine.llm.mock_response = None
    assert engine.handle(Request(text=f"Refund for {EMAIL}?", skill="billing", user="U1")).ok
    body = sent_text(fake_openai)
    assert EMAIL not in body and "refunds@larkspur.example" not in body and "Refunds go to" in body


def test_pack_redact_external_must_be_a_boolean(tmp_path: Path) -> None:
    from bot.context.packs import load_pack

    pack = tmp_path / "p"
    pack.mkdir()
    (pack / "pack.toml").write_text('name = "p"\nredact_external = "yes"\n')
    (pack / "a.md").write_text("# A\n")
    with pytest.raises(ValueError, match="redact_external must be true or false"):
        load_pack(pack)


# Export and erase ----------------------------------------------------------------------------------


def seed_people(engine: Engine) -> dict[str, Any]:
    b = LedgerBuilder(engine.ledger)
    u1 = b.request(at(2026, 11, 10), skill="ask", user="U1", cost=0.5, response="answer for U1 zebracorn")
    u1b = b.request(
        at(2026, 11, 11), skill="ask", user="U1", cost=0.25, status="error", error="timeout: slow"
    )
    u2 = b.request(at(2026, 11, 10), skill="ask", user="U2", cost=0.125, response="answer for U2")
    cand = b.request(at(2026, 11, 10), skill="ask", user=None, purpose="shadow", response="candidate for U1")
    b.feedback(u1, user="U1", score=-1, comment="U1's comment")
    b.feedback(u2, user="U1", score=1, comment="U1 rates U2's answer")
    b.feedback(u2, user="U2", score=1, comment="U2's comment")
    with engine.ledger.session() as s:
        s.add(
            ShadowPair(
                skill="ask",
                primary_request_id=u1.id,
                primary_tier="small",
                candidate_request_id=cand.id,
                candidate_tier="medium",
                verdict="tie",
                method="judge",
                detail="both say zebracorn",
            )
        )
        s.commit()
    return {"u1": u1, "u1b": u1b, "u2": u2, "cand": cand}


def test_export_then_erase_round_trip(engine: Engine) -> None:
    rows = seed_people(engine)
    usage_before = [u.as_dict() for u in engine.ledger.usage(at(2026, 11, 1), at(2026, 12, 1))]

    exported = runner.invoke(app, ["privacy", "export", "U1"])
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.output)
    assert sorted(r["id"] for r in data["requests"]) == sorted([rows["u1"].id, rows["u1b"].id])
    assert {f["comment"] for f in data["feedback"]} == {"U1's comment", "U1 rates U2's answer"}
    assert [r["response"] for r in data["shadow_and_judge_calls"]] == ["candidate for U1"]
    assert data["shadow_pairs"][0]["detail"] == "both say zebracorn"
    assert "answer for U2" not in exported.output and "U2's comment" not in exported.output

    erased = runner.invoke(app, ["privacy", "erase", "U1", "--yes"])
    assert erased.exit_code == 0, erased.output
    assert "2 requests" in erased.output and "2 feedback" in erased.output

    leftovers = [
        v for v in text_values(engine) if "U1" in v[2] or "zebracorn" in v[2] or "candidate for" in v[2]
    ]
    assert leftovers == []
    u1 = engine.ledger.get_request(rows["u1"].id)
    u1b = engine.ledger.get_request(rows["u1b"].id)
    assert u1.user_id == u1b.user_id and u1.user_id.startswith("erased-")  # one pseudonym per person
    assert u1b.error == "timeout"
    assert engine.ledger.get_request(rows["u2"].id).response == "answer for U2"  # others untouched
    assert [f.comment for f in engine.ledger.feedback_for(rows["u2"].id) if f.score and f.comment] == [
        "U2's comment"
    ]
    usage_after = [u.as_dict() for u in engine.ledger.usage(at(2026, 11, 1), at(2026, 12, 1))]
    assert usage_after == usage_before  # every figure stays

    with engine.ledger.session() as s:
        audit = list(s.execute(select(PrivacyAudit).order_by(PrivacyAudit.id)).scalars())
    assert [(a.action, a.subject) for a in audit] == [
        ("export", subject_hash("U1")),
        ("erase", subject_hash("U1")),
    ]
    assert json.loads(audit[1].detail)["requests"] == 2

    again = runner.invoke(app, ["privacy", "export", "U1"])
    assert again.exit_code == 2 and "no data about user 'U1'" in again.output


def test_erase_of_an_unknown_user_says_so_and_changes_nothing(engine: Engine) -> None:
    seed_people(engine)
    before = text_values(engine)
    result = runner.invoke(app, ["privacy", "erase", "U999", "--yes"])
    assert result.exit_code == 2
    assert "no data about user 'U999'" in result.output and "nothing changed" in result.output
    assert "Traceback" not in result.output
    assert text_values(engine) == before
    with engine.ledger.session() as s:
        assert s.execute(select(func.count()).select_from(PrivacyAudit)).scalar_one() == 0


def test_erase_asks_for_confirmation(engine: Engine) -> None:
    rows = seed_people(engine)
    result = runner.invoke(app, ["privacy", "erase", "U1"], input="n\n")
    assert result.exit_code == 2 and "not erased" in result.output
    assert engine.ledger.get_request(rows["u1"].id).user_id == "U1"


# Secrets never in logs --------------------------------------------------------------------------------


def test_planted_secrets_never_reach_the_logs(fake_openai: Any, tmp_path: Path) -> None:
    """A provider that echoes our API key in its 401, a user who pastes a Slack token: the process's
    whole stderr (DEBUG logging) is grepped for both."""
    fake_openai.default = {"status": 401, "content": f"Incorrect API key provided: {API_KEY}"}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TIERWISE_", "SLACK_"))},
        "TIERWISE_DATA_DIR": str(tmp_path / "data"),
        "TIERWISE_LOG_LEVEL": "DEBUG",
        "TIERWISE_TIERS__SMALL__MODEL": "openai/small-model",
        "TIERWISE_TIERS__SMALL__API_BASE": fake_openai.url,
        "TIERWISE_TIERS__SMALL__API_KEY_ENV": "PLANTED_PROVIDER_KEY",
        "TIERWISE_TIERS__SMALL__MAX_RETRIES": "0",
        "PLANTED_PROVIDER_KEY": API_KEY,
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bot.adapters.cli import main; main()",
            "ask",
            "--skill",
            "ask",
            f"is {SLACK_TOKEN} valid?",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    logs = proc.stdout + proc.stderr
    assert "model call failed on tier small" in logs  # the failure, with the provider's message, was logged
    assert "Incorrect API key provided: [secret]" in logs
    assert API_KEY not in logs and SLACK_TOKEN not in logs
    assert fake_openai.requests, "the call reached the provider"
