"""Retention: message text expires, figures stay.

`purge` blanks text older than `retention.text_days` (answers, verifier and judge reasoning,
feedback comments, eval outputs; an error keeps its kind) and deletes bookkeeping rows past their
use (expired `seen_events`). It never deletes a request, a rating, a pair or a run, and never
touches a column a figure is computed from (tokens, cost, latency, tier, status, scores), so the
digest, the review and the daily rollups read the same numbers before and after.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.ledger.db import affected
from bot.ledger.models import (
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
from bot.ledger.privacy import audit, error_kind, route_kind

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.ledger.store import Ledger

# Rows past their use, deleted by every purge: (name, where-clause builder). Modules with their
# own bookkeeping tables (e.g. finished work items) append here.
Expiry = Callable[[datetime], tuple[type, ColumnElement[bool]]]
EXPIRED_ROWS: dict[str, Expiry] = {
    "seen_events": lambda now: (SeenEvent, col(SeenEvent.expires_at) < now),
}


@dataclass
class PurgeReport:
    cutoff: datetime
    text_days: int
    dry_run: bool
    blanked: dict[str, int] = field(default_factory=dict)  # rows whose text was (or would be) blanked
    deleted: dict[str, int] = field(default_factory=dict)  # bookkeeping rows past their use

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cutoff"] = self.cutoff.isoformat()
        return data

    def summary(self) -> str:
        verb = "would blank" if self.dry_run else "blanked"
        blanked = ", ".join(f"{n} {name}" for name, n in self.blanked.items())
        deleted = ", ".join(f"{n} {name}" for name, n in self.deleted.items())
        return (
            f"Text older than {self.cutoff:%Y-%m-%d %H:%M} UTC ({self.text_days} day retention): "
            f"{verb} {blanked}; {'would delete' if self.dry_run else 'deleted'} {deleted}."
        )


# A routing reason that still names the words it matched ("matched invoice, vendor (score …").
_WORDS_IN_ROUTE = col(RequestRow.route_reason).like("matched %") & col(RequestRow.route_reason).not_like(
    "matched % term(s) (score%"
)


def _text_targets(cutoff: datetime) -> dict[str, tuple[type, ColumnElement[bool], dict[str, Any]]]:
    """Per kind of row: its table, which expired rows still hold text, and the blanking values."""
    old_runs = select(col(EvalRun.id)).where(col(EvalRun.created_at) < cutoff)
    return {
        "requests": (
            RequestRow,
            (col(RequestRow.created_at) < cutoff)
            & or_(
                col(RequestRow.response).is_not(None),
                col(RequestRow.notes).is_not(None),
                col(RequestRow.verify_detail).is_not(None),
                col(RequestRow.error).contains(":"),
                _WORDS_IN_ROUTE,
            ),
            {"response": None, "notes": None, "verify_detail": None},
        ),
        "feedback_comments": (
            Feedback,
            (col(Feedback.updated_at) < cutoff) & col(Feedback.comment).is_not(None),
            {"comment": None},
        ),
        "shadow_pairs": (
            ShadowPair,
            (col(ShadowPair.created_at) < cutoff) & col(ShadowPair.detail).is_not(None),
            {"detail": None},
        ),
        # Finished durable work keeps its event payload (message text) only until the text expires.
        "work_items": (
            WorkItem,
            (col(WorkItem.status) != "open")
            & (col(WorkItem.updated_at) < cutoff)
            & or_(col(WorkItem.payload) != "", col(WorkItem.reply).is_not(None)),
            {"payload": "", "reply": None, "detail": None},
        ),
        "eval_results": (
            EvalResult,
            col(EvalResult.run_id).in_(old_runs)
            & or_(col(EvalResult.output).is_not(None), col(EvalResult.detail).is_not(None)),
            {"output": None, "detail": None},
        ),
    }


def purge(
    ledger: Ledger,
    settings: Settings,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: str = "cli",
) -> PurgeReport:
    now = now or utcnow()
    days = settings.retention.text_days
    report = PurgeReport(cutoff=now - timedelta(days=days), text_days=days, dry_run=dry_run)
    with ledger.session() as s:
        for name, (table, where, values) in _text_targets(report.cutoff).items():
            count = int(s.execute(select(func.count()).select_from(table).where(where)).scalar_one())
            report.blanked[name] = count
            if dry_run or not count:
                continue
            if table is RequestRow:
                _keep_error_kinds(s, where)
            # Core UPDATE (no ORM flush): no figure column changes, so the rollups stay valid.
            s.execute(
                update(table).where(where).values(**values), execution_options={"synchronize_session": False}
            )
        for name, expiry in EXPIRED_ROWS.items():
            table, where = expiry(now)
            if dry_run:
                report.deleted[name] = int(
                    s.execute(select(func.count()).select_from(table).where(where)).scalar_one()
                )
            else:
                report.deleted[name] = int(affected(s.execute(delete(table).where(where))) or 0)
        if not dry_run:
            s.commit()
    if not dry_run:
        audit(ledger, "purge", None, actor, report.as_dict())
    return report


def _keep_error_kinds(s: Session, where: ColumnElement[bool]) -> None:
    """Errors keep their kind and routing reasons their shape; both lose the message's words."""
    rows = s.execute(
        select(col(RequestRow.id), col(RequestRow.error), col(RequestRow.route_reason)).where(
            where, col(RequestRow.error).contains(":") | _WORDS_IN_ROUTE
        )
    )
    for request_id, error, reason in rows.all():
        s.execute(
            update(RequestRow)
            .where(col(RequestRow.id) == request_id)
            .values(error=error_kind(error), route_reason=route_kind(reason or "")),
            execution_options={"synchronize_session": False},
        )


def last_purge(ledger: Ledger) -> tuple[datetime, dict[str, Any]] | None:
    stmt = (
        select(col(PrivacyAudit.created_at), col(PrivacyAudit.detail))
        .where(col(PrivacyAudit.action) == "purge")
        .order_by(col(PrivacyAudit.id).desc())
        .limit(1)
    )
    with ledger.session() as s:
        row = s.execute(stmt).first()
    return (row[0], json.loads(row[1])) if row else None


def ledger_size(ledger: Ledger) -> int | None:
    """The database's size on disk in bytes (SQLite pages or Postgres' own figure), if known."""
    with ledger.engine.connect() as conn:
        dialect = ledger.engine.dialect.name
        if dialect == "sqlite":
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            return int(pages) * int(size)
        if dialect == "postgresql":
            return int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
    return None


def data_summary(ledger: Ledger, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The retention in force, the last purge, and what the ledger holds (for admins)."""
    now = now or utcnow()
    policy = {
        "text_days": settings.retention.text_days,
        "purge_cron": settings.retention.purge_cron,
        "metadata_only": settings.privacy.metadata_only,
        "redact": list(settings.privacy.redact),
        "event_ttl_hours": settings.event_ttl_hours,
    }
    last = last_purge(ledger)
    rows: dict[str, int] = {}
    with ledger.session() as s:
        for table in (RequestRow, Feedback, ShadowPair, EvalResult, SeenEvent, PrivacyAudit):
            rows[table.__tablename__] = int(s.execute(select(func.count()).select_from(table)).scalar_one())
        holding = {
            name: int(s.execute(select(func.count()).select_from(table).where(where)).scalar_one())
            for name, (table, where, _) in _text_targets(now + timedelta(days=36500)).items()
        }
        oldest = s.execute(
            select(func.min(col(RequestRow.created_at))).where(
                _text_targets(now + timedelta(days=36500))["requests"][1]
            )
        ).scalar_one_or_none()
    return {
        "retention": policy,
        "last_purge": {"at": last[0].isoformat(), **last[1]} if last else None,
        "ledger": {
            "bytes": ledger_size(ledger),
            "rows": rows,
            "rows_with_text": holding,
            "oldest_text": oldest.isoformat() if oldest else None,
        },
    }


def data_text(summary: dict[str, Any]) -> str:
    """The summary as a few lines of Slack mrkdwn (also readable as plain text)."""
    r, ledger, last = summary["retention"], summary["ledger"], summary["last_purge"]
    mode = (
        "metadata only (no message text stored)" if r["metadata_only"] else f"text kept {r['text_days']} days"
    )
    redact = ", ".join(r["redact"]) or "none"
    size = f"{ledger['bytes'] / 1_048_576:.1f} MB" if ledger["bytes"] is not None else "size unknown"
    rows = ", ".join(f"{n} {name}" for name, n in ledger["rows"].items())
    text = ", ".join(f"{n} {name}" for name, n in ledger["rows_with_text"].items())
    purged = (
        f"{last['at'][:16].replace('T', ' ')} UTC (blanked "
        + (", ".join(f"{n} {k}" for k, n in last.get("blanked", {}).items() if n) or "nothing")
        + ")"
        if last
        else "never"
    )
    return "\n".join(
        [
            "*Tierwise data*",
            f"• Retention: {mode}; purge `{r['purge_cron']}` (UTC); figures kept forever",
            f"• Redaction before storage: {redact}",
            f"• Last purge: {purged}",
            f"• Ledger: {size}; {rows}",
            f"• Rows still holding text: {text}; oldest {(ledger['oldest_text'] or 'none')[:10]}",
        ]
    )
