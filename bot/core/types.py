"""The request and its reply: what adapters build and render, and what the pipeline passes along."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

if TYPE_CHECKING:
    from bot.context.packs import Citation
    from bot.core.skills import Skill
    from bot.ledger.models import RequestRow
    from bot.models.llm import CallResult


# The values are the ledger's `requests.status` / `requests.purpose` strings: the schema stores them
# as text, so these types name the strings rather than replace them.
RequestStatus = Literal[
    "ok",
    "error",  # the model call failed
    "invalid",  # the output broke the skill's schema or rules
    "refused",  # a budget, channel or data-boundary rule said no
    "duplicate",  # a redelivered event already answered
    "rejected",  # the input failed the skill's validation
    "stopped",  # the user pressed Stop
    "interrupted",  # left in flight by a process that died (closed on the next start)
]
REQUEST_STATUSES: tuple[RequestStatus, ...] = get_args(RequestStatus)
Purpose = Literal["user", "shadow", "judge", "eval"]  # only "user" rows count as traffic
PURPOSES: tuple[Purpose, ...] = get_args(Purpose)


# A caller's write in the transaction that records a request row (given the open session); it returns
# what to run once that transaction has committed.
AlsoWrite = Callable[[Any], Callable[[], None]]


@dataclass
class Request:
    text: str
    source: str = "cli"
    user: str = "local"
    channel: str | None = None
    channel_name: str | None = None
    thread: str | None = None
    skill: str | None = None  # explicit choice (slash command, --skill, /name)
    explicit_via: str = "explicit"
    tier: str | None = None  # operator override (CLI --tier, evals); never from chat text
    event_id: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)
    purpose: Purpose = "user"
    allow_escalation: bool = True
    # Streaming (Slack, console): answer text as the model writes it (free-text skills only), progress
    # steps such as an escalation, and a stop the user can press. None: one unstreamed call.
    on_delta: Callable[[str], None] | None = None
    on_step: Callable[[str], None] | None = None
    stop: threading.Event | None = None
    claimed: bool = False  # the event id was claimed with its durable work item (bot.ledger.work)
    # Durable work keeps the reply in the transaction that records the request (one commit, and no
    # moment where the request is recorded but its reply is not kept). None: nothing to keep.
    keep_reply: Callable[[Reply], AlsoWrite] | None = None


@dataclass
class Reply:
    text: str
    status: RequestStatus
    skill: str | None = None
    request_id: str | None = None
    tier: str | None = None
    model: str | None = None
    structured: dict[str, Any] | None = None
    cost_usd: float = 0.0
    cost_known: bool = True
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    route_reason: str = ""
    sources: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    escalated: bool = False
    pack_hash: str | None = None
    citations: tuple[Citation, ...] = ()  # the document sections the answer was given
    embedded: bool = False  # answered by the small built-in model

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def footer(self) -> str:
        parts = [self.skill or "?", self.tier or "-", self.model or "-"]
        cost = f"${self.cost_usd:.4f}" if self.cost_known else "$?"
        return " · ".join([*parts, cost, f"{self.latency_s:.1f}s"])


@dataclass(frozen=True)
class BudgetDecision:
    tier: str
    refuse: str | None = None  # a message for the user when the request must not run
    note: str | None = None


class BudgetGuard(Protocol):
    def check(
        self, skill: Skill, tier: str, request: Request, cheaper: str | None = None
    ) -> BudgetDecision: ...


class ModelCaller(Protocol):
    """A recorded model call outside the user pipeline (judge, shadow): the engine's `call_model`.
    The call is a ledger row with its own purpose, so its spend stays apart from user spend."""

    def call_model(
        self,
        tier: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        *,
        skill: str,
        purpose: str,
        source: str = "internal",
        route_reason: str = "",
    ) -> tuple[CallResult | None, RequestRow]: ...
