"""A judge tier for open-ended answers: a rubric score, and pairwise comparisons with the order
randomized (so a judge's position bias cannot favour either side). Verdicts are JSON.

The judge needs only a `ModelCaller` (the engine's recorded `call_model`), not the engine."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.core.prompt import extract_json

if TYPE_CHECKING:
    from bot.core.types import ModelCaller

RUBRIC_SYSTEM = (
    "You grade an assistant's answer against a rubric. Score 1-5: 5 = meets every criterion, 4 = meets the "
    "important ones with minor gaps, 3 = partly, 2 = mostly wrong, 1 = wrong or empty. Reply with one JSON "
    'object only: {"score": <1-5>, "reason": "<one sentence>"}'
)
PAIR_SYSTEM = (
    "You compare two answers to the same request. Judge correctness first, then completeness and clarity, "
    "using the rubric if given. Reply with one JSON object only: "
    '{"winner": "1" | "2" | "tie", "reason": "<one sentence>"}'
)


@dataclass(frozen=True)
class Verdict:
    """`outcome` is from the point of view of answer A: win | tie | loss | error."""

    outcome: str
    score: float | None
    reason: str
    cost_usd: float
    request_id: str | None


def _ask(
    caller: ModelCaller, tier: str, system: str, user: str, skill: str, purpose: str
) -> tuple[Any, float, str]:
    result, row = caller.call_model(
        tier,
        [{"role": "system", "content": system}, {"role": "user", "content": user}],
        max_tokens=200,
        skill=skill,
        purpose=purpose,
        source="judge",
    )
    if result is None:
        return None, row.cost_usd, row.id
    try:
        return extract_json(result.text), row.cost_usd, row.id
    except ValueError:
        return None, row.cost_usd, row.id


def rubric_score(
    caller: ModelCaller, tier: str, skill: str, request: str, rubric: str, answer: str, purpose: str = "judge"
) -> Verdict:
    user = f"<request>\n{request}\n</request>\n<rubric>\n{rubric}\n</rubric>\n<answer>\n{answer}\n</answer>"
    data, cost, rid = _ask(caller, tier, RUBRIC_SYSTEM, user, skill, purpose)
    try:
        score = float(data["score"])
    except (TypeError, KeyError, ValueError):
        return Verdict("error", None, "the judge's reply was not a JSON score", cost, rid)
    # Whole points, halves rounded down: an undecided "3.5" is a 3, which the reference comparison settles.
    score = float(min(5, max(1, math.ceil(score - 0.5))))
    return Verdict("win" if score >= 4 else "loss", score, str(data.get("reason", ""))[:500], cost, rid)


def pairwise(
    caller: ModelCaller,
    tier: str,
    skill: str,
    request: str,
    answer_a: str,
    answer_b: str,
    rubric: str = "",
    rng: random.Random | None = None,
    purpose: str = "judge",
) -> Verdict:
    """Compare A with B; the judge sees them in random order and the verdict is mapped back to A."""
    rng = rng or random.Random()
    swapped = rng.random() < 0.5
    first, second = (answer_b, answer_a) if swapped else (answer_a, answer_b)
    user = (
        f"<request>\n{request}\n</request>\n"
        + (f"<rubric>\n{rubric}\n</rubric>\n" if rubric else "")
        + f"<answer_1>\n{first}\n</answer_1>\n<answer_2>\n{second}\n</answer_2>"
    )
    data, cost, rid = _ask(caller, tier, PAIR_SYSTEM, user, skill, purpose)
    winner = str((data or {}).get("winner", "")).strip().lower() if isinstance(data, dict) else ""
    if winner not in ("1", "2", "tie"):
        return Verdict("error", None, "the judge's reply was not a JSON verdict", cost, rid)
    if winner == "tie":
        outcome = "tie"
    else:
        a_is_first = not swapped
        outcome = "win" if (winner == "1") == a_is_first else "loss"
    return Verdict(outcome, None, str(data.get("reason", ""))[:500], cost, rid)
