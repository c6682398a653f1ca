"""What message text the ledger may keep, and data-subject requests (export, erase).

One session hook applies the storage policy to every text column of every ledger write, whoever
writes it (the engine, shadow pairs, evals, feedback): detectors redact spans (counted on the request
row), and in metadata-only mode no message text is stored at all. Prompts to `external` tiers are
redacted when the skill or one of its packs asks for it (`redact_external`).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.core.redaction import DETECTORS, redact
from bot.ledger.db import affected
from bot.ledger.models import (
    EvalResult,
    Feedback,
    PrivacyAudit,
    Recommendation,
    RequestRow,
    ShadowPair,
    TierAssignment,
)

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.core.ladder import Ladder
    from bot.ledger.store import Ledger

# Columns that may hold message text (a prompt's words, an answer, a comment, a judge's reasoning).
# `error` keeps its kind ("timeout", "invalid output") when its text must go: it is operational.
TEXT_COLUMNS: dict[type, tuple[str, ...]] = {
    RequestRow: ("response", "notes", "verify_detail", "error", "route_reason"),
    Feedback: ("comment",),
    EvalResult: ("output", "detail"),
    ShadowPair: ("detail",),
}
KIND_COLUMNS = frozenset({"error", "route_reason"})
_MATCHED = re.compile(r"matched (.+?) \(score")


def route_kind(reason: str) -> str:
    """A routing reason without the message's words: "matched 2 term(s) (score 0.40); tier …"."""
    return _MATCHED.sub(lambda m: f"matched {len(m.group(1).split(', '))} term(s) (score", reason)


def kind_of(column: str, text: str) -> str | None:
    """What a kind column keeps when its text must go."""
    return route_kind(text) if column == "route_reason" else error_kind(text)


def error_kind(text: str | None) -> str | None:
    """The part of an error message before its first colon: what went wrong, not what was said."""
    if text is None:
        return None
    return text.split(":", 1)[0].strip()[:80]


def subject_hash(user: str) -> str:
    return hashlib.sha256(user.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoragePolicy:
    metadata_only: bool = False
    detectors: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> StoragePolicy:
        return cls(settings.privacy.metadata_only, tuple(settings.privacy.redact))

    @property
    def active(self) -> bool:
        return self.metadata_only or bool(self.detectors)

    def store(self, column: str, value: str) -> tuple[str | None, int]:
        """The value to store for `column`, and how many spans were redacted."""
        if self.metadata_only:
            return (kind_of(column, value) if column in KIND_COLUMNS else None), 0
        if self.detectors:
            return redact(value, self.detectors)
        return value, 0


_policies: weakref.WeakKeyDictionary[Any, StoragePolicy] = weakref.WeakKeyDictionary()


def install(ledger: Ledger, settings: Settings) -> StoragePolicy:
    """Apply `settings`' storage policy to every write through this ledger's database engine."""
    policy = StoragePolicy.of(settings)
    _policies[ledger.engine] = policy
    return policy


def policy_for(ledger: Ledger) -> StoragePolicy:
    return _policies.get(ledger.engine, StoragePolicy())


@event.listens_for(Session, "before_flush")
def _apply_policy(session: Session, _context: Any, _instances: Any) -> None:
    bind = session.bind
    policy = _policies.get(bind) if bind is not None else None
    if policy is None or not policy.active:
        return
    for obj in [*session.new, *session.dirty]:
        columns = TEXT_COLUMNS.get(type(obj))
        if not columns:
            continue
        state = inspect(obj)
        redacted = 0
        for column in columns:
            value = getattr(obj, column)
            if value is None or (not state.pending and not state.attrs[column].history.has_changes()):
                continue
            stored, count = policy.store(column, value)
            if stored != value:
                setattr(obj, column, stored)
            redacted += count
        if redacted and isinstance(obj, RequestRow):
            obj.redactions = (obj.redactions or 0) + redacted


# Before an external tier ------------------------------------------------------------------------


class RedactFlag(Protocol):
    """What outbound redaction reads of a context pack."""

    @property
    def redact_external(self) -> bool: ...


def wants_outbound_redaction(settings: Settings, skill_name: str, packs: Iterable[RedactFlag]) -> bool:
    """The skill's configuration or one of its packs (`redact_external`) asks for redaction."""
    if settings.skill_settings(skill_name).redact_external:
        return True
    return any(p.redact_external for p in packs)


def outbound(
    settings: Settings,
    ladder: Ladder,
    packs: Iterable[RedactFlag],
    skill_name: str,
    tier: str,
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], int]:
    """The messages as they may leave for `tier`: redacted when it is external and the skill (or one of
    its `packs`) asks."""
    if ladder.boundary(tier) != "external" or not wants_outbound_redaction(settings, skill_name, packs):
        return messages, 0
    names = settings.privacy.redact or DETECTORS
    out: list[dict[str, Any]] = []
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            cleaned, count = redact(content, names)
            total += count
            message = {**message, "content": cleaned}
        out.append(message)
    return out, total


# Data-subject requests -----------------------------------------------------------------------


def _plain(row: Any) -> dict[str, Any]:
    data = row.model_dump()
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in data.items()}


def _user_request_ids(s: Session, user: str) -> list[str]:
    return list(s.execute(select(col(RequestRow.id)).where(col(RequestRow.user_id) == user)).scalars())


def _derived_request_ids(s: Session, request_ids: Iterable[str]) -> tuple[list[ShadowPair], list[str]]:
    """Shadow pairs of these requests and the candidate/judge rows that replayed their text."""
    ids = list(request_ids)
    if not ids:
        return [], []
    pairs = list(s.execute(select(ShadowPair).where(col(ShadowPair.primary_request_id).in_(ids))).scalars())
    derived = [r for p in pairs for r in (p.candidate_request_id, p.judge_request_id) if r]
    return pairs, derived


def audit(ledger: Ledger, action: str, subject: str | None, actor: str, detail: dict[str, Any]) -> None:
    with ledger.session() as s:
        s.add(
            PrivacyAudit(
                action=action,
                subject=subject_hash(subject) if subject else None,
                actor=actor,
                detail=json.dumps(detail, sort_keys=True),
            )
        )
        s.commit()


def export_user(ledger: Ledger, user: str, actor: str = "cli") -> dict[str, Any] | None:
    """Everything the ledger holds about `user`, as plain data; None when it holds nothing."""
    with ledger.session() as s:
        ids = _user_request_ids(s, user)
        requests = list(s.execute(select(RequestRow).where(col(RequestRow.user_id) == user)).scalars())
        feedback = list(s.execute(select(Feedback).where(col(Feedback.user_id) == user)).scalars())
        pairs, derived = _derived_request_ids(s, ids)
        replays = (
            list(s.execute(select(RequestRow).where(col(RequestRow.id).in_(derived))).scalars())
            if derived
            else []
        )
        assignments = list(
            s.execute(select(TierAssignment).where(col(TierAssignment.assigned_by) == user)).scalars()
        )
        decisions = list(
            s.execute(select(Recommendation).where(col(Recommendation.decided_by) == user)).scalars()
        )
    if not (requests or feedback or assignments or decisions):
        return None
    data = {
        "user": user,
        "requests": [_plain(r) for r in requests],
        "feedback": [_plain(f) for f in feedback],
        "shadow_pairs": [_plain(p) for p in pairs],
        "shadow_and_judge_calls": [_plain(r) for r in replays],
        "tier_assignments": [_plain(a) for a in assignments],
        "recommendation_decisions": [_plain(r) for r in decisions],
    }
    audit(ledger, "export", user, actor, {k: len(v) for k, v in data.items() if isinstance(v, list)})
    return data


def erase_user(ledger: Ledger, user: str, actor: str = "cli") -> dict[str, int] | None:
    """Remove `user` from the ledger: their id becomes a random pseudonym (the same on all their rows,
    so counts of users stay right) and every text of theirs is blanked. Figures are untouched.
    None (and nothing changed) when the ledger holds nothing about `user`."""
    pseudonym = f"erased-{secrets.token_hex(6)}"
    with ledger.session() as s:
        ids = _user_request_ids(s, user)
        pairs, derived = _derived_request_ids(s, ids)
        touched = ids + derived
        kinds = (
            list(
                s.execute(
                    select(col(RequestRow.id), col(RequestRow.error), col(RequestRow.route_reason)).where(
                        col(RequestRow.id).in_(touched)
                    )
                )
            )
            if touched
            else []
        )
        counts = {
            "requests": len(ids),
            "shadow_and_judge_calls": len(derived),
            "shadow_pairs": len(pairs),
            "feedback": affected(
                s.execute(
                    update(Feedback)
                    .where(col(Feedback.user_id) == user)
                    .values(user_id=pseudonym, comment=None)
                )
            )
            or 0,
            "tier_assignments": affected(
                s.execute(
                    update(TierAssignment)
                    .where(col(TierAssignment.assigned_by) == user)
                    .values(assigned_by=pseudonym)
                )
            )
            or 0,
            "recommendation_decisions": affected(
                s.execute(
                    update(Recommendation)
                    .where(col(Recommendation.decided_by) == user)
                    .values(decided_by=pseudonym)
                )
            )
            or 0,
        }
        if not any(counts.values()):
            s.rollback()
            return None
        if ids:
            s.execute(update(RequestRow).where(col(RequestRow.id).in_(ids)).values(user_id=pseudonym))
        if touched:
            s.execute(
                update(RequestRow)
                .where(col(RequestRow.id).in_(touched))
                .values(response=None, notes=None, verify_detail=None)
            )
            for request_id, error, reason in kinds:
                values = {"error": error_kind(error), "route_reason": route_kind(reason or "")}
                if (error, reason) != (values["error"], values["route_reason"]):
                    s.execute(update(RequestRow).where(col(RequestRow.id) == request_id).values(**values))
        if pairs:
            s.execute(
                update(ShadowPair).where(col(ShadowPair.id).in_([p.id for p in pairs])).values(detail=None)
            )
        s.commit()
    audit(ledger, "erase", user, actor, counts)
    return counts
