"""Plain data the ledger queries produce and the pure review/digest functions consume.

Keeping these as frozen dataclasses (no ORM objects) is what lets the statistics be unit-tested
with hand-built inputs and the SQL be tested separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from bot.core.confseq import PairedSeq
from bot.core.ladder import Ladder

Action = Literal["downgrade", "upgrade", "keep", "fix"]


@dataclass(frozen=True)
class TierWindowStats:
    """One skill on one tier over the review window (user traffic only; escalation rows count
    toward cost and escalations, not requests)."""

    skill: str
    tier: str
    requests: int
    cost_sum: float
    cost_mean: float
    cost_p95: float
    latency_p50_ms: float
    latency_p95_ms: float
    errors: int
    escalations: int
    feedback: int
    thumbs_up: int
    unknown_cost: int = 0


@dataclass(frozen=True)
class ShadowStats:
    """Shadow pairs for a skill: answered on `primary_tier`, replayed on `candidate_tier`.
    Outcomes are from the candidate's side: a loss means the candidate was worse."""

    skill: str
    primary_tier: str
    candidate_tier: str
    wins: int
    ties: int
    losses: int
    errors: int = 0
    candidate_cost_mean: float | None = None

    @property
    def decided(self) -> int:
        return self.wins + self.ties + self.losses


@dataclass(frozen=True)
class EvalStats:
    """The latest golden-set run of a skill on a tier."""

    skill: str
    tier: str
    cases: int
    pass_rate: float  # 0..1
    critical_failures: int
    mean_cost_usd: float
    created_at: datetime


@dataclass(frozen=True)
class PairEvidence:
    """Paired outcomes of one skill on two tiers, oriented as stronger minus cheaper: a shadow pair is
    one live request answered by both (whichever was primary); `seq` holds the differences in time
    order (+1 the stronger answer won, 0 a tie, -1 the cheaper answer won; scores in between allowed)."""

    cheaper: str
    stronger: str
    seq: PairedSeq
    stronger_wins: int = 0
    ties: int = 0
    cheaper_wins: int = 0
    errors: int = 0


@dataclass(frozen=True)
class EvalPairs:
    """One golden set run on two tiers, compared case by case (the latest run of each tier)."""

    cheaper: str
    stronger: str
    seq: PairedSeq  # per case: passed on stronger - passed on cheaper
    cases: int
    cheaper_critical_failures: int = 0


@dataclass(frozen=True)
class VerifyStats:
    """Verifier outcomes of a tier's answers (verify_status passed/failed; not_run and NULL excluded)."""

    tier: str
    passed: int
    failed: int

    @property
    def ran(self) -> int:
        return self.passed + self.failed


@dataclass(frozen=True)
class SkillReviewInput:
    """Everything the review needs to know about one skill."""

    skill: str
    current_tier: str
    tiers: tuple[str, ...]  # the ladder, cheapest → strongest
    window_days: int
    stats: dict[str, TierWindowStats]  # by tier (the current tier's is the main evidence)
    shadows: tuple[ShadowStats, ...] = ()
    evals: dict[str, EvalStats] = field(default_factory=dict)  # latest run per tier
    critical: bool = False
    margin: float | None = None  # the skill's own non-inferiority margin, else the review default
    auto_apply: bool = False
    last_change_at: datetime | None = None
    # Paired evidence and pricing (the whole ladder) -------------------------------------------
    ladder: Ladder | None = None  # None: `tiers`, all external
    sensitive: bool = False
    pairs: tuple[PairEvidence, ...] = ()
    eval_pairs: tuple[EvalPairs, ...] = ()
    verify: dict[str, VerifyStats] = field(default_factory=dict)
    cost_per_request: dict[str, float] = field(default_factory=dict)  # USD per request, by tier
    value_per_good_answer_usd: float | None = None
    shadow_per_week: float = 0.0  # pairs a week the sampler can buy for this skill (rate × traffic, capped)


@dataclass(frozen=True)
class TierRecommendation:
    skill: str
    action: Action
    current_tier: str
    target_tier: str | None
    reason: str  # evidence in words and numbers
    evidence: dict[str, Any]
    monthly_delta_usd: float | None = None  # negative = saving, positive = extra cost
    auto_apply: bool = False
