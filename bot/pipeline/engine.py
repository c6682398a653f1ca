"""The request pipeline: dedupe → route → access → tier → context → model → check → record.

No Slack and no SQL strings here: adapters build a `Request`, render the `Reply`; the ledger,
the model edge and the optional budget/shadow services are injected.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.context import grounding
from bot.context.packs import Pack, TieredSelection, oversized_always, select_tiered
from bot.core.ladder import Ladder
from bot.core.prompt import CONTEXT_HEADER, PromptParts, build_parts, citation_rule, parse_output, trim_text
from bot.core.routing import Route, Router
from bot.core.skills import InputError, Registry, Skill
from bot.core.types import BudgetGuard, Reply, Request
from bot.core.verify import Verdict, VerifyContext, run_verifiers
from bot.ledger import privacy
from bot.ledger.models import RequestRow, new_id
from bot.ledger.work import REPLICA_ID
from bot.models import queue as model_queue
from bot.models.llm import LLM, CallResult, ModelCallError, short_error
from bot.models.stream import StreamSink
from bot.observability import tracing

if TYPE_CHECKING:
    from bot.ledger.store import Ledger

log = logging.getLogger(__name__)

HISTORY_BUDGET = 1500
COMPACT_ANSWER_TOKENS = 200
PROMPT_MARGIN = 64


AfterReply = Callable[[Request, Skill, PromptParts, Reply, RequestRow], None]


@dataclass
class Attempt:
    row: RequestRow
    result: CallResult | None
    structured: Any = None
    problem: str | None = None  # why the output was rejected, or the error text
    verdict: Verdict | None = None  # the skill's verifiers on a valid answer

    @property
    def check_failed(self) -> bool:
        return self.verdict is not None and self.verdict.status == "failed"


def _copy_row(row: RequestRow, **changes: Any) -> RequestRow:
    # Not model_copy(): that would share SQLAlchemy instance state between two rows.
    return RequestRow(**{**row.model_dump(), **changes})


def _looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:4000]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t")
    return bool(sample) and control / len(sample) > 0.1


class Engine:
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
        self.shadow: Any = None  # the Shadow hook when economics are on (tests drain it)

    # Tiers -------------------------------------------------------------------------------

    @property
    def tiers(self) -> list[str]:
        return self.settings.tier_names

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

    @property
    def ladder(self) -> Ladder:
        return Ladder.of((name, conf.boundary) for name, conf in self.settings.tiers.items())

    def allowed_tier(self, skill: Skill, tier: str) -> tuple[str | None, str | None]:
        """Sensitive work never leaves the local boundary: move to the nearest local tier, or refuse."""
        placed = self.ladder.place(tier, self.is_sensitive(skill), who=skill.name)
        return placed.tier, placed.note

    def next_tier(self, skill: Skill, tier: str) -> str | None:
        return self.ladder.stronger(tier, self.is_sensitive(skill))

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

    # Pipeline ----------------------------------------------------------------------------

    @tracing.traced("tierwise.route", tracing.route_attributes)
    def route(self, req: Request) -> Route | Reply:
        if req.skill:
            skill = self.registry.get(req.skill) or self.registry.by_command(req.skill)
            if skill is None:
                return Reply(
                    text=f"Unknown skill {req.skill!r}. Valid skills: {', '.join(self.registry.names())}.",
                    status="rejected",
                )
            return self.router.route(req.text, explicit=skill.name, explicit_via=req.explicit_via)
        return self.router.route(req.text)

    @tracing.traced("tierwise.request", tracing.request_attributes)
    def handle(self, req: Request) -> Reply:
        if req.tier is not None and req.tier not in self.settings.tiers:
            return Reply(
                text=f"Unknown tier {req.tier!r}. Valid tiers: {', '.join(self.tiers)}.", status="rejected"
            )
        routed = self.route(req)
        if isinstance(routed, Reply):
            return routed
        skill = self.registry.skills[routed.skill]
        text = req.text.strip()
        if not text:
            return Reply(
                text=f"Tell me what you need, e.g. `{skill.slash} {skill.examples[0] if skill.examples else '…'}`",
                status="rejected",
                skill=skill.name,
            )
        if _looks_binary(text):
            return Reply(
                text="That looks like binary data; paste it as text.", status="rejected", skill=skill.name
            )
        if skill.prepare_input is not None:
            try:
                text = skill.prepare_input(text)
            except InputError as exc:
                return Reply(text=str(exc), status="rejected", skill=skill.name)

        ttl = self.settings.event_ttl_hours  # claimed: with its durable work item (bot.ledger.work)
        if req.event_id and not req.claimed and not self.ledger.claim_event(req.event_id, ttl):
            return Reply(text="", status="duplicate", skill=skill.name)

        base = RequestRow(
            source=req.source,
            purpose=req.purpose,
            user_id=req.user,
            channel=req.channel,
            thread_ts=req.thread,
            event_id=req.event_id,
            skill=skill.name,
            route_reason=routed.reason[:500],
            input_chars=len(req.text),
        )
        allowed = self.channels_for(skill)
        if allowed and req.channel is not None and not ({req.channel, req.channel_name or ""} & set(allowed)):
            where = ", ".join(f"#{c}" for c in allowed)
            return self._refuse(base, f"{skill.slash} is available only in {where}.", None)
        notes: list[str] = []
        if req.tier:
            tier, why = req.tier, "operator override"
        else:
            tier, why = self.configured_tier(skill)
        tier_ok, moved = self.allowed_tier(skill, tier)
        if tier_ok is None:
            return self._refuse(base, f"{moved}; ask an admin to configure one.", tier)
        if moved:
            notes.append(moved)
        tier = tier_ok
        if self.budget is not None and req.purpose == "user" and req.tier is None:
            cheaper = self.ladder.cheaper(tier, self.is_sensitive(skill))
            decision = self.budget.check(skill, tier, req, cheaper=cheaper)
            if decision.refuse:
                return self._refuse(base, decision.refuse, tier)
            if decision.note:
                notes.append(decision.note)
            tier = decision.tier
        base.route_reason = f"{routed.reason}; tier {tier} ({why})"[:500]

        parts, selection, pack_hash = self._prompt(skill, tier, text, req.history, notes)
        base.pack_hash = pack_hash
        if selection is not None and selection.citations:  # which sections the answer was given
            base.notes = "context: " + " | ".join(
                f"{c.doc} › {c.section}" if c.section else c.doc for c in selection.citations
            )
        # The small built-in model invents rather than admit a gap, so on its tiers an unrelated question
        # is answered here; a follow-up ("and in Paris?") leans on the thread, not on its own words.
        if (
            skill.cite_sources
            and selection is not None
            and self.settings.tiers[tier].embedded
            and not req.history
            and not grounding.covered(selection)
        ):
            return self._not_covered(base, skill, tier, selection, notes)
        verify = VerifyContext(text=text, packs=self.packs, skill=skill.name)
        if req.on_step is not None and skill.output is not None:
            req.on_step(f"Working on the {skill.name} fields…")
        attempt = self._attempt(skill, tier, parts, base, verify, _sink(req, skill))
        attempts = [attempt]
        retry = attempt.problem or attempt.check_failed
        if skill.structured and retry and attempt.result is not None and req.allow_escalation:
            stronger = self.next_tier(skill, tier)
            if stronger is None:
                if attempt.problem:
                    attempt.row.error = f"invalid output: {attempt.problem}; no stronger tier to escalate to"
                self.ledger.record(attempt.row)
            else:
                self.ledger.record(attempt.row)
                if req.on_step is not None:
                    req.on_step(f"{tier}'s answer failed validation; asking {stronger}")
                parts2, _, _ = self._prompt(skill, stronger, text, req.history, [])
                second_base = _copy_row(base, id=new_id(), escalated_from=attempt.row.id)
                second = self._attempt(skill, stronger, parts2, second_base, verify, _sink(req, skill))
                attempts.append(second)
                if second.problem and second.result is not None:
                    second.row.error = f"invalid output after escalation from {tier}: {second.problem}"
                self.ledger.record(second.row)
                if second.problem and attempt.problem is None:
                    # Only flagged beats broken: the first answer was valid, the stronger tier's is not.
                    attempts = [second, attempt]
        else:
            self.ledger.record(attempt.row)
        reply = self._reply(skill, attempts, notes, selection.sources if selection else ())
        if reply.ok and selection is not None and len(attempts) == 1:
            reply.citations = selection.citations
        reply.embedded = bool(reply.tier) and self.settings.tiers[reply.tier or ""].embedded
        for hook in self.after_reply:
            try:
                hook(req, skill, parts, reply, attempts[-1].row)
            except Exception:  # background extras must never break the answer
                log.exception("after-reply hook failed for request %s", reply.request_id)
        return reply

    def _refuse(self, base: RequestRow, message: str, tier: str | None) -> Reply:
        base.status, base.error, base.tier = "refused", message, tier
        self.ledger.record(base)
        return Reply(text=message, status="refused", skill=base.skill, request_id=base.id, tier=tier)

    def _not_covered(
        self, base: RequestRow, skill: Skill, tier: str, selection: TieredSelection, notes: list[str]
    ) -> Reply:
        """Nothing in the packs answers this: say so with the closest documents; no model call."""
        base.tier, base.status = tier, "ok"
        base.model_requested = self.settings.tiers[tier].model
        base.response = grounding.not_covered_text(skill.packs, selection.closest)
        base.notes = f"not covered by the packs (coverage {selection.coverage:.2f})"
        self.ledger.record(base)
        return Reply(
            text=base.response,
            status="ok",
            skill=skill.name,
            request_id=base.id,
            tier=tier,
            model="-",
            route_reason=base.route_reason,
            notes=notes,
            pack_hash=base.pack_hash,
        )

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
        row = _copy_row(base, tier=tier, model_requested=self.settings.tiers[tier].model)
        # The tiny-model layout also keeps answers short: a 135M model's extra tokens are where it drifts.
        max_tokens = min(skill.max_output_tokens, COMPACT_ANSWER_TOKENS) if parts.context_in_user else None
        result, failure = self._call(
            row, tier, parts.messages(), max_tokens or skill.max_output_tokens, skill.output, sink
        )
        if result is None:
            return Attempt(row, None, problem=short_error(failure or "error"))
        if result.stopped:  # the user stopped it: partial text, nothing to validate
            return Attempt(row, result)
        structured = None
        problem = None
        verdict = None
        if skill.output is not None:
            try:
                structured = parse_output(skill, result.text)
            except ValueError as exc:
                problem = str(exc)[:500]
                row.status, row.error = "invalid", f"invalid output: {problem}"
        if structured is not None and skill.verifiers:
            verdict = run_verifiers(skill.verifiers, structured, verify or VerifyContext("", self.packs))
            row.verify_status, row.verify_detail = verdict.status, verdict.detail()
            if verdict.status == "failed":
                row.error = f"check failed: {verdict.problem()}"[:2000]
        return Attempt(row, result, structured, problem, verdict)

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
        messages, redacted = privacy.outbound(self, row.skill, tier, messages)
        row.redactions = (row.redactions or 0) + redacted
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["response_schema"] = schema
        if sink is not None:
            extra["sink"] = sink
        row.worker = REPLICA_ID
        self.ledger.start_call(row, REPLICA_ID)
        with model_queue.watching() as watch:  # the wait for the embedded model, if any
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

    def _reply(
        self, skill: Skill, attempts: list[Attempt], notes: list[str], sources: tuple[str, ...]
    ) -> Reply:
        last = attempts[-1]
        row = last.row
        cost = sum(a.row.cost_usd for a in attempts)
        known = all(a.row.cost_known for a in attempts)
        latency = sum(a.row.latency_ms for a in attempts) / 1000
        common = {
            "skill": skill.name,
            "request_id": row.id,
            "tier": row.tier,
            "model": row.model_used or row.model_requested,
            "cost_usd": cost,
            "cost_known": known,
            "latency_s": latency,
            "prompt_tokens": sum(a.row.prompt_tokens for a in attempts),
            "completion_tokens": sum(a.row.completion_tokens for a in attempts),
            "route_reason": row.route_reason,
            "notes": notes,
            "escalated": len(attempts) > 1,
            "pack_hash": row.pack_hash,
        }
        if last.result is None:
            return Reply(text=f"Sorry: {last.problem}. (request {row.id})", status="error", **common)
        if last.result.stopped:
            text = last.result.text.strip() if skill.output is None else ""
            return Reply(text=text, status="stopped", **common)
        if last.problem:
            tiers = " and ".join(a.row.tier or "?" for a in attempts)
            why = ""
            if len(attempts) == 1 and row.tier and self.next_tier(skill, row.tier) is None:
                why = ", and there is no stronger tier to try"
            message = (
                f"Sorry: I could not produce a valid {skill.name} answer (tried {tiers}{why}). "
                f"An admin can see the details under request {row.id}."
            )
            return Reply(text=message, status="invalid", **common)
        structured = last.structured.model_dump(mode="json") if last.structured is not None else None
        text = render_structured(structured) if structured is not None else last.result.text.strip()
        if skill.postprocess is not None:
            text = skill.postprocess(text, structured)
        if last.verdict is not None:
            notes.extend(last.verdict.lines())  # previews and flags travel with the notes (CLI, Slack)
        if len(attempts) > 1 and row.escalated_from is None:  # the stronger tier failed: first answer shown
            notes.append(f"tried {attempts[0].row.tier} after a failed check: {attempts[0].problem}")
        elif len(attempts) > 1:
            why = "a failed check" if attempts[0].check_failed else "an invalid answer"
            notes.append(f"escalated from {attempts[0].row.tier} to {row.tier} after {why}")
        return Reply(text=text, status="ok", structured=structured, sources=sources, **common)

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


def render_structured(data: dict[str, Any]) -> str:
    """Plain-text rendering of structured output (Slack renders fields itself)."""
    lines = []
    for key, value in data.items():
        label = key.replace("_", " ").capitalize()
        if isinstance(value, list):
            if value and all(isinstance(v, str) for v in value) and sum(len(v) for v in value) < 80:
                lines.append(f"{label}: {', '.join(value)}")
            else:
                lines.append(f"{label}:")
                lines.extend(f"  {i}. {v}" for i, v in enumerate(value, 1))
        elif isinstance(value, str) and "\n" in value:
            lines.append(f"{label}:\n{value}")
        else:
            lines.append(f"{label}: {value}")
    return "\n".join(lines)


def embedded_notice(settings: Settings) -> str | None:
    embedded = settings.embedded_tiers()
    if not embedded:
        return None
    which = "every tier" if len(embedded) == len(settings.tiers) else f"tier(s) {', '.join(embedded)}"
    return (
        f"Tierwise: {which} ({', '.join(embedded)}) run on the embedded SmolLM2-135M model (offline, free, "
        "modest quality). Configure real tiers in tierwise.toml (see tierwise.example.toml)."
    )
