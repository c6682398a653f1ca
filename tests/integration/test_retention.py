"""Retention: `tierwise purge` blanks expired text and keeps every figure of the digest and the review."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, or_, select, update
from typer.testing import CliRunner

from bot.adapters.cli import app
from bot.config import ConfigError, load_settings
from bot.economics import digest as digest_mod
from bot.economics.context import EconomicsContext
from bot.economics.tier_review import as_json, review
from bot.ledger.models import (
    DailyRollup,
    EvalResult,
    EvalRun,
    Feedback,
    PrivacyAudit,
    RequestRow,
    SeenEvent,
    ShadowPair,
    WorkItem,
    utcnow,
)
from bot.ledger.privacy import TEXT_COLUMNS
from bot.ledger.retention import data_summary, data_text, last_purge, purge
from tests.ledger_builder import W46, W46_END, LedgerBuilder, at, seeded_engine

runner = CliRunner()


def fill_text(engine: Any) -> None:
    """Give every row of the seeded ledger the text a real one would hold."""
    with engine.ledger.session() as s:
        s.execute(
            update(RequestRow).values(
                response="Your laptop refresh is due; mail it-help@larkspur.example.",
                verify_detail="verifier: the answer cites hr/benefits.md",
                notes="trimmed the input",
                error=RequestRow.error,
            )
        )
        s.execute(
            update(RequestRow).where(RequestRow.status != "ok").values(error="invalid output: said 'blue'")
        )
        s.execute(
            update(RequestRow)
            .where(RequestRow.skill == "label-email")
            .values(route_reason="matched invoice, vendor (score 0.42); tier medium (configuration)")
        )
        s.execute(update(ShadowPair).values(detail="judge: the candidate said blue, the primary said red"))
        s.execute(update(Feedback).values(comment="wrong office, I am in Lisbon"))
        for run_id in s.execute(select(EvalRun.id)).scalars().all():
            s.add(
                EvalResult(
                    run_id=run_id, case_id="c1", output="{'label': 'billing'}", detail="label mismatch"
                )
            )
        s.commit()


def figures(engine: Any) -> tuple[dict[str, Any], list[dict[str, Any]], list[Any]]:
    digest = json.loads(digest_mod.to_json(digest_mod.build_digest(EconomicsContext.of(engine), W46)))
    recs = json.loads(json.dumps(as_json(review(EconomicsContext.of(engine), W46_END)), default=str))
    return digest, recs, digest.pop("thumbs_down_comments")


def text_left(engine: Any, before: Any = None) -> dict[str, int]:
    """Rows that still hold text in any text column (older than `before`, when given)."""
    out: dict[str, int] = {}
    with engine.ledger.session() as s:
        for table, columns in TEXT_COLUMNS.items():
            stmt = select(func.count()).select_from(table)
            conds = [getattr(table, c).is_not(None) for c in columns if c not in ("error", "route_reason")]
            if "error" in columns:
                conds.append(table.error.contains(":"))
            if "route_reason" in columns:  # words of the message in "matched invoice, vendor (score …)"
                conds.append(table.route_reason.like("matched %") & ~table.route_reason.like("% term(s) %"))
            stmt = stmt.where(or_(*conds))
            if before is not None and hasattr(table, "created_at"):
                stmt = stmt.where(table.created_at < before)
            out[table.__tablename__] = int(s.execute(stmt).scalar_one())
    return out


def test_purge_keeps_digest_and_review_figures_exact(make_engine: Any) -> None:
    engine = seeded_engine(make_engine)
    fill_text(engine)
    digest_before, recs_before, comments_before = figures(engine)
    with engine.ledger.session() as s:
        rollups_before = s.execute(select(func.count()).select_from(DailyRollup)).scalar_one()
    assert comments_before, "the seeded week has 👎 comments (text that must go)"
    assert all(n > 0 for n in text_left(engine).values())

    result = runner.invoke(app, ["purge"], env={"TIERWISE_RETENTION__TEXT_DAYS": "0"})
    assert result.exit_code == 0, result.output
    assert "blanked" in result.output and "0 day retention" in result.output

    digest_after, recs_after, comments_after = figures(engine)
    assert digest_after == digest_before
    assert recs_after == recs_before
    assert comments_after == []  # comments are text, not figures: they expire with it
    assert text_left(engine) == {name: 0 for name in text_left(engine)}
    with engine.ledger.session() as s:
        # The purge changed no figure column, so no day's rollup was dropped and rebuilt.
        assert s.execute(select(func.count()).select_from(DailyRollup)).scalar_one() == rollups_before
        errors = set(s.execute(select(RequestRow.error).where(RequestRow.error.is_not(None))).scalars())
        reasons = set(
            s.execute(select(RequestRow.route_reason).where(RequestRow.skill == "label-email")).scalars()
        )
    assert errors == {"invalid output"}  # an error keeps its kind
    assert reasons == {"matched 2 term(s) (score 0.42); tier medium (configuration)"}  # a route, its shape


def test_purge_blanks_only_text_older_than_the_retention(make_engine: Any) -> None:
    engine = make_engine(retention={"text_days": 30})
    b = LedgerBuilder(engine.ledger)
    now = at(2026, 12, 1)
    old = b.request(now - timedelta(days=31), skill="ask", response="old answer")
    new = b.request(now - timedelta(days=29), skill="ask", response="new answer")
    b.feedback(old, user="U1", score=-1, comment="old comment", when=now - timedelta(days=31))
    b.feedback(new, user="U2", score=-1, comment="new comment", when=now - timedelta(days=29))

    dry = purge(engine.ledger, engine.settings, now=now, dry_run=True)
    assert dry.blanked["requests"] == 1 and dry.blanked["feedback_comments"] == 1
    assert engine.ledger.get_request(old.id).response == "old answer"  # a dry run changes nothing
    assert last_purge(engine.ledger) is None

    report = purge(engine.ledger, engine.settings, now=now)
    assert report.blanked["requests"] == 1
    assert engine.ledger.get_request(old.id).response is None
    assert engine.ledger.get_request(new.id).response == "new answer"
    assert [f.comment for f in engine.ledger.feedback_for(old.id)] == [None]
    assert [f.comment for f in engine.ledger.feedback_for(new.id)] == ["new comment"]
    # Nothing else changed on the purged row: its figures stay.
    row = engine.ledger.get_request(old.id)
    assert (row.cost_usd, row.tier, row.status, row.created_at) == (
        old.cost_usd,
        old.tier,
        old.status,
        old.created_at,
    )
    _when, detail = last_purge(engine.ledger)  # type: ignore[misc]
    assert detail["blanked"]["requests"] == 1 and detail["text_days"] == 30

    again = purge(engine.ledger, engine.settings, now=now)
    assert again.blanked == {
        "requests": 0,
        "feedback_comments": 0,
        "shadow_pairs": 0,
        "work_items": 0,
        "eval_results": 0,
    }


def test_purge_drops_expired_event_ids_only(engine: Any) -> None:
    assert engine.ledger.claim_event("Ev-live", ttl_hours=1)
    with engine.ledger.session() as s:
        s.add(SeenEvent(event_id="Ev-old", expires_at=utcnow() - timedelta(hours=1)))
        s.commit()
    report = purge(engine.ledger, engine.settings)
    assert report.deleted["seen_events"] == 1
    with engine.ledger.session() as s:
        assert list(s.execute(select(SeenEvent.event_id)).scalars()) == ["Ev-live"]


def test_finished_work_loses_its_message_text_when_text_expires(make_engine: Any) -> None:
    engine = make_engine(retention={"text_days": 1})
    old = utcnow() - timedelta(days=2)
    with engine.ledger.session() as s:
        s.add(
            WorkItem(
                key="Ev-done",
                kind="mention",
                payload='{"text": "zebracorn"}',
                owner="r",
                status="done",
                reply='{"text": "answer"}',
                updated_at=old,
                created_at=old,
            )
        )
        s.add(
            WorkItem(
                key="Ev-open",
                kind="mention",
                payload='{"text": "quokka"}',
                owner="r",
                updated_at=old,
                created_at=old,
            )
        )  # still to be answered: its payload is needed
        s.commit()
    assert purge(engine.ledger, engine.settings).blanked["work_items"] == 1
    with engine.ledger.session() as s:
        kept = {w.key: (w.payload, w.reply) for w in s.execute(select(WorkItem)).scalars()}
    assert kept == {"Ev-done": ("", None), "Ev-open": ('{"text": "quokka"}', None)}


def test_dry_run_cli_reports_and_changes_nothing(make_engine: Any) -> None:
    engine = make_engine()
    b = LedgerBuilder(engine.ledger)
    b.request(utcnow() - timedelta(days=40), skill="ask", response="an old answer")
    result = runner.invoke(app, ["purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would blank 1 requests" in result.output
    with engine.ledger.session() as s:
        assert s.execute(select(RequestRow.response)).scalar_one() == "an old answer"
        assert s.execute(select(func.count()).select_from(PrivacyAudit)).scalar_one() == 0


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"TIERWISE_RETENTION__TEXT_DAYS": "-1"}, "retention.text_days"),
        ({"TIERWISE_RETENTION__TEXT_DAYS": "a month"}, "retention.text_days"),
        ({"TIERWISE_RETENTION__PURGE_CRON": "nightly"}, "retention.purge_cron"),
        ({"TIERWISE_PRIVACY__REDACT": "email,ssn"}, "privacy.redact"),
    ],
)
def test_bad_retention_or_redaction_settings_are_rejected_naming_the_key(
    env: dict[str, str], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings()
    result = runner.invoke(app, ["purge"])  # the CLI says it in one line, no traceback
    assert result.exit_code != 0


def test_retention_from_toml(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tierwise.toml").write_text(
        "[retention]\ntext_days = 7\n[privacy]\nredact = ['email', 'card']\n"
    )
    settings = load_settings()
    assert settings.retention.text_days == 7
    assert settings.privacy.redact == ["email", "card"]
    assert load_settings().retention.text_days == 7
    monkeypatch.setenv("TIERWISE_RETENTION__TEXT_DAYS", "0")
    assert load_settings().retention.text_days == 0


def test_data_view_shows_retention_last_purge_and_size(make_engine: Any) -> None:
    engine = make_engine(retention={"text_days": 14}, privacy={"redact": ["email"]})
    LedgerBuilder(engine.ledger).request(utcnow() - timedelta(days=20), skill="ask", response="x")
    summary = data_summary(engine.ledger, engine.settings)
    assert summary["retention"]["text_days"] == 14 and summary["last_purge"] is None
    assert summary["ledger"]["rows"]["requests"] == 1
    assert summary["ledger"]["rows_with_text"]["requests"] == 1
    assert summary["ledger"]["bytes"] > 0
    purge(engine.ledger, engine.settings)
    text = data_text(data_summary(engine.ledger, engine.settings))
    assert "text kept 14 days" in text and "Redaction before storage: email" in text
    assert "Last purge: never" not in text and "blanked 1 requests" in text
    assert "Rows still holding text: 0 requests" in text

    result = runner.invoke(app, ["config"], env={"TIERWISE_RETENTION__TEXT_DAYS": "14"})
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["retention"]["text_days"] == 14
    assert shown["data"]["last_purge"]["blanked"]["requests"] == 1
    assert shown["data"]["ledger"]["rows"]["requests"] == 1


def test_config_does_not_create_a_ledger(isolated: Any) -> None:
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data"]["ledger"].startswith("not created yet")
    assert not (isolated / "data" / "tierwise.db").exists()
