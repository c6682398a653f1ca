"""Each stage of `Engine.handle` on plain data: no model, no database, no engine."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field

from bot.context.packs import Citation, TieredSelection
from bot.core.ladder import Ladder
from bot.core.prompt import PromptParts
from bot.core.routing import Route, Router
from bot.core.skills import InputError, Registry, Skill
from bot.core.types import BudgetDecision, Reply, Request
from bot.core.verify import Check, VerifyContext
from bot.models.llm import CallResult
from bot.pipeline import stages
from bot.pipeline.stages import Attempt, Flow, Stop

LADDER = Ladder.of([("small", "local"), ("medium", "external"), ("large", "external")])
LOCAL_ONLY_TOP = Ladder.of([("small", "external"), ("medium", "local"), ("large", "external")])


class Label(BaseModel):
    label: str = Field(pattern="^(spam|work)$")


def _not_spam(out: Label, _ctx: VerifyContext) -> Check:
    if out.label == "spam":
        return Check("not-spam", "failed", "said spam")
    return Check("not-spam", "passed", "fine")


ASK = Skill(name="ask", description="answer questions", instructions="Answer.", examples=("where is X",))
LABEL = Skill(
    name="label", description="label email", instructions="Label.", output=Label, verifiers=(_not_spam,)
)


def _upper(text: str) -> str:
    if text == "refuse me":
        raise InputError("not that, please")
    return text.upper()


SHOUT = Skill(name="shout", description="shout", instructions="Shout.", prepare_input=_upper)


def flow(
    skill: Skill = ASK,
    req: Request | None = None,
    ladder: Ladder = LADDER,
    sensitive: bool = False,
    tier: str = "",
) -> Flow:
    req = req or Request(text="hello")
    made = stages.open_flow(
        req, skill, Route(skill.name, "matched hello (score 0.40)"), req.text, ladder, sensitive
    )
    made.tier = tier
    return made


def result(text: str = "ok", stopped: bool = False) -> CallResult:
    return CallResult(text, "m", 10, 5, 0, 0, 0.01, True, "table", 0.2, stopped=stopped)


def attempt(fl: Flow, tier: str, text: str) -> Attempt:
    row = stages.copy_row(fl.row, tier=tier, cost_usd=0.01, prompt_tokens=10)  # as the model call writes
    ctx = VerifyContext(text=fl.text, packs={})
    return stages.check_output(fl.skill, row, result(text), ctx)


def selection(coverage: float, score: float = 3.0) -> TieredSelection:
    cite = Citation(pack="handbook", doc="it/vpn.md", title="VPN", section="Access")
    return TieredSelection(
        text="ctx",
        tokens=3,
        sources=("it/vpn.md",),
        pieces=(),
        citations=(cite,),
        best_score=score,
        coverage=coverage,
        closest=(cite,),
    )


class Budget:
    def __init__(self, decision: BudgetDecision) -> None:
        self.decision = decision
        self.asked: list[tuple[str, str | None]] = []

    def check(self, skill: Skill, tier: str, request: Request, cheaper: str | None = None) -> BudgetDecision:
        self.asked.append((tier, cheaper))
        return self.decision


# Tier override -----------------------------------------------------------------------------------


def test_override_of_an_unknown_tier_is_rejected() -> None:
    stop = stages.check_tier_override(Request(text="x", tier="huge"), ["small", "large"])
    assert stop is not None and stop.row is None
    assert (stop.reply.status, stop.reply.text) == (
        "rejected",
        "Unknown tier 'huge'. Valid tiers: small, large.",
    )


def test_override_of_a_known_tier_passes() -> None:
    assert stages.check_tier_override(Request(text="x", tier="large"), ["small", "large"]) is None


def test_no_override_passes() -> None:
    assert stages.check_tier_override(Request(text="x"), ["small"]) is None


# Route -------------------------------------------------------------------------------------------

REGISTRY = Registry({"ask": ASK, "label": LABEL})
ROUTER = Router(REGISTRY, default="ask")


def test_route_unknown_skill_lists_the_valid_ones() -> None:
    out = stages.route(Request(text="x", skill="nope"), REGISTRY, ROUTER)
    assert isinstance(out, Reply)
    assert (out.status, out.text) == ("rejected", "Unknown skill 'nope'. Valid skills: ask, label.")


def test_route_explicit_skill_by_command() -> None:
    out = stages.route(Request(text="x", skill="/label", explicit_via="slash"), REGISTRY, ROUTER)
    assert out == Route("label", "slash: label", 0.0)


def test_route_free_text_goes_to_the_router() -> None:
    out = stages.route(Request(text="label email please"), REGISTRY, ROUTER)
    assert isinstance(out, Route) and out.skill == "label"


# Validate input ------------------------------------------------------------------------------------


def test_empty_text_is_rejected_with_an_example() -> None:
    out = stages.validate_input(ASK, "   \n")
    assert isinstance(out, Stop) and out.row is None
    assert (out.reply.status, out.reply.skill) == ("rejected", "ask")
    assert out.reply.text == "Tell me what you need, e.g. `/ask where is X`"


def test_binary_text_is_rejected() -> None:
    out = stages.validate_input(ASK, "abc\x00def")
    assert isinstance(out, Stop)
    assert out.reply.text == "That looks like binary data; paste it as text."
    controls = "".join(chr(c) for c in range(1, 8)) * 10
    assert isinstance(stages.validate_input(ASK, controls), Stop)


def test_prepare_input_error_is_the_users_message() -> None:
    out = stages.validate_input(SHOUT, "refuse me")
    assert isinstance(out, Stop)
    assert (out.reply.status, out.reply.text, out.reply.skill) == ("rejected", "not that, please", "shout")


def test_valid_text_is_stripped_and_prepared() -> None:
    assert stages.validate_input(SHOUT, "  hi there \n") == "HI THERE"
    assert stages.validate_input(ASK, "line one\n\tline two") == "line one\n\tline two"


# Dedupe --------------------------------------------------------------------------------------------


def test_duplicate_event_is_answered_once() -> None:
    seen: set[str] = set()

    def claim(event_id: str, ttl: int) -> bool:
        new = event_id not in seen
        seen.add(event_id)
        return new

    req = Request(text="x", event_id="E1")
    assert stages.dedupe(req, ASK, claim, 72) is None
    stop = stages.dedupe(req, ASK, claim, 72)
    assert stop is not None and (stop.reply.status, stop.reply.text, stop.row) == ("duplicate", "", None)


def test_dedupe_skips_requests_without_event_or_already_claimed() -> None:
    def never(event_id: str, ttl: int) -> bool:
        raise AssertionError("must not claim")

    assert stages.dedupe(Request(text="x"), ASK, never, 72) is None
    assert stages.dedupe(Request(text="x", event_id="E1", claimed=True), ASK, never, 72) is None


def test_dedupe_passes_the_ttl() -> None:
    asked: list[tuple[str, int]] = []
    stages.dedupe(Request(text="x", event_id="E9"), ASK, lambda e, t: asked.append((e, t)) or True, 5)
    assert asked == [("E9", 5)]


# Channel access ------------------------------------------------------------------------------------


def test_channel_not_allowed_is_a_recorded_refusal() -> None:
    fl = flow(req=Request(text="x", channel="C1", channel_name="random"))
    stop = stages.channel_access(fl, ["it-help", "ops"])
    assert stop is not None and stop.row is fl.row
    assert stop.reply.text == "/ask is available only in #it-help, #ops."
    assert (fl.row.status, fl.row.error, fl.row.tier) == ("refused", stop.reply.text, None)
    assert stop.reply.request_id == fl.row.id


def test_channel_allowed_by_name_or_id() -> None:
    assert (
        stages.channel_access(flow(req=Request(text="x", channel="C1", channel_name="ops")), ["ops"]) is None
    )
    assert stages.channel_access(flow(req=Request(text="x", channel="C1")), ["C1"]) is None


def test_no_channel_limit_or_no_channel_passes() -> None:
    assert stages.channel_access(flow(req=Request(text="x", channel="C1")), []) is None
    assert stages.channel_access(flow(req=Request(text="x")), ["ops"]) is None  # the CLI has no channel


# Tier ----------------------------------------------------------------------------------------------


def test_configured_tier_is_used() -> None:
    fl = flow()
    assert stages.place_tier(fl, lambda s: ("medium", "configuration")) is None
    assert (fl.tier, fl.why, fl.notes) == ("medium", "configuration", [])


def test_operator_override_wins_without_asking_the_configuration() -> None:
    fl = flow(req=Request(text="x", tier="large"))

    def configured(skill: Skill) -> tuple[str, str]:
        raise AssertionError("an override does not read the configuration")

    assert stages.place_tier(fl, configured) is None
    assert (fl.tier, fl.why) == ("large", "operator override")


def test_sensitive_skill_moves_to_a_local_tier_with_a_note() -> None:
    fl = flow(sensitive=True)
    assert stages.place_tier(fl, lambda s: ("large", "skill default")) is None
    assert fl.tier == "small"
    assert fl.notes == ["sensitive: moved from external tier large to local tier small"]


def test_sensitive_skill_without_a_local_tier_is_refused() -> None:
    ladder = Ladder.of([("medium", "external"), ("large", "external")])
    fl = flow(ladder=ladder, sensitive=True)
    stop = stages.place_tier(fl, lambda s: ("medium", "skill default"))
    assert stop is not None and stop.row is fl.row
    assert (
        stop.reply.text
        == "ask handles sensitive data and no local tier is configured; ask an admin to configure one."
    )
    assert (fl.row.status, fl.row.tier, stop.reply.tier) == ("refused", "medium", "medium")


# Budget --------------------------------------------------------------------------------------------


def test_budget_refusal_is_recorded_on_the_tier() -> None:
    fl = flow(tier="medium")
    stop = stages.apply_budget(fl, Budget(BudgetDecision("medium", refuse="ask is over budget")))
    assert stop is not None and stop.row is fl.row
    assert (stop.reply.status, stop.reply.text, fl.row.tier) == ("refused", "ask is over budget", "medium")
    assert fl.row.route_reason == "matched hello (score 0.40)"  # the tier was never settled


def test_budget_step_down_asks_with_the_next_allowed_cheaper_tier_and_notes_it() -> None:
    fl = flow(ladder=LOCAL_ONLY_TOP, sensitive=True, tier="medium")
    fl.why = "configuration"
    budget = Budget(BudgetDecision("small", note="stepped down to small"))
    assert stages.apply_budget(fl, budget) is None
    assert budget.asked == [("medium", None)]  # small is external: no allowed cheaper tier
    assert (fl.tier, fl.notes) == ("small", ["stepped down to small"])
    assert fl.row.route_reason == "matched hello (score 0.40); tier small (configuration)"


def test_budget_is_not_asked_for_overrides_or_non_user_requests() -> None:
    budget = Budget(BudgetDecision("small", refuse="no"))
    for req in (Request(text="x", tier="large"), Request(text="x", purpose="eval")):
        fl = flow(req=req, tier="large")
        fl.why = "operator override"
        assert stages.apply_budget(fl, budget) is None
        assert fl.tier == "large"
    assert budget.asked == []
    fl = flow(tier="large")
    fl.why = "skill default"
    assert stages.apply_budget(fl, None) is None
    assert fl.row.route_reason.endswith("; tier large (skill default)")


# Context -------------------------------------------------------------------------------------------

CITING = Skill(name="ask", description="d", instructions="i", packs=("handbook",), cite_sources=True)


def test_context_notes_the_cited_sections() -> None:
    fl = flow(CITING, tier="small")
    stages.attach_context(fl, PromptParts(instructions="s", user_text="u"), selection(0.9), "handbook@abc")
    assert (fl.row.pack_hash, fl.row.notes) == ("handbook@abc", "context: it/vpn.md › Access")
    assert fl.prompt.user_text == "u"


def test_not_covered_answers_on_embedded_tiers_without_a_model() -> None:
    fl = flow(CITING, tier="small")
    stages.attach_context(fl, PromptParts(instructions="s", user_text="u"), selection(0.1), "handbook@abc")
    stop = stages.not_covered(fl, embedded=True, model="embedded/smollm2")
    assert stop is not None and stop.row is fl.row
    assert (stop.reply.status, stop.reply.model, stop.reply.tier) == ("ok", "-", "small")
    assert (fl.row.status, fl.row.model_requested) == ("ok", "embedded/smollm2")
    assert fl.row.notes == "not covered by the packs (coverage 0.10)"
    assert "it/vpn.md" in stop.reply.text or "VPN" in stop.reply.text


def test_covered_or_real_tier_or_follow_up_goes_to_the_model() -> None:
    parts = PromptParts(instructions="s", user_text="u")
    covered = flow(CITING, tier="small")
    stages.attach_context(covered, parts, selection(0.9), None)
    assert stages.not_covered(covered, embedded=True, model="m") is None
    real = flow(CITING, tier="large")
    stages.attach_context(real, parts, selection(0.1), None)
    assert stages.not_covered(real, embedded=False, model="m") is None
    follow = flow(
        CITING, Request(text="and in Paris?", history=[{"role": "user", "content": "VPN?"}]), tier="small"
    )
    stages.attach_context(follow, parts, selection(0.1), None)
    assert stages.not_covered(follow, embedded=True, model="m") is None


def test_prompt_before_the_context_stage_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        _ = flow().prompt


# Attempt and escalate ------------------------------------------------------------------------------


def test_invalid_output_escalates_to_the_next_allowed_stronger_tier() -> None:
    fl = flow(LABEL, tier="small")
    first = attempt(fl, "small", '{"label": "maybe"}')
    assert first.problem and first.row.status == "invalid" and first.row.error.startswith("invalid output: ")
    assert stages.escalation_target(fl, first) == "medium"
    sensitive = flow(LABEL, ladder=LOCAL_ONLY_TOP, sensitive=True, tier="medium")
    assert stages.escalation_target(sensitive, attempt(sensitive, "medium", "{}")) is None


def test_invalid_output_at_the_top_says_there_is_no_stronger_tier() -> None:
    fl = flow(LABEL, tier="large")
    first = attempt(fl, "large", '{"label": "maybe"}')
    assert stages.escalation_target(fl, first) is None
    assert first.row.error == f"invalid output: {first.problem}; no stronger tier to escalate to"
    fl.attempts = [first]
    reply = stages.build_reply(fl, ())
    assert reply.status == "invalid"
    assert "(tried large, and there is no stronger tier to try)" in reply.text


def test_no_escalation_for_valid_answers_errors_free_text_or_when_forbidden() -> None:
    fl = flow(LABEL, tier="small")
    assert stages.escalation_target(fl, attempt(fl, "small", '{"label": "work"}')) is None
    assert stages.escalation_target(fl, Attempt(fl.row, None, problem="timeout")) is None
    forbidden = flow(LABEL, Request(text="x", allow_escalation=False), tier="small")
    assert stages.escalation_target(forbidden, attempt(forbidden, "small", "{}")) is None
    plain = flow(ASK, tier="small")
    assert stages.escalation_target(plain, Attempt(plain.row, result(), problem="odd")) is None


def test_failed_check_escalates_and_the_stronger_answer_is_shown() -> None:
    fl = flow(LABEL, tier="small")
    first = attempt(fl, "small", '{"label": "spam"}')
    assert first.check_failed and first.problem is None
    assert first.row.error == "check failed: not-spam: said spam"
    assert stages.escalation_target(fl, first) == "medium"
    second = attempt(fl, "medium", '{"label": "work"}')
    second.row.escalated_from = first.row.id
    fl.attempts = stages.settle_escalation(first, second)
    assert fl.attempts == [first, second]
    reply = stages.build_reply(fl, ())
    assert (reply.status, reply.structured, reply.escalated) == ("ok", {"label": "work"}, True)
    assert reply.notes[-1] == "escalated from small to medium after a failed check"


def test_only_flagged_beats_broken() -> None:
    """The first answer was valid but flagged; the stronger tier's is invalid: the first is shown."""
    fl = flow(LABEL, tier="small")
    first = attempt(fl, "small", '{"label": "spam"}')
    second = attempt(fl, "medium", '{"label": "??"}')
    second.row.escalated_from = first.row.id
    fl.attempts = stages.settle_escalation(first, second)
    assert fl.attempts == [second, first]
    assert second.row.error == f"invalid output after escalation from small: {second.problem}"
    reply = stages.build_reply(fl, ())
    assert (reply.status, reply.tier, reply.structured) == ("ok", "small", {"label": "spam"})
    assert reply.notes[-1] == f"tried medium after a failed check: {second.problem}"


def test_broken_twice_is_invalid_with_both_tiers() -> None:
    fl = flow(LABEL, tier="small")
    first = attempt(fl, "small", "not json")
    second = attempt(fl, "medium", "still not json")
    fl.attempts = stages.settle_escalation(first, second)
    assert fl.attempts == [first, second]
    reply = stages.build_reply(fl, ())
    assert reply.status == "invalid"
    assert reply.text.startswith("Sorry: I could not produce a valid label answer (tried small and medium).")
    assert (reply.cost_usd, reply.prompt_tokens) == (pytest.approx(0.02), 20)


def test_escalated_row_links_to_the_first_and_gets_its_own_id() -> None:
    fl = flow(LABEL, tier="small")
    first = attempt(fl, "small", "{}")
    row = stages.escalated_row(fl, first)
    assert row.escalated_from == first.row.id and row.id not in (first.row.id, fl.row.id)
    assert (row.skill, row.route_reason) == (fl.row.skill, fl.row.route_reason)


# The reply -----------------------------------------------------------------------------------------


def test_error_reply_carries_the_request_id() -> None:
    fl = flow(tier="small")
    fl.attempts = [Attempt(stages.copy_row(fl.row, tier="small"), None, problem="timeout")]
    reply = stages.compose_reply(fl, ())
    assert (reply.status, reply.text) == ("error", f"Sorry: timeout. (request {fl.attempts[0].row.id})")


def test_stopped_reply_keeps_partial_free_text_only() -> None:
    fl = flow(tier="small")
    fl.attempts = [
        stages.check_output(
            ASK, stages.copy_row(fl.row), result(" partial ", stopped=True), VerifyContext("", {})
        )
    ]
    assert (stages.build_reply(fl, ()).status, stages.build_reply(fl, ()).text) == ("stopped", "partial")
    lf = flow(LABEL, tier="small")
    lf.attempts = [
        stages.check_output(
            LABEL, stages.copy_row(lf.row), result('{"la', stopped=True), VerifyContext("", {})
        )
    ]
    assert (stages.build_reply(lf, ()).status, stages.build_reply(lf, ()).text) == ("stopped", "")


def test_ok_reply_has_citations_sources_and_embedded_flag() -> None:
    fl = flow(CITING, tier="small")
    stages.attach_context(fl, PromptParts(instructions="s", user_text="u"), selection(0.9), None)
    fl.attempts = [attempt(fl, "small", " The answer. ")]
    reply = stages.compose_reply(fl, ["small"])
    assert (reply.status, reply.text, reply.sources, reply.embedded) == (
        "ok",
        "The answer.",
        ("it/vpn.md",),
        True,
    )
    assert [c.doc for c in reply.citations] == ["it/vpn.md"]
    assert reply.notes is fl.notes
    assert stages.compose_reply(fl, ["medium"]).embedded is False


def test_render_structured_lists_and_multiline() -> None:
    data: dict[str, Any] = {
        "label": "work",
        "tags": ["a", "b"],
        "steps": ["x" * 50, "y" * 50],
        "body": "l1\nl2",
    }
    assert stages.render_structured(data) == (
        "Label: work\nTags: a, b\nSteps:\n  1. " + "x" * 50 + "\n  2. " + "y" * 50 + "\nBody:\nl1\nl2"
    )
