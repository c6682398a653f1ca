"""Ledger tables (SQLModel). Times are timezone-aware UTC; every column the digest groups by is indexed."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return secrets.token_hex(8)


class RequestRow(SQLModel, table=True):
    """One model call (or a request refused before any call). Escalations and shadows are rows too."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_created_skill", "created_at", "skill"),
        Index("ix_requests_skill_tier_created", "skill", "tier", "created_at"),
        Index("ix_requests_user_created", "user_id", "created_at"),
        # Covers every query over a window of user traffic (the digest, the review, usage): SQLite
        # answers them from the index alone, without touching the table.
        Index(
            "ix_requests_user_window",
            "purpose",
            "created_at",
            "skill",
            "tier",
            "escalated_from",
            "status",
            "cost_known",
            "cost_usd",
            "latency_ms",
            "user_id",
            "id",
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    source: str = Field(default="cli", max_length=32)
    purpose: str = Field(default="user", max_length=16)  # user | shadow | judge | eval
    user_id: str | None = Field(default=None, max_length=64)
    channel: str | None = Field(default=None, max_length=64)
    thread_ts: str | None = Field(default=None, max_length=32)
    event_id: str | None = Field(default=None, max_length=64)
    skill: str = Field(max_length=64)
    route_reason: str = Field(default="", max_length=500)
    tier: str | None = Field(default=None, max_length=32)
    model_requested: str | None = Field(default=None, max_length=200)
    model_used: str | None = Field(default=None, max_length=200)
    pack_hash: str | None = Field(default=None, max_length=500)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    price_source: str = Field(default="", max_length=32)
    latency_ms: int = 0
    # ok | error | invalid | refused | stopped (the user stopped it); interrupted: its process died
    # during the call (see CallInFlight)
    status: str = Field(default="ok", max_length=16, index=True)
    error: str | None = None
    escalated_from: str | None = Field(default=None, max_length=32, index=True)
    shadow: bool = Field(default=False)
    input_chars: int = 0
    response: str | None = None
    notes: str | None = None
    # How structured output was obtained: grammar (embedded model) | schema (provider-native
    # response_format) | prompt (instructions only) | text (a free-text skill).
    output_mode: str | None = Field(default=None, max_length=16)
    # The skill's verifiers on this answer: passed | failed | not_run (None: the skill has none).
    verify_status: str | None = Field(default=None, max_length=16)
    verify_detail: str | None = None
    ttft_ms: int | None = None  # the model's first token, from the call's start
    visible_ttft_ms: int | None = None  # the first text a user could see (e.g. Slack), from receipt
    queue_ms: int = 0  # time spent waiting for a model slot (counted in latency_ms too)
    delivery: str | None = Field(default=None, max_length=16)  # stream | update | post | response_url
    redactions: int = 0  # spans redacted before storage or before an external tier
    worker: str | None = Field(default=None, max_length=128)  # the process (replica id) that made the call


class Feedback(SQLModel, table=True):
    """One rating per user per request; changing your mind updates the row."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("request_id", "user_id", name="uq_feedback_request_user"),
        Index("ix_feedback_request_score", "request_id", "score"),  # thumbs per request from the index alone
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="requests.id", max_length=32, index=True)
    user_id: str = Field(max_length=64)
    score: int  # +1 or -1
    comment: str | None = None
    source: str = Field(default="cli", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)


class TierAssignment(SQLModel, table=True):
    """History of tier choices per skill; the newest row wins."""

    __tablename__ = "tier_assignments"

    id: int | None = Field(default=None, primary_key=True)
    skill: str = Field(max_length=64, index=True)
    tier: str = Field(max_length=32)
    previous_tier: str | None = Field(default=None, max_length=32)
    assigned_by: str = Field(max_length=64)
    reason: str = ""
    source: str = Field(default="cli", max_length=32)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class SkillValue(SQLModel, table=True):
    """What a good answer of a skill is worth (USD), set by an admin; the newest row per skill wins.
    value_usd None: back to the configured default."""

    __tablename__ = "skill_values"

    id: int | None = Field(default=None, primary_key=True)
    skill: str = Field(max_length=64, index=True)
    value_usd: float | None = None
    set_by: str = Field(max_length=64)
    source: str = Field(default="cli", max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class SeenEvent(SQLModel, table=True):
    """Slack event ids already handled, so a redelivery is answered exactly once (also after restart)."""

    __tablename__ = "seen_events"

    event_id: str = Field(primary_key=True, max_length=64)
    seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class EvalRun(SQLModel, table=True):
    __tablename__ = "eval_runs"
    __table_args__ = (Index("ix_eval_runs_skill_tier_created", "skill", "tier", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    skill: str = Field(max_length=64)
    tier: str = Field(max_length=32)
    model: str = Field(default="", max_length=200)
    judge_tier: str | None = Field(default=None, max_length=32)
    pack_hash: str | None = Field(default=None, max_length=500)
    cases: int = 0
    passed: int = 0
    critical_failures: int = 0
    errors: int = 0
    total_cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    p50_latency_ms: int = 0

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0


class EvalResult(SQLModel, table=True):
    __tablename__ = "eval_results"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="eval_runs.id", max_length=32, index=True)
    case_id: str = Field(max_length=64)
    critical: bool = False
    passed: bool = False
    score: float = 0.0
    cost_usd: float = 0.0
    latency_ms: int = 0
    request_id: str | None = Field(default=None, max_length=32)
    output: str | None = None
    detail: str | None = None


class ShadowPair(SQLModel, table=True):
    """A user request answered on its tier, replayed on a candidate tier, and the verdict."""

    __tablename__ = "shadow_pairs"
    __table_args__ = (Index("ix_shadow_skill_tier_created", "skill", "candidate_tier", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    skill: str = Field(max_length=64)
    primary_request_id: str = Field(max_length=32)
    primary_tier: str = Field(max_length=32)
    candidate_request_id: str | None = Field(default=None, max_length=32)
    candidate_tier: str = Field(max_length=32)
    verdict: str = Field(max_length=16)  # win | tie | loss | error (from the candidate's side)
    method: str = Field(max_length=16)  # comparator | judge
    judge_request_id: str | None = Field(default=None, max_length=32)
    candidate_cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    detail: str | None = None


class DigestRun(SQLModel, table=True):
    """One row per digest period: the guard that makes two schedulers post once."""

    __tablename__ = "digest_runs"

    period: str = Field(primary_key=True, max_length=16)  # ISO week, e.g. 2026-W47
    claimed_by: str = Field(max_length=128)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    status: str = Field(default="running", max_length=16)  # running | posted | failed
    detail: str | None = None


class BudgetAlert(SQLModel, table=True):
    __tablename__ = "budget_alerts"
    __table_args__ = (UniqueConstraint("skill", "period", "threshold", name="uq_budget_alert"),)

    id: int | None = Field(default=None, primary_key=True)
    skill: str = Field(max_length=64)
    period: str = Field(max_length=16)  # YYYY-MM
    threshold: float
    created_at: datetime = Field(default_factory=utcnow)


class Recommendation(SQLModel, table=True):
    __tablename__ = "recommendations"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    period: str = Field(max_length=16)
    skill: str = Field(max_length=64, index=True)
    action: str = Field(max_length=16)  # downgrade | upgrade | keep | fix
    current_tier: str = Field(max_length=32)
    target_tier: str | None = Field(default=None, max_length=32)
    reason: str = ""
    evidence: str = "{}"  # JSON
    status: str = Field(default="open", max_length=16)  # open | applied | dismissed | stale
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = None


class SlackMessage(SQLModel, table=True):
    """Which request a bot message in Slack answers (for reactions and thread follow-ups)."""

    __tablename__ = "slack_messages"
    __table_args__ = (Index("ix_slack_messages_thread", "channel", "thread_ts"),)

    channel: str = Field(primary_key=True, max_length=64)
    ts: str = Field(primary_key=True, max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    request_id: str = Field(max_length=32, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class DailyRollup(SQLModel, table=True):
    """Additive figures of user traffic per UTC day, skill and the tier each request started on.
    Built once per closed day (see bot/ledger/rollups.py), so a 28-day review reads ~28 rows per
    skill and tier instead of every request; any later write to that day drops the rollup."""

    __tablename__ = "daily_rollups"

    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD (UTC)
    skill: str = Field(primary_key=True, max_length=64)
    tier: str = Field(primary_key=True, max_length=32)
    requests: int = 0
    cost_sum: float = 0.0
    errors: int = 0
    escalations: int = 0
    unknown_cost: int = 0
    feedback: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0


class RollupDay(SQLModel, table=True):
    """A closed day whose rollup rows are complete (a day with no traffic has a marker and no rows)."""

    __tablename__ = "rollup_days"

    day: str = Field(primary_key=True, max_length=10)
    built_at: datetime = Field(default_factory=utcnow)


class PrivacyAudit(SQLModel, table=True):
    """Data-protection actions (export, erase, purge), kept for accountability. `subject` is a
    SHA-256 of the user id: it shows a request was honoured without keeping the id."""

    __tablename__ = "privacy_audit"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    action: str = Field(max_length=16, index=True)  # export | erase | purge
    subject: str | None = Field(default=None, max_length=64)
    actor: str = Field(default="cli", max_length=64)
    detail: str = "{}"  # JSON: what was exported, erased or blanked (counts only)


class WorkItem(SQLModel, table=True):
    """An accepted Slack event, command or shortcut that must be answered: persisted with its claim,
    so a crash is resumed by any replica (bot/ledger/work.py) instead of being lost."""

    __tablename__ = "work_items"
    __table_args__ = (Index("ix_work_items_open", "status", "owner"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    key: str = Field(max_length=160, unique=True)  # the event id (or trigger id): a redelivery hits it
    kind: str = Field(max_length=16)  # mention | message | command | shortcut
    payload: str  # JSON: what the listener needs to run again
    status: str = Field(default="open", max_length=16)  # open | done | expired | failed
    stage: str = Field(default="accepted", max_length=16)  # accepted | started | replied | delivered
    owner: str = Field(max_length=128)  # the replica working on it
    attempts: int = 0  # take-overs so far
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    channel: str | None = Field(default=None, max_length=64)
    thread_ts: str | None = Field(default=None, max_length=32)
    message_ts: str | None = Field(default=None, max_length=32)  # a placeholder or stream on screen
    request_id: str | None = Field(default=None, max_length=32)
    reply: str | None = None  # the engine's reply (JSON) once made: delivered as is after a crash
    detail: str | None = None


class CallInFlight(SQLModel, table=True):
    """A model call under way: written before the call, deleted in the transaction that records its
    `requests` row. One left behind by a dead process becomes an `interrupted` request row. (A small
    side table rather than a status on `requests`: the requests row keeps its single insert, and its
    nine indexes are not written twice per call.)"""

    __tablename__ = "calls_in_flight"

    id: str = Field(primary_key=True, max_length=32)  # the request row's id
    worker: str = Field(max_length=128)  # the replica (process) making the call
    started_at: datetime = Field(default_factory=utcnow)
    row: str  # the request row as known at the start (JSON): skill, tier, model, who, where


class Replica(SQLModel, table=True):
    """A serving process and its heartbeat: work and model calls of a replica gone quiet are taken over."""

    __tablename__ = "replicas"

    id: str = Field(primary_key=True, max_length=128)
    host: str = Field(max_length=128)
    pid: int
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow, index=True)
