"""Shadow evaluation: after the real reply is sent, the same messages (same context) go to a
candidate tier in the background; the pair is compared and stored in `shadow_pairs`.

Users never see shadow answers. Shadow and judge calls are ledger rows with their own purpose,
so their spend stays apart from user spend. Sensitive skills never shadow onto external tiers.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.core.periods import week_start
from bot.core.prompt import PromptParts, parse_output
from bot.ledger import queries
from bot.ledger.models import RequestRow, ShadowPair, utcnow

if TYPE_CHECKING:
    from bot.core.skills import Skill
    from bot.core.types import ModelCaller, Reply, Request
    from bot.economics.context import EconomicsContext

log = logging.getLogger(__name__)


PLAN_TTL = timedelta(hours=1)


class Shadow:
    """The engine's after-reply hook that samples requests for shadow evaluation."""

    def __init__(
        self,
        ctx: EconomicsContext,
        caller: ModelCaller,
        rng: random.Random | None = None,
        background: bool = True,
        clock: Any = utcnow,
    ) -> None:
        self.ctx = ctx
        self.caller = caller  # candidate and judge calls (the engine's): recorded, with their own purpose
        self.rng = rng or random.Random()
        self.background = background
        self.clock = clock
        self._executor = (
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="shadow") if background else None
        )
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()  # sampling + cap check + reservation are one step
        self._plans: dict[str, tuple[datetime, str | None]] = {}  # skill → (planned at, tier to test)

    # Which tier -------------------------------------------------------------------------

    def candidate_tier(self, skill: Skill, tier: str, direction: str) -> str | None:
        """The nearest allowed tier in `direction` (the Ladder skips tiers this skill may not use)."""
        return self.ctx.ladder.neighbour(
            tier, "up" if direction == "up" else "down", self.ctx.is_sensitive(skill)
        )

    def planned_tier(self, skill: Skill, tier: str) -> str | None:
        """`shadow_direction = "auto"`: the tier the review's open decision needs evidence on (None when
        every decision is closed), re-planned at most every PLAN_TTL so sampling stays cheap."""
        now = self.clock()
        cached = self._plans.get(skill.name)
        if cached is None or now - cached[0] >= PLAN_TTL:
            from bot.economics.tier_review import next_test_for

            cached = (now, next_test_for(self.ctx, skill.name, now).tier)
            self._plans[skill.name] = cached
        planned = cached[1]
        return planned if planned is not None and planned != tier else None

    def judge_tier(self, skill: Skill) -> str | None:
        tier = self.ctx.settings.judge_tier or self.ctx.tiers[-1]
        if not self.ctx.ladder.allows(tier, self.ctx.is_sensitive(skill)):
            return None
        return tier

    # Sampling ---------------------------------------------------------------------------

    def __call__(self, req: Request, skill: Skill, parts: PromptParts, reply: Reply, row: RequestRow) -> None:
        if reply.status != "ok" or req.purpose != "user" or row.tier is None:
            return
        conf = self.ctx.settings.skill_settings(skill.name)
        if conf.shadow_rate <= 0:
            return
        with self._lock:
            if self.rng.random() >= conf.shadow_rate:
                return
            if conf.shadow_direction == "auto":
                candidate = self.planned_tier(skill, row.tier)
            else:
                candidate = self.candidate_tier(skill, row.tier, conf.shadow_direction)
            if candidate is None:
                return
            now = self.clock()
            start = week_start(now)
            calls = queries.count_requests(
                self.ctx.ledger, start, now + timedelta(seconds=1), skill=skill.name, purpose="shadow"
            )
            spend = queries.skill_spend(
                self.ctx.ledger, skill.name, start, now + timedelta(seconds=1), ("shadow", "judge")
            )
            if calls >= conf.shadow_weekly_max_calls or spend >= conf.shadow_weekly_max_usd:
                log.info("shadow cap reached for %s (%d calls, $%.4f this week)", skill.name, calls, spend)
                return
        if self._executor is None:
            self.run_pair(skill, parts, reply, row, candidate)
            return
        future = self._executor.submit(self._safe_run, skill, parts, reply, row, candidate)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(lambda f: self._pending.discard(f))

    def _safe_run(self, *args: Any) -> None:
        try:
            self.run_pair(*args)
        except Exception:
            log.exception("shadow evaluation failed")

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for background pairs (tests, shutdown)."""
        for future in list(self._pending):
            future.result(timeout=timeout)

    # Comparing --------------------------------------------------------------------------

    def run_pair(
        self, skill: Skill, parts: PromptParts, reply: Reply, row: RequestRow, candidate: str
    ) -> ShadowPair:
        result, cand_row = self.caller.call_model(
            candidate,
            parts.messages(),
            skill.max_output_tokens,
            skill=skill.name,
            purpose="shadow",
            source="shadow",
            route_reason=f"shadow of {row.id} ({row.tier} → {candidate})",
        )
        pair = ShadowPair(
            skill=skill.name,
            primary_request_id=row.id,
            primary_tier=row.tier or "",
            candidate_request_id=cand_row.id,
            candidate_tier=candidate,
            candidate_cost_usd=cand_row.cost_usd,
            verdict="error",
            method="comparator" if skill.comparator and skill.output else "judge",
        )
        if result is None:
            pair.detail = f"candidate call failed: {cand_row.error}"
        elif skill.output is not None:
            self._compare_structured(skill, parts, reply, result.text, pair)
        else:
            self._judge(skill, parts.user_text, result.text, reply.text, pair)
        with self.ctx.ledger.session() as s:
            s.add(pair)
            s.commit()
        return pair

    def _compare_structured(
        self, skill: Skill, parts: PromptParts, reply: Reply, text: str, pair: ShadowPair
    ) -> None:
        try:
            candidate = parse_output(skill, text).model_dump(mode="json")
        except ValueError as exc:
            pair.verdict, pair.detail = "loss", f"candidate output invalid: {exc}"
            return
        primary = reply.structured or {}
        fields = getattr(skill.comparator, "fields", None)
        if skill.comparator is None or not fields:
            # No field-wise comparator (e.g. one that scores golden-set expectations): the judge decides.
            self._judge(skill, parts.user_text, json.dumps(candidate), json.dumps(primary), pair)
            return
        # Free-text fields (a reason) differ between any two answers; agreement is on the compared fields.
        agreement = skill.comparator({f: primary.get(f) for f in fields if f in primary}, candidate)
        if agreement.passed:
            pair.verdict, pair.detail = "tie", "candidate agrees with the primary answer"
            return
        # They disagree: a judge decides which is right, when one may see this skill's data.
        self._judge(skill, parts.user_text, json.dumps(candidate), json.dumps(primary), pair)
        pair.method = "comparator+judge"
        pair.detail = f"disagree ({agreement.detail}); {pair.detail or ''}"[:2000]

    def _judge(self, skill: Skill, request: str, candidate: str, primary: str, pair: ShadowPair) -> None:
        from bot.evals import judge

        tier = self.judge_tier(skill)
        if tier is None:
            pair.verdict, pair.detail = "error", "no judge tier may see this sensitive skill's data"
            return
        verdict = judge.pairwise(self.caller, tier, skill.name, request, candidate, primary, rng=self.rng)
        pair.verdict = verdict.outcome
        pair.judge_cost_usd = verdict.cost_usd
        pair.judge_request_id = verdict.request_id
        pair.detail = verdict.reason
