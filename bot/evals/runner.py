"""`tierwise eval`: run a skill's golden set on tiers, score it, store runs and per-case results.

Structured skills are scored by their comparator (deterministic); open skills by a judge tier:
a rubric score, plus a pairwise comparison with the reference answer (order randomized).
A case passes when the rubric score is ≥ 4, or it is 3 and the answer ties or beats the reference.
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.evals.facts import key_fact_recall, right_source
from bot.ledger.models import EvalResult, EvalRun

if TYPE_CHECKING:
    from bot.context.packs import Pack
    from bot.core.skills import Skill
    from bot.core.types import ModelCaller, Reply
    from bot.ledger.store import Ledger
    from bot.pipeline.engine import Engine


@dataclass(frozen=True)
class EvalCase:
    id: str
    input: str
    line: int
    critical: bool = False
    expected: dict[str, Any] | None = None
    rubric: str = ""
    reference: str = ""
    key_facts: tuple[str, ...] = ()  # phrases a good answer states ("a|b": either wording)
    sources: tuple[str, ...] | None = None  # the pack documents it should stand on (None: not listed)


@dataclass
class CaseOutcome:
    case: EvalCase
    passed: bool
    score: float
    detail: str
    cost_usd: float
    judge_cost_usd: float
    latency_ms: int
    request_id: str | None
    output: str
    error: bool = False
    recall: float | None = None  # share of the case's key facts the answer states
    source_ok: bool | None = None  # it stood on an expected document (or on none, when none is expected)


@dataclass
class RunSummary:
    run_id: str
    skill: str
    tier: str
    model: str
    cases: int
    passed: int
    critical_failures: int
    errors: int
    mean_cost_usd: float
    judge_cost_usd: float
    p50_latency_ms: int
    outcomes: list[CaseOutcome] = field(default_factory=list, repr=False)
    key_fact_recall: float | None = None  # mean over the cases that list key facts
    right_source_rate: float | None = None  # over the cases that list sources

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "skill": self.skill,
            "tier": self.tier,
            "model": self.model,
            "cases": self.cases,
            "passed": self.passed,
            "pass_rate": round(self.pass_rate, 4),
            "critical_failures": self.critical_failures,
            "errors": self.errors,
            "mean_cost_usd": self.mean_cost_usd,
            "judge_cost_usd": self.judge_cost_usd,
            "p50_latency_ms": self.p50_latency_ms,
            "failed_cases": [o.case.id for o in self.outcomes if not o.passed],
            # Deterministic grounding scores, for sets whose cases list key facts / sources.
            **({"key_fact_recall": _round(self.key_fact_recall)} if self.key_fact_recall is not None else {}),
            **(
                {"right_source_rate": _round(self.right_source_rate)}
                if self.right_source_rate is not None
                else {}
            ),
        }


def evals_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here.parent / "evals", here / "_data" / "evals"):
        if candidate.is_dir():
            return candidate
    return here.parent / "evals"


def golden_set_path(skill: Skill) -> Path:
    """A plugin's own `evals/<skill>.jsonl` beside its package, else the built-in golden sets."""
    if skill.home is not None:
        own = skill.home / "evals" / f"{skill.name}.jsonl"
        if own.is_file():
            return own
    return evals_dir() / f"{skill.name}.jsonl"


def load_cases(path: Path) -> tuple[list[EvalCase], list[str]]:
    """Parse a JSONL golden set; a broken line is reported with its number and skipped."""
    cases: list[EvalCase] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("a line must be a JSON object")
            text = data.get("input")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("'input' must be a non-empty string")
            expected = data.get("expected")
            if expected is not None and not isinstance(expected, dict):
                raise ValueError("'expected' must be an object")
            if expected is None and not data.get("rubric"):
                raise ValueError("a case needs 'expected' fields or a 'rubric'")
            if not isinstance(data.get("critical", False), bool):
                raise ValueError("'critical' must be true or false")
            facts = data.get("key_facts", [])
            if not isinstance(facts, list) or not all(isinstance(f, str) and f.strip() for f in facts):
                raise ValueError("'key_facts' must be a list of non-empty strings")
            sources = data.get("sources")
            if sources is not None and (
                not isinstance(sources, list) or not all(isinstance(s, str) for s in sources)
            ):
                raise ValueError("'sources' must be a list of document paths")
            case_id = str(data.get("id") or f"line-{number}")
            if case_id in seen:
                raise ValueError(f"duplicate id {case_id!r}")
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            problems.append(f"{path.name} line {number}: {exc}")
            continue
        seen.add(case_id)
        cases.append(
            EvalCase(
                id=case_id,
                input=text,
                line=number,
                critical=bool(data.get("critical", False)),
                expected=expected,
                rubric=str(data.get("rubric", "")),
                reference=str(data.get("reference", "")),
                key_facts=tuple(facts),
                sources=tuple(sources) if sources is not None else None,
            )
        )
    return cases, problems


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def grounding_scores(
    packs: Mapping[str, Pack], skill: Skill, case: EvalCase, reply: Reply
) -> tuple[float | None, bool | None]:
    """(key-fact recall, right source) for one answer: deterministic, no judge."""
    ok = reply.status == "ok"
    recall = key_fact_recall(reply.text if ok else "", case.key_facts)
    if case.sources is None:
        return recall, None
    # What the answer stood on: the sections retrieved for it, not the always-included background.
    always = {d for p in skill.packs for d in packs[p].always_include}
    cited = [c.doc for c in reply.citations if c.doc not in always] if ok else []
    return recall, right_source(cited, case.sources) if ok else False


def _score_case(
    caller: ModelCaller, skill: Skill, case: EvalCase, reply: Reply, judge_tier: str, rng: random.Random
) -> tuple[bool, float, str, float]:
    """(passed, score, detail, judge cost)."""
    if reply.status != "ok":
        return False, 0.0, f"{reply.status}: {reply.text[:300]}", 0.0
    if case.expected is not None and skill.comparator is not None:
        verdict = skill.comparator(case.expected, reply.structured or {})
        return verdict.passed, verdict.score, verdict.detail, 0.0
    from bot.evals import judge

    graded = judge.rubric_score(caller, judge_tier, skill.name, case.input, case.rubric, reply.text, "eval")
    cost = graded.cost_usd
    if graded.score is None:
        return False, 0.0, graded.reason, cost
    detail = f"rubric {graded.score:.0f}/5: {graded.reason}"
    passed = graded.score >= 4
    if case.reference and graded.score == 3:
        pair = judge.pairwise(
            caller, judge_tier, skill.name, case.input, reply.text, case.reference, case.rubric, rng, "eval"
        )
        cost += pair.cost_usd
        passed = pair.outcome in ("win", "tie")
        detail += f"; vs reference: {pair.outcome}"
    return passed, graded.score / 5, detail, cost


def run_eval(
    engine: Engine,
    skill_name: str,
    tiers: Sequence[str],
    cases: Sequence[EvalCase],
    judge_tier: str | None = None,
    on_case: Callable[[str, EvalCase], None] | None = None,
    seed: int = 0,
) -> list[RunSummary]:
    from bot.core.types import Request

    skill = engine.registry.skills[skill_name]
    judge = judge_tier or engine.settings.judge_tier or engine.tiers[-1]
    rng = random.Random(seed)
    summaries = []
    for tier in tiers:
        allowed, why = engine.allowed_tier(skill, tier)
        if allowed != tier:
            # The engine would quietly run the cases elsewhere; a run stored under this tier would lie.
            raise ValueError(f"{skill_name} cannot run on tier {tier}: {why}")
        outcomes: list[CaseOutcome] = []
        for case in cases:
            reply = engine.handle(
                Request(
                    text=case.input,
                    source="eval",
                    user="eval",
                    skill=skill_name,
                    tier=tier,
                    purpose="eval",
                    allow_escalation=False,
                    explicit_via="eval",
                )
            )
            passed, score, detail, judge_cost = _score_case(engine, skill, case, reply, judge, rng)
            recall, source_ok = grounding_scores(engine.packs, skill, case, reply)
            if recall is not None:
                detail += f"; key facts {recall:.0%}"
            if source_ok is not None:
                detail += f"; source {'right' if source_ok else 'wrong'}"
            outcomes.append(
                CaseOutcome(
                    case=case,
                    passed=passed,
                    score=score,
                    detail=detail,
                    cost_usd=reply.cost_usd,
                    judge_cost_usd=judge_cost,
                    latency_ms=round(reply.latency_s * 1000),
                    request_id=reply.request_id,
                    output=json.dumps(reply.structured) if reply.structured else reply.text,
                    error=reply.status in ("error", "rejected", "refused"),
                    recall=recall,
                    source_ok=source_ok,
                )
            )
            if on_case:
                on_case(tier, case)
        pack_hash = ",".join(f"{p}@{engine.packs[p].hash}" for p in skill.packs) or None
        model = engine.settings.tiers[tier].model
        summaries.append(_store(engine.ledger, skill, tier, model, pack_hash, judge, outcomes))
    return summaries


def _store(
    ledger: Ledger,
    skill: Skill,
    tier: str,
    model: str,
    pack_hash: str | None,
    judge: str,
    outcomes: list[CaseOutcome],
) -> RunSummary:
    n = len(outcomes)
    latencies = [o.latency_ms for o in outcomes]
    run = EvalRun(
        skill=skill.name,
        tier=tier,
        model=model,
        judge_tier=None if skill.comparator and all(o.case.expected for o in outcomes) else judge,
        pack_hash=pack_hash,
        cases=n,
        passed=sum(o.passed for o in outcomes),
        critical_failures=sum(1 for o in outcomes if o.case.critical and not o.passed),
        errors=sum(o.error for o in outcomes),
        total_cost_usd=sum(o.cost_usd for o in outcomes),
        judge_cost_usd=sum(o.judge_cost_usd for o in outcomes),
        p50_latency_ms=round(statistics.median(latencies)) if latencies else 0,
    )
    with ledger.session() as s:
        s.add(run)
        s.flush()
        for o in outcomes:
            s.add(
                EvalResult(
                    run_id=run.id,
                    case_id=o.case.id,
                    critical=o.case.critical,
                    passed=o.passed,
                    score=o.score,
                    cost_usd=o.cost_usd,
                    latency_ms=o.latency_ms,
                    request_id=o.request_id,
                    output=o.output[:20000],
                    detail=o.detail[:2000],
                )
            )
        s.commit()
    return RunSummary(
        run_id=run.id,
        skill=skill.name,
        tier=tier,
        model=run.model,
        cases=n,
        passed=run.passed,
        critical_failures=run.critical_failures,
        errors=run.errors,
        mean_cost_usd=run.total_cost_usd / n if n else 0.0,
        judge_cost_usd=run.judge_cost_usd,
        p50_latency_ms=run.p50_latency_ms,
        outcomes=outcomes,
        key_fact_recall=_mean([o.recall for o in outcomes]),
        right_source_rate=_mean([None if o.source_ok is None else float(o.source_ok) for o in outcomes]),
    )
