"""Build ledgers with known rows, so digest, review and budget figures can be asserted exactly.

Every insert goes through `Ledger.session()` (the real tables and migrations); times are
timezone-aware UTC. Costs in the scenarios are dyadic fractions (1/16, 1/64, …) so sums are exact
in binary floating point and tests can compare with `==`.

    b = LedgerBuilder(engine.ledger)
    row = b.request(at(2026, 11, 10), skill="ask", tier="small", cost=0.015625, user="U1")
    b.feedback(row, user="U1", score=-1, comment="wrong office")
    b.shadow_pairs(at(2026, 11, 1), "label-email", "medium", "small", ties=58, losses=2, candidate_cost=1 / 64)
    b.eval_run(at(2026, 11, 1), "label-email", "medium", cases=100, passed=93, total_cost=6.25)
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import build_engine
from bot.ledger.models import EvalResult, EvalRun, Feedback, RequestRow, ShadowPair, TierAssignment
from bot.ledger.store import Ledger

_ids = itertools.count(1)
_MODEL_OF_TIER: Any = object()  # sentinel: "use the tier's model"


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    """An aware UTC datetime (the ledger's convention)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def model_for(tier: str | None) -> str | None:
    """The model string the scenarios' tiers use (see `priced_tiers`)."""
    return None if tier is None else f"openai/{tier}-model"


def priced_tiers(
    prices: dict[str, tuple[float, float]] | None = None, api_base: str = "http://127.0.0.1:9/v1"
) -> dict[str, dict[str, Any]]:
    """small/medium/large with explicit per-token prices (input, output), external by default."""
    prices = prices or {"small": (0.001, 0.002), "medium": (0.002, 0.004), "large": (0.004, 0.008)}
    return {
        name: {
            "model": model_for(name),
            "api_base": api_base,
            "input_cost_per_token": inp,
            "output_cost_per_token": out,
            "max_retries": 0,
        }
        for name, (inp, out) in prices.items()
    }


class LedgerBuilder:
    """Insert rows with chosen times, tiers, costs, latencies, statuses and thumbs."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def _add(self, rows: Iterable[Any]) -> list[Any]:
        rows = list(rows)
        with self.ledger.session() as s:
            s.add_all(rows)
            s.commit()
        return rows

    # Requests ---------------------------------------------------------------------------------

    def make_request(
        self,
        when: datetime,
        *,
        skill: str,
        tier: str | None = "small",
        cost: float = 0.0,
        user: str | None = "U1",
        purpose: str = "user",
        status: str = "ok",
        latency_ms: int = 0,
        cost_known: bool = True,
        escalated_from: str | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        model_requested: str | None = _MODEL_OF_TIER,
        model_used: str | None = _MODEL_OF_TIER,
        **extra: Any,
    ) -> RequestRow:
        """A `RequestRow` (not yet stored). Models default to the tier's model in `priced_tiers`."""
        requested = model_for(tier) if model_requested is _MODEL_OF_TIER else model_requested
        used = requested if model_used is _MODEL_OF_TIER else model_used
        return RequestRow(
            id=extra.pop("id", None) or f"r{next(_ids):06d}",
            created_at=when,
            source=extra.pop("source", "test"),
            purpose=purpose,
            user_id=user,
            skill=skill,
            tier=tier,
            model_requested=requested,
            model_used=used,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            cache_write_tokens=cache_write_tokens,
            cost_usd=cost,
            cost_known=cost_known,
            price_source=extra.pop("price_source", "tier-config" if cost_known else "unknown"),
            latency_ms=latency_ms,
            status=status,
            escalated_from=escalated_from,
            shadow=purpose in ("shadow", "judge"),
            **extra,
        )

    def request(self, when: datetime, **fields: Any) -> RequestRow:
        return self._add([self.make_request(when, **fields)])[0]

    def requests(self, n: int, start: datetime, *, step: timedelta = timedelta(minutes=7), **fields: Any):
        """`n` identical requests, `step` apart from `start`; `users` (a list) is cycled if given."""
        users = fields.pop("users", None)
        latencies = fields.pop("latencies", None)
        rows = []
        for i in range(n):
            extra = dict(fields)
            if users:
                extra["user"] = users[i % len(users)]
            if latencies:
                extra["latency_ms"] = latencies[i]
            rows.append(self.make_request(start + i * step, **extra))
        return self._add(rows)

    def escalation(
        self,
        when: datetime,
        *,
        skill: str,
        from_tier: str,
        to_tier: str,
        first_cost: float,
        second_cost: float,
        user: str,
    ) -> tuple[RequestRow, RequestRow]:
        """An invalid answer on `from_tier` and its escalation row on `to_tier` (one user request)."""
        first = self.make_request(
            when, skill=skill, tier=from_tier, cost=first_cost, user=user, status="invalid"
        )
        second = self.make_request(
            when + timedelta(seconds=2),
            skill=skill,
            tier=to_tier,
            cost=second_cost,
            user=user,
            escalated_from=first.id,
        )
        self._add([first])
        self._add([second])
        return first, second

    # Feedback ---------------------------------------------------------------------------------

    def feedback(
        self,
        request: RequestRow,
        *,
        user: str,
        score: int,
        comment: str | None = None,
        when: datetime | None = None,
    ) -> Feedback:
        when = when or request.created_at + timedelta(minutes=5)
        row = Feedback(
            request_id=request.id,
            user_id=user,
            score=score,
            comment=comment,
            source="test",
            created_at=when,
            updated_at=when,
        )
        return self._add([row])[0]

    # Shadow pairs, evals, tier assignments -----------------------------------------------------

    def shadow_pairs(
        self,
        start: datetime,
        skill: str,
        primary_tier: str,
        candidate_tier: str,
        *,
        wins: int = 0,
        ties: int = 0,
        losses: int = 0,
        errors: int = 0,
        candidate_cost: float = 0.0,
        judge_cost: float = 0.0,
        method: str = "comparator",
        step: timedelta = timedelta(hours=1),
    ) -> list[ShadowPair]:
        """Pairs in the order wins, ties, losses, errors; error pairs cost nothing (the call failed)."""
        verdicts = ["win"] * wins + ["tie"] * ties + ["loss"] * losses + ["error"] * errors
        rows = [
            ShadowPair(
                created_at=start + i * step,
                skill=skill,
                primary_request_id=f"p{next(_ids):06d}",
                primary_tier=primary_tier,
                candidate_request_id=f"c{next(_ids):06d}",
                candidate_tier=candidate_tier,
                verdict=verdict,
                method=method,
                candidate_cost_usd=0.0 if verdict == "error" else candidate_cost,
                judge_cost_usd=judge_cost,
            )
            for i, verdict in enumerate(verdicts)
        ]
        return self._add(rows)

    def eval_run(
        self,
        when: datetime,
        skill: str,
        tier: str,
        *,
        cases: int,
        passed: int,
        total_cost: float,
        critical_failures: int = 0,
    ) -> EvalRun:
        """A golden-set run with its per-case results: cases c001… pass in order, so runs of the same
        skill on two tiers pair case by case (the first `passed` cases pass on each tier)."""
        row = EvalRun(
            created_at=when,
            skill=skill,
            tier=tier,
            model=model_for(tier) or "",
            cases=cases,
            passed=passed,
            critical_failures=critical_failures,
            total_cost_usd=total_cost,
        )
        run = self._add([row])[0]
        self._add(
            [
                EvalResult(
                    run_id=run.id, case_id=f"c{i + 1:03d}", passed=i < passed, cost_usd=total_cost / cases
                )
                for i in range(cases)
            ]
        )
        return run

    def tier_assignment(
        self,
        when: datetime,
        skill: str,
        tier: str,
        *,
        previous: str | None = None,
        by: str = "U_ADMIN",
        reason: str = "set by a test",
    ) -> TierAssignment:
        row = TierAssignment(
            created_at=when,
            skill=skill,
            tier=tier,
            previous_tier=previous,
            assigned_by=by,
            reason=reason,
            source="test",
        )
        return self._add([row])[0]


# The week-46 scenario ------------------------------------------------------------------------------
#
# ISO week 2026-W46 is Monday 2026-11-09 to Monday 2026-11-16 (UTC); W45 is 2026-11-02 to 11-09.
# The review window for the W46 digest is the 28 days before 2026-11-16: from 2026-10-19.
#
# label-email (configured on medium): 224 requests in the window at $0.0625 (212 before W45, 4 in
#   W45, 8 in W46), 240 decided shadow pairs medium→small (238 ties, 2 losses, + 3 errors) at
#   $0.015625 (older losses in August are beyond the 91-day evidence horizon), evals medium 93/100
#   ($6.25) and small 91/100 ($1.5625), case by case → downgrade, saves $11.25/month.
# ask (default small): 56 requests at $0.015625 (48 before, 2 in W45, 6 in W46), 12 ratings of which
#   3 👍, and 27 shadow-up pairs small→medium (20 wins, 5 ties, 2 losses) at $0.03125 → upgrade.
# summarize (configured on medium): 3 requests in W46 (one with an unknown price), 10 shadow ties → keep.
# triage-alert (default small): one request in W46 that escalated small → medium.
# Side spend in W46: shadow $0.25, judge $0.125, eval $0.5 (and $1.00 of shadow in W45).

W46 = "2026-W46"
W46_END = at(2026, 11, 16, 0)
# The week-46 scenario's digest totals (asserted by the renderer and the CLI tests alike).
W46_TOTALS = {
    "requests": 18,
    "users": 6,
    "cost_usd": 0.6796875,
    "prev_requests": 6,
    "prev_cost_usd": 0.28125,
    "thumbs_up": 1,
    "thumbs_down": 3,
    "unknown_cost": 1,
}
# The scenario's review reasons under the paired rule (issue 9; they replace v1's loss-rate and win-rate
# reasons), asserted by the review, digest and CLI tests alike.
ASK_REASON = (
    "👍 25% [8.9–53.2%] n=12, credibly below the 80% target; upgrade to medium: +66.7 pts [24.8, 91.1] "
    "over 27 pairs (medium better 20, tie 5, small better 2), credibly above the superiority margin 5 pts "
    "for +$0.94/month"
)
LABEL_REASON = (
    "downgrade to small: -0.8 pts [-3.7, 1.7] over 240 pairs (small better 0, tie 238, medium better 2, "
    "3 errors), advantage of medium credibly below the non-inferiority margin 5 pts, saves $11.25/month"
)
SUMMARIZE_REASON = (
    "no 👍/👎 ratings; small: +0 pts [-40.4, 40.4] over 10 pairs (small better 0, tie 10, medium better 0); "
    "10 of 20 pairs needed before any decision; blocked: no paired golden-set run on medium and small; "
    "saving $0.04/month < $5.00 floor; large: no shadow pairs yet; next: shadow-test small (the skill may "
    "be over-served): about 98 more pairs (shadow sampling is off for this skill: set its shadow_rate)"
)


SCENARIO_SKILLS = {"label-email": {"tier": "medium"}, "summarize": {"tier": "medium"}}


def scenario_settings(**overrides: Any) -> dict[str, Any]:
    """`make_engine(**scenario_settings())`: priced tiers and the scenario's configured tiers."""
    return {"tiers": priced_tiers(), "skills": dict(SCENARIO_SKILLS), **overrides}


def seed_week46(ledger: Ledger, shift: timedelta = timedelta(0)) -> dict[str, Any]:
    """Insert the scenario; `shift` moves every time (e.g. so that the window ends now)."""

    def t(*args: int) -> datetime:
        return at(*args) + shift

    b = LedgerBuilder(ledger)
    out: dict[str, Any] = {}

    # label-email on medium
    b.requests(
        212,
        t(2026, 10, 20, 0),
        step=timedelta(hours=1),
        skill="label-email",
        tier="medium",
        cost=0.0625,
        users=["U1", "U2", "U3", "U4"],
    )
    b.requests(4, t(2026, 11, 3), skill="label-email", tier="medium", cost=0.0625, user="U1")
    out["label_w46"] = b.requests(
        8,
        t(2026, 11, 10),
        skill="label-email",
        tier="medium",
        cost=0.0625,
        users=["U1", "U1", "U2", "U1", "U2", "U1", "U2", "U1"],
    )
    b.shadow_pairs(
        t(2026, 10, 25),
        "label-email",
        "medium",
        "small",
        ties=238,
        losses=2,
        errors=3,
        candidate_cost=0.015625,
    )
    b.shadow_pairs(t(2026, 8, 1), "label-email", "medium", "small", losses=10, candidate_cost=0.015625)
    b.eval_run(t(2026, 9, 1), "label-email", "small", cases=100, passed=50, total_cost=1.0)
    b.eval_run(t(2026, 11, 1), "label-email", "medium", cases=100, passed=93, total_cost=6.25)
    b.eval_run(t(2026, 11, 1), "label-email", "small", cases=100, passed=91, total_cost=1.5625)

    # ask on small
    early = b.requests(
        48,
        t(2026, 10, 20, 1),
        step=timedelta(hours=1),
        skill="ask",
        tier="small",
        cost=0.015625,
        users=["U1", "U3", "U4"],
    )
    w45 = b.requests(2, t(2026, 11, 4), skill="ask", tier="small", cost=0.015625, user="U3")
    w46 = b.requests(6, t(2026, 11, 11), skill="ask", tier="small", cost=0.015625, users=["U1", "U3", "U4"])
    out["ask_w46"] = w46
    b.feedback(w46[0], user="U1", score=1)
    b.feedback(w46[1], user="U3", score=-1, comment="wrong VPN steps")
    b.feedback(w46[2], user="U4", score=-1, comment="outdated travel policy")
    b.feedback(w46[4], user="U3", score=-1)
    b.feedback(w45[0], user="U3", score=-1, comment="slow answer last week")
    for row in early[:2]:
        b.feedback(row, user=row.user_id or "U1", score=1)
    for row in early[2:7]:
        b.feedback(row, user=row.user_id or "U1", score=-1)
    b.shadow_pairs(
        t(2026, 10, 26),
        "ask",
        "small",
        "medium",
        wins=20,
        ties=5,
        losses=2,
        candidate_cost=0.03125,
        method="judge",
    )

    # triage-alert: one request escalated small → medium
    out["triage"] = b.escalation(
        t(2026, 11, 12),
        skill="triage-alert",
        from_tier="small",
        to_tier="medium",
        first_cost=0.0078125,
        second_cost=0.015625,
        user="U5",
    )

    # summarize on medium, one row without a known price
    b.request(t(2026, 11, 13, 9), skill="summarize", tier="medium", cost=0.03125, user="U2")
    b.request(t(2026, 11, 13, 10), skill="summarize", tier="medium", cost=0.03125, user="U5")
    b.request(
        t(2026, 11, 13, 11),
        skill="summarize",
        tier="medium",
        cost=0.0,
        user="U6",
        cost_known=False,
        model_used="openai/mystery-model",
    )
    b.shadow_pairs(t(2026, 10, 27), "summarize", "medium", "small", ties=10, candidate_cost=0.0078125)

    # side spend (no user)
    b.request(t(2026, 11, 10, 13), skill="label-email", tier="small", cost=0.25, user=None, purpose="shadow")
    b.request(t(2026, 11, 11, 13), skill="ask", tier="large", cost=0.125, user=None, purpose="judge")
    b.request(t(2026, 11, 12, 13), skill="label-email", tier="small", cost=0.5, user=None, purpose="eval")
    b.request(t(2026, 11, 5, 13), skill="label-email", tier="small", cost=1.0, user=None, purpose="shadow")
    return out


_template: list[Path] = []


def seeded_database(data_dir: Path) -> Path:
    """Put a copy of the seeded week-46 database at `data_dir/tierwise.db` (seeded once per run);
    on a Postgres run, the test's database becomes a copy of a seeded one."""
    from tests import pg

    if pg.on_postgres:
        pg.replace_with_seeded(os.environ["TIERWISE_DATABASE_URL"], seed_week46)
        return data_dir / "tierwise.db"
    if not _template:
        folder = Path(tempfile.mkdtemp(prefix="tierwise-w46-"))
        atexit.register(shutil.rmtree, folder, True)
        ledger = Ledger(f"sqlite:///{(folder / 'tierwise.db').as_posix()}")
        seed_week46(ledger)
        with ledger.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        ledger.engine.dispose()
        _template.append(folder / "tierwise.db")
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "tierwise.db"
    shutil.copyfile(_template[0], target)
    return target


def seeded_engine(make_engine: Any, **overrides: Any) -> Any:
    """`make_engine` on a fresh copy of the seeded week-46 ledger, with the scenario's settings."""
    from bot.config import load_settings

    seeded_database(load_settings(**scenario_settings(**overrides)).data_dir)
    return make_engine(**scenario_settings(**overrides))


def scenario_engine(data_dir: Path, **overrides: Any) -> Any:
    """A seeded week-46 engine in `data_dir` (for module-scoped fixtures of read-only tests).

    Its model is a fixed string and its shadow sampling is off: nothing here calls a model."""
    from bot.config import load_settings
    from bot.models.llm import LLM
    from tests import pg

    if pg.on_postgres:  # module-scoped: a seeded database of its own, not the test's
        overrides.setdefault("database_url", pg.seeded_database(seed_week46))
    else:
        seeded_database(data_dir)
    settings = load_settings(**scenario_settings(data_dir=data_dir, **overrides))
    return build_engine(settings, llm=LLM(settings.tiers, mock_response="unused"))


# Engines whose model calls have exact costs ---------------------------------------------------------
#
# litellm's mock_response reports 10 prompt and 20 completion tokens for every call, so with these
# dyadic per-token prices each call costs exactly 50/1024 (small), 100/1024 (medium), 200/1024 (large).

DYADIC_PRICES = {"small": (2**-10, 2**-9), "medium": (2**-9, 2**-8), "large": (2**-8, 2**-7)}
MOCK_PROMPT_TOKENS, MOCK_COMPLETION_TOKENS = 10, 20
CALL_COST = {
    tier: MOCK_PROMPT_TOKENS * inp + MOCK_COMPLETION_TOKENS * out
    for tier, (inp, out) in DYADIC_PRICES.items()
}


def dyadic_tiers(**boundaries: str) -> dict[str, dict[str, Any]]:
    """`priced_tiers` with dyadic prices; `small="external"` etc. sets a tier's data boundary."""
    tiers = priced_tiers(DYADIC_PRICES)
    for name, boundary in boundaries.items():
        tiers[name]["data_boundary"] = boundary
    return tiers
