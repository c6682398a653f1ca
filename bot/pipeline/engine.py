"""The request pipeline: route → validate → dedupe → access → tier → budget → context → model →
check → record → after-reply hooks, as named stages (bot.pipeline.stages holds them over plain data).

No Slack and no SQL strings here: adapters build a `Request`, render the `Reply`; the ledger,
the model edge and the optional budget/shadow services are injected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from bot.config import Settings
from bot.context.packs import Pack, TieredSelection, oversized_always, select_tiered
from bot.core.ladder import Ladder
from bot.core.prompt import CONTEXT_HEADER, PromptParts, build_parts, citation_rule, trim_text
from bot.core.routing import Route, Router
from bot.core.skills import Registry, Skill
from bot.core.types import BudgetGuard, Reply, Request
from bot.core.verify import VerifyContext
from bot.ledger import privacy
from bot.ledger.models import RequestRow
from bot.ledger.work import REPLICA_ID
from bot.models import queue
from bot.models.llm import LLM, CallResult, ModelCallError, short_error
from bot.models.stream import StreamSink
from bot.observability import tracing
from bot.pipeline import stages
from bot.pipeline.stages import Attempt, Flow, Stop

if TYPE_CHECKING:
    from bot.ledger.store import Ledger

log = logging.getLogger(__name__)

HISTORY_BUDGET = 1500
COMPACT_ANSWER_TOKENS = 200
PROMPT_MARGIN = 64


AfterReply = Callable[[Request, Skill, PromptParts, Reply, RequestRow], None]


class ShadowHook(Protocol):
    """The shadow sampler (bot.economics.shadow): an after-reply hook whose background pairs can be
    waited for (tests, shutdown)."""

    def __call__(
        self, req: Request, skill: Skill, parts: PromptParts, reply: Reply, row: RequestRow
    ) -> None: ...

    def drain(self, timeout: float = 30.0) -> None: ...


class TierRules:
    """Tier facts over the settings, the ledger and the packs: which tier a skill runs on, whether its
    data must stay local, and where the ladder lets it go. The engine and the economics context
    (bot.economics.context) both read them through this one class."""

    settings: Settings
    ledger: Ledger
    packs: Mapping[str, Pack]

    @property
    def tiers(self) -> list[str]:
        return self.settings.tier_names

    @property
    def ladder(self) -> Ladder:
        return Ladder.of((name, conf.boundary) for name, conf in self.settings.tiers.items())

    def configured_tier(self, skill: Skill) -> tuple[str, str]:
        """The tier a skill runs on and why: admin assignment > config > the skill's default."""
        assigned = self.ledger.current_tier(skill.name)
        if assigned in self.settings.tiers:
            return assigned, "admin assignment"
        conf = self.settings.skill_settings(skill.name).tier
        if conf:
            return conf, "configuration"
        return skill.tier, "skill default"

    def is_sensitive(self, skill: Skill) -> bool:
        override = self.settings.skill_settings(skill.name).sensitive
        return bool(skill.sensitive or override or any(self.packs[p].sensitive for p in skill.packs))

    def allowed_tier(self, skill: Skill, tier: str) -> tuple[str | None, str | None]:
        """Sensitive work never leaves the local boundary: move to the nearest local tier, or refuse."""
        placed = self.ladder.place(tier, self.is_sensitive(skill), who=skill.name)
        return placed.tier, placed.note

    def next_tier(self, skill: Skill, tier: str) -> str | None:
        return self.ladder.stronger(tier, self.is_sensitive(skill))


class Engine(TierRules):
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        packs: dict[str, Pack],
        ledger: Ledger,
        llm: LLM,
        budget: BudgetGuard | None = None,
        after_reply: Sequence[AfterReply] = (),
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.packs = packs
        self.ledger = ledger
        self.llm = llm
        self.router = Router(registry, default=settings.default_skill)
        self.budget = budget
        self.after_reply: list[AfterReply] = list(after_reply)
        self.shadow: ShadowHook | None = None  # when economics are on (tests drain it)

    # Tiers (the rest in TierRules) -------------------------------------------------------

    def context_warnings(self) -> list[str]:
        """Always-included documents larger than a tier's whole context budget (said at start)."""
        used = sorted({p for s in self.registry for p in s.packs})
        budgets = {name: conf.context_limits.tokens for name, conf in self.settings.tiers.items()}
        return oversized_always(
            [self.packs[p] for p in used], budgets, lambda tier, text: self.llm.counter(tier)(text)
        )

    def channels_for(self, skill: Skill) -> list[str]:
        conf = self.settings.skill_settings(skill.name).channels
        allowed: list[str] = [*skill.channels, *(conf or [])]
        for pack in skill.packs:
            allowed.extend(self.packs[pack].channels)
        return sorted({c.lstrip("#") for c in allowed})

    def _skill_packs(self, skill_name: str) -> list[Pack]:
        skill = self.registry.skills.get(skill_name)
        return [self.packs[p] for p in skill.packs if p in self.packs] if skill is not None else []

    # Pipeline: the stages in order (bot.pipeline.stages) -------------------------------------

    @tracing.traced("tierwise.request", tracing.request_attributes)
    def handle(self, req: Request) -> Reply:
        """Route, validate input, dedupe, channel access, tier, budget, context, attempt/escalate,
        compose the reply, record, after-reply hooks. Any stage before the model call may answer
        early (a `Stop`)."""
        if (stop := stages.check_tier_override(req, self.tiers)) is not None:
            return self._stop(stop)
        routed = self.route(req)
        if isinstance(routed, Reply):
            return routed
        skill = self.registry.skills[routed.skill]
        text = stages.validate_input(skill, req.text)
        if isinstance(text, stages.Stop):
            return self._stop(text)
        if (stop := self._dedupe(req, skill)) is not None:
            return self._stop(stop)
        flow = stages.open_flow(req, skill, routed, text, self.ladder, self.is_sensitive(skill))
        for stage in (self._channel_access, self._tier, self._budget, self._context):
            if (stop := stage(flow)) is not None:
                return self._stop(stop)
        self._attempt_and_escalate(flow)
        reply = stages.compose_reply(flow, self.settings.embedded_tiers())
        self._record(flow, reply)
        self._after_reply(flow, reply)
        return reply

    @tracing.traced("tierwise.route", tracing.route_attributes)
    def route(self, req: Request) -> Route | Reply:
        return stages.route(req, self.registry, self.router)

    def _stop(self, stop: stages.Stop) -> Reply:
        if stop.row is not None:  # a refusal or the not-covered answer is a recorded request
            self.ledger.record(stop.row)
        return stop.reply

    def _dedupe(self, req: Request, skill: Skill) -> Stop | None:
        return stages.dedupe(req, skill, self.ledger.claim_event, self.settings.event_ttl_hours)

    def _channel_access(self, flow: Flow) -> Stop | None:
        return stages.channel_access(flow, self.channels_for(flow.skill))

    def _tier(self, flow: Flow) -> Stop | None:
        return stages.place_tier(flow, self.configured_tier)

    def _budget(self, flow: Flow) -> Stop | None:
        return stages.apply_budget(flow, self.budget)

    def _context(self, flow: Flow) -> Stop | None:
        """Prompt assembly and pack selection for the settled tier; on the embedded model's tiers, the
        not-covered answer when the packs hold nothing on the question."""
        req, tier = flow.req, flow.tier
        stages.attach_context(flow, *self._prompt(flow.skill, tier, flow.text, req.history, flow.notes))
        conf = self.settings.tiers[tier]
        return stages.not_covered(flow, conf.embedded, conf.model)

    def _attempt_and_escalate(self, flow: Flow) -> None:
        """The model call on the settled tier; a structured answer that is invalid or fails its check
        is asked once more of the next allowed stronger tier. The first attempt is on the ledger before
        the second call starts."""
        req, skill = flow.req, flow.skill
        verify = VerifyContext(text=flow.text, packs=self.packs, skill=skill.name)
        if req.on_step is not None and skill.output is not None:
            req.on_step(f"Working on the {skill.name} fields…")
        first = self._attempt(skill, flow.tier, flow.prompt, flow.row, verify, _sink(req, skill))
        flow.attempts = [first]
        stronger = stages.escalation_target(flow, first)
        if stronger is None:
            return
        self.ledger.record(first.row)
        first.recorded = True
        if req.on_step is not None:
            req.on_step(f"{flow.tier}'s answer failed validation; asking {stronger}")
        parts, _, _ = self._prompt(skill, stronger, flow.text, req.history, [])
        row = stages.escalated_row(flow, first)
        second = self._attempt(skill, stronger, parts, row, verify, _sink(req, skill))
        flow.attempts = stages.settle_escalation(first, second)

    def _record(self, flow: Flow, reply: Reply) -> None:
        """The attempts' rows; the reply is kept (durable work) in the commit of the one that answers."""
        for attempt in flow.attempts:
            if not attempt.recorded:
                keep = flow.req.keep_reply if attempt is flow.attempts[-1] else None
                self.ledger.record(attempt.row, keep(reply) if keep else None)
                attempt.recorded = True

    def _after_reply(self, flow: Flow, reply: Reply) -> None:
        for hook in self.after_reply:
            try:
                hook(flow.req, flow.skill, flow.prompt, reply, flow.attempts[-1].row)
            except Exception:  # background extras must never break the answer
                log.exception("after-reply hook failed for request %s", reply.request_id)

    @tracing.traced("tierwise.context", tracing.context_attributes)
    def _prompt(
        self, skill: Skill, tier: str, text: str, history: list[dict[str, str]], notes: list[str]
    ) -> tuple[PromptParts, TieredSelection | None, str | None]:
        count = self.llm.counter(tier)
        window = self.settings.tiers[tier].context_window or 8192
        input_budget = min(self.settings.max_input_tokens, max(256, window // 2))
        text, note = trim_text(text, input_budget, count)
        if note:
            notes.append(note)
        kept: list[dict[str, str]] = []
        used = 0
        for message in reversed(history):  # newest first: recent turns matter most
            cost = count(message["content"]) + 4
            if used + cost > HISTORY_BUDGET:
                break
            kept.insert(0, message)
            used += cost
        packs = [self.packs[p] for p in skill.packs]
        # Everything but the pack context: instructions, the scaffolding around the context, the user's
        # text, history, the reply, and the chat template's per-message framing.
        scaffolding = count(CONTEXT_HEADER) + count(citation_rule()) + 4 * (len(kept) + 2) + 3
        fixed = (
            count(skill.instructions)
            + scaffolding
            + count(text)
            + used
            + skill.max_output_tokens
            + PROMPT_MARGIN
        )
        if skill.output is not None:
            fixed += count(build_parts(skill, "", "").output_contract)
        limits = self.settings.tiers[tier].context_limits
        budget = max(0, min(skill.context_budget, limits.tokens, window - fixed))
        selection = (
            select_tiered(
                packs, text, budget, count, self.settings.cache_dir, limits.chunks, limits.always_share
            )
            if packs
            else None
        )
        compact = self.settings.tiers[tier].embedded and skill.cite_sources and skill.output is None
        parts = build_parts(
            skill, text, selection.text if selection else "", kept, tuple(notes), compact=compact
        )
        pack_hash = ",".join(f"{p.name}@{p.hash}" for p in packs) or None
        return parts, selection, pack_hash

    def _attempt(
        self,
        skill: Skill,
        tier: str,
        parts: PromptParts,
        base: RequestRow,
        verify: VerifyContext | None = None,
        sink: StreamSink | None = None,
    ) -> Attempt:
        row = stages.copy_row(base, tier=tier, model_requested=self.settings.tiers[tier].model)
        # The tiny-model layout also keeps answers short: a 135M model's extra tokens are where it drifts.
        max_tokens = min(skill.max_output_tokens, COMPACT_ANSWER_TOKENS) if parts.context_in_user else None
        result, failure = self._call(
            row, tier, parts.messages(), max_tokens or skill.max_output_tokens, skill.output, sink
        )
        if result is None:
            return Attempt(row, None, problem=short_error(failure or "error"))
        return stages.check_output(skill, row, result, verify or VerifyContext("", self.packs))

    @tracing.traced(tracing.model_call_name, tracing.model_call_attributes)
    def _call(
        self,
        row: RequestRow,
        tier: str,
        messages: list[dict[str, Any]],
        max_tokens: int,
        schema: Any = None,
        sink: StreamSink | None = None,
    ) -> tuple[CallResult | None, str | None]:
        """One model call, its figures written onto the (not yet recorded) row; (None, kind) on failure.
        The call is on the ledger before it starts, so a crash leaves an `interrupted` row behind."""
        packs = self._skill_packs(row.skill)
        messages, redacted = privacy.outbound(self.settings, self.ladder, packs, row.skill, tier, messages)
        row.redactions = (row.redactions or 0) + redacted
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["response_schema"] = schema
        if sink is not None:
            extra["sink"] = sink
        row.worker = REPLICA_ID
        self.ledger.start_call(row, REPLICA_ID)
        with queue.watching() as watch:  # the wait for the embedded model, if any
            try:
                result = self.llm.complete(tier, messages, max_tokens, **extra)
            except ModelCallError as exc:
                row.status, row.error = "error", f"{exc.kind}: {exc.message}"
                row.latency_ms = round(exc.latency_s * 1000)
                row.queue_ms = round(watch.waited_s * 1000)
                return None, exc.kind
        row.queue_ms = round(watch.waited_s * 1000)  # already inside latency_ms: the call waited
        row.model_used = result.model_used
        row.prompt_tokens, row.completion_tokens = result.prompt_tokens, result.completion_tokens
        row.cached_tokens, row.cache_write_tokens = result.cache_read_tokens, result.cache_write_tokens
        row.cost_usd, row.cost_known = result.cost_usd, result.cost_known
        row.price_source = result.price_source
        row.latency_ms = round(result.latency_s * 1000)
        row.response = result.text[:20000]
        row.output_mode = result.output_mode
        if result.ttft_s is not None:
            row.ttft_ms = round(result.ttft_s * 1000)
        if result.stopped:
            row.status = "stopped"
        return result, None

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
    ) -> tuple[CallResult | None, RequestRow]:
        """A recorded model call outside the user pipeline (judge, shadow): same ledger, own purpose."""
        row = RequestRow(
            source=source,
            purpose=purpose,
            skill=skill,
            tier=tier,
            model_requested=self.settings.tiers[tier].model,
            route_reason=route_reason,
            shadow=purpose in ("shadow", "judge"),
        )
        result, _ = self._call(row, tier, messages, max_tokens)
        self.ledger.record(row)
        return result, row

    # Feedback ----------------------------------------------------------------------------

    def rate(
        self, request_id: str, user: str, score: int, comment: str | None = None, source: str = "cli"
    ) -> bool:
        """Record feedback; True when new, False when it updated the user's earlier rating."""
        _, created = self.ledger.add_feedback(request_id, user, score, comment, source)
        return created


def _sink(req: Request, skill: Skill) -> StreamSink | None:
    """A stream sink when the caller streams; structured output (JSON) is not shown while it is written."""
    if req.on_delta is None and req.stop is None:
        return None
    relay = req.on_delta if req.on_delta is not None and skill.output is None else None
    return StreamSink(on_delta=relay or (lambda _text: None), stop=req.stop or threading.Event())


def embedded_notice(settings: Settings) -> str | None:
    embedded = settings.embedded_tiers()
    if not embedded:
        return None
    which = "every tier" if len(embedded) == len(settings.tiers) else f"tier(s) {', '.join(embedded)}"
    return (
        f"Tierwise: {which} ({', '.join(embedded)}) run on the embedded SmolLM2-135M model (offline, free, "
        "modest quality). Configure real tiers in tierwise.toml (see tierwise.example.toml)."
    )
