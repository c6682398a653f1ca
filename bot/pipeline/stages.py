"""The request's stages as small functions over plain data: route, validate input, dedupe, channel
access, tier, budget, context (what it adds to the row; the not-covered answer), escalation, reply.

`Engine.handle` runs them in order (bot.pipeline.engine); the engine keeps the I/O (ledger writes,
model calls, token counting). A stage returns the request's next state (it fills in the `Flow`) or a
`Stop`: the early answer, with the ledger row to write for it when there is one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.context import grounding
from bot.context.packs import TieredSelection
from bot.core.ladder import Ladder
from bot.core.prompt import PromptParts, parse_output
from bot.core.routing import Route, Router
from bot.core.skills import InputError, Registry, Skill
from bot.core.types import BudgetGuard, Reply, Request
from bot.core.verify import Verdict, VerifyContext, run_verifiers
from bot.ledger.models import RequestRow, new_id
from bot.models.llm import CallResult


@dataclass
class Attempt:
    row: RequestRow
    result: CallResult | None
    structured: Any = None
    problem: str | None = None  # why the output was rejected, or the error text
    verdict: Verdict | None = None  # the skill's verifiers on a valid answer
    recorded: bool = False  # its row is on the ledger (an escalation records the first before the second)

    @property
    def check_failed(self) -> bool:
        return self.verdict is not None and self.verdict.status == "failed"


@dataclass(frozen=True)
class Stop:
    """An early answer; `row` is written to the ledger first (refusals, the not-covered answer)."""

    reply: Reply
    row: RequestRow | None = None


@dataclass
class Flow:
    """One request's state as it passes the stages after routing, validation and dedupe."""

    req: Request
    skill: Skill
    text: str  # the validated (and skill-prepared) input
    reason: str  # why the router chose the skill
    row: RequestRow  # the base ledger row, copied for each model attempt
    ladder: Ladder
    sensitive: bool  # the skill's data stays on local tiers
    tier: str = ""
    why: str = ""  # why this tier (admin assignment, configuration, …)
    notes: list[str] = field(default_factory=list)
    parts: PromptParts | None = None
    selection: TieredSelection | None = None
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def prompt(self) -> PromptParts:
        if self.parts is None:
            raise RuntimeError("the context stage has not run")
        return self.parts


def copy_row(row: RequestRow, **changes: Any) -> RequestRow:
    # Not model_copy(): that would share SQLAlchemy instance state between two rows.
    return RequestRow(**{**row.model_dump(), **changes})


def looks_binary(text: str) -> bool:
    if "\x00" in text:
        return True
    sample = text[:4000]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\n\r\t")
    return bool(sample) and control / len(sample) > 0.1


# Before the ledger: nothing is recorded for these answers ---------------------------------------


def check_tier_override(req: Request, tiers: Sequence[str]) -> Stop | None:
    """An operator's `--tier` must name a configured tier."""
    if req.tier is not None and req.tier not in tiers:
        return Stop(
            Reply(text=f"Unknown tier {req.tier!r}. Valid tiers: {', '.join(tiers)}.", status="rejected")
        )
    return None


def route(req: Request, registry: Registry, router: Router) -> Route | Reply:
    """An explicit skill (by name or command) or the router's choice from the text."""
    if req.skill:
        skill = registry.get(req.skill) or registry.by_command(req.skill)
        if skill is None:
            return Reply(
                text=f"Unknown skill {req.skill!r}. Valid skills: {', '.join(registry.names())}.",
                status="rejected",
            )
        return router.route(req.text, explicit=skill.name, explicit_via=req.explicit_via)
    return router.route(req.text)


def validate_input(skill: Skill, text: str) -> str | Stop:
    """The text the skill will see: not empty, not binary, and through its `prepare_input`."""
    text = text.strip()
    if not text:
        example = skill.examples[0] if skill.examples else "…"
        return Stop(
            Reply(
                text=f"Tell me what you need, e.g. `{skill.slash} {example}`",
                status="rejected",
                skill=skill.name,
            )
        )
    if looks_binary(text):
        return Stop(
            Reply(text="That looks like binary data; paste it as text.", status="rejected", skill=skill.name)
        )
    if skill.prepare_input is not None:
        try:
            text = skill.prepare_input(text)
        except InputError as exc:
            return Stop(Reply(text=str(exc), status="rejected", skill=skill.name))
    return text


def dedupe(req: Request, skill: Skill, claim: Callable[[str, int], bool], ttl_hours: int) -> Stop | None:
    """A redelivered event is answered once. `claimed`: the id was claimed with its durable work item."""
    if req.event_id and not req.claimed and not claim(req.event_id, ttl_hours):
        return Stop(Reply(text="", status="duplicate", skill=skill.name))
    return None


def open_flow(req: Request, skill: Skill, routed: Route, text: str, ladder: Ladder, sensitive: bool) -> Flow:
    row = RequestRow(
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
    return Flow(req, skill, text, routed.reason, row, ladder, sensitive)


# On the ledger: a refusal is a recorded request --------------------------------------------------


def refuse(flow: Flow, message: str, tier: str | None) -> Stop:
    row = flow.row
    row.status, row.error, row.tier = "refused", message, tier
    return Stop(Reply(text=message, status="refused", skill=row.skill, request_id=row.id, tier=tier), row)


def channel_access(flow: Flow, allowed: Collection[str]) -> Stop | None:
    """A skill limited to some channels (its own, configured, or its packs') refuses elsewhere."""
    req = flow.req
    if allowed and req.channel is not None and not ({req.channel, req.channel_name or ""} & set(allowed)):
        where = ", ".join(f"#{c}" for c in allowed)
        return refuse(flow, f"{flow.skill.slash} is available only in {where}.", None)
    return None


def place_tier(flow: Flow, configured: Callable[[Skill], tuple[str, str]]) -> Stop | None:
    """The operator's override or the configured tier, moved to an allowed one (sensitive data stays
    local), or a refusal when no tier may take this skill."""
    if flow.req.tier:
        tier, flow.why = flow.req.tier, "operator override"
    else:
        tier, flow.why = configured(flow.skill)
    placed = flow.ladder.place(tier, flow.sensitive, who=flow.skill.name)
    if placed.tier is None:
        return refuse(flow, f"{placed.note}; ask an admin to configure one.", tier)
    if placed.note:
        flow.notes.append(placed.note)
    flow.tier = placed.tier
    return None


def apply_budget(flow: Flow, budget: BudgetGuard | None) -> Stop | None:
    """User requests without an operator override are checked against the skill's budget: refused,
    or stepped down to the next allowed cheaper tier (with a note). Then the tier is settled."""
    req = flow.req
    if budget is not None and req.purpose == "user" and req.tier is None:
        cheaper = flow.ladder.cheaper(flow.tier, flow.sensitive)
        decision = budget.check(flow.skill, flow.tier, req, cheaper=cheaper)
        if decision.refuse:
            return refuse(flow, decision.refuse, flow.tier)
        if decision.note:
            flow.notes.append(decision.note)
        flow.tier = decision.tier
    flow.row.route_reason = f"{flow.reason}; tier {flow.tier} ({flow.why})"[:500]
    return None


# Context -------------------------------------------------------------------------------------------


def attach_context(
    flow: Flow, parts: PromptParts, selection: TieredSelection | None, pack_hash: str | None
) -> None:
    flow.parts, flow.selection = parts, selection
    flow.row.pack_hash = pack_hash
    if selection is not None and selection.citations:  # which sections the answer was given
        flow.row.notes = "context: " + " | ".join(
            f"{c.doc} › {c.section}" if c.section else c.doc for c in selection.citations
        )


def not_covered(flow: Flow, embedded: bool, model: str) -> Stop | None:
    """The small built-in model invents rather than admit a gap, so on its tiers an unrelated question
    is answered here, with the closest documents and no model call; a follow-up ("and in Paris?")
    leans on the thread, not on its own words."""
    skill, selection = flow.skill, flow.selection
    if not (skill.cite_sources and selection is not None and embedded and not flow.req.history):
        return None
    if grounding.covered(selection):
        return None
    row = flow.row
    row.tier, row.status, row.model_requested = flow.tier, "ok", model
    row.response = grounding.not_covered_text(skill.packs, selection.closest)
    row.notes = f"not covered by the packs (coverage {selection.coverage:.2f})"
    reply = Reply(
        text=row.response,
        status="ok",
        skill=skill.name,
        request_id=row.id,
        tier=flow.tier,
        model="-",
        route_reason=row.route_reason,
        notes=flow.notes,
        pack_hash=row.pack_hash,
    )
    return Stop(reply, row)


# Attempt and escalate ------------------------------------------------------------------------------


def escalation_target(flow: Flow, first: Attempt) -> str | None:
    """The stronger tier to ask when a structured answer is invalid or fails its check, or None. An
    error (no result) is not escalated, nor is a request that forbids it. With no stronger tier the
    first answer's error says so."""
    retry = first.problem or first.check_failed
    if not (flow.skill.structured and retry and first.result is not None and flow.req.allow_escalation):
        return None
    stronger = flow.ladder.stronger(flow.tier, flow.sensitive)
    if stronger is None and first.problem:
        first.row.error = f"invalid output: {first.problem}; no stronger tier to escalate to"
    return stronger


def escalated_row(flow: Flow, first: Attempt) -> RequestRow:
    return copy_row(flow.row, id=new_id(), escalated_from=first.row.id)


def settle_escalation(first: Attempt, second: Attempt) -> list[Attempt]:
    """Both attempts, the one whose answer is shown last. Only flagged beats broken: when the first
    answer was valid (its check failed) and the stronger tier's is not, the first one is shown."""
    if second.problem and second.result is not None:
        second.row.error = f"invalid output after escalation from {first.row.tier}: {second.problem}"
    if second.problem and first.problem is None:
        return [second, first]
    return [first, second]


def check_output(skill: Skill, row: RequestRow, result: CallResult, verify: VerifyContext) -> Attempt:
    """A model's answer judged: a structured answer must parse (else `invalid`, a reason to escalate),
    then the skill's verifiers run on it (a failed check is also a reason). Stopped answers are kept."""
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
        verdict = run_verifiers(skill.verifiers, structured, verify)
        row.verify_status, row.verify_detail = verdict.status, verdict.detail()
        if verdict.status == "failed":
            row.error = f"check failed: {verdict.problem()}"[:2000]
    return Attempt(row, result, structured, problem, verdict)


# The reply ------------------------------------------------------------------------------------------


def compose_reply(flow: Flow, embedded_tiers: Collection[str]) -> Reply:
    """The user's reply from the attempts (the last one is shown), with the context's citations when
    one attempt answered from it."""
    selection, attempts = flow.selection, flow.attempts
    reply = build_reply(flow, selection.sources if selection else ())
    if reply.ok and selection is not None and len(attempts) == 1:
        reply.citations = selection.citations
    reply.embedded = bool(reply.tier) and reply.tier in embedded_tiers
    return reply


def build_reply(flow: Flow, sources: tuple[str, ...]) -> Reply:
    skill, attempts, notes = flow.skill, flow.attempts, flow.notes
    last = attempts[-1]
    row = last.row
    common = Reply(
        text="",
        status="error",  # every return below sets its own status
        skill=skill.name,
        request_id=row.id,
        tier=row.tier,
        model=row.model_used or row.model_requested,
        cost_usd=sum(a.row.cost_usd for a in attempts),
        cost_known=all(a.row.cost_known for a in attempts),
        latency_s=sum(a.row.latency_ms for a in attempts) / 1000,
        prompt_tokens=sum(a.row.prompt_tokens for a in attempts),
        completion_tokens=sum(a.row.completion_tokens for a in attempts),
        route_reason=row.route_reason,
        notes=notes,
        escalated=len(attempts) > 1,
        pack_hash=row.pack_hash,
    )
    if last.result is None:
        return replace(common, text=f"Sorry: {last.problem}. (request {row.id})", status="error")
    if last.result.stopped:
        text = last.result.text.strip() if skill.output is None else ""
        return replace(common, text=text, status="stopped")
    if last.problem:
        tiers = " and ".join(a.row.tier or "?" for a in attempts)
        why = ""
        if len(attempts) == 1 and row.tier and flow.ladder.stronger(row.tier, flow.sensitive) is None:
            why = ", and there is no stronger tier to try"
        message = (
            f"Sorry: I could not produce a valid {skill.name} answer (tried {tiers}{why}). "
            f"An admin can see the details under request {row.id}."
        )
        return replace(common, text=message, status="invalid")
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
    return replace(common, text=text, status="ok", structured=structured, sources=sources)


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
