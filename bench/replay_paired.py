"""Replay paired outcomes through the tier review: v1's rule and the new one, side by side, one run.

Input: JSONL, one line per request, with the quality score of each tier on that same request:

    {"skill": "billing-faq", "scores": {"small": 1, "medium": 0}}

(scores in [0, 1]; 1 = a good answer). Without `--input`, a built-in generator makes skills whose
cheap tier loses 2–42 % of pairs and wins 1–10 % (a spread like real model pairs show).

Each skill runs twice per trial: starting on its strongest tier and on its cheapest. Every simulated
week: the week's traffic (`--requests-per-week`, user spend at `--price`), shadow pairs where the
rule's sampler points (v1: one tier down, or up from the bottom; new: `review.next_test`), capped at
`--shadow-per-week`, a judge call (priced as the strongest tier) for every pair whose answers differ
(a comparator settles agreements, as `bot.economics.shadow` does), about 2 % of requests rated 👍/👎 (👍 when
the score ≥ 0.5), and a 40-case golden set run once on every tier at the start (an admin's
`tierwise eval`). Then the review runs and its recommendation is applied as auto-apply would
(cooldown included). The new rule is `bot.core.review.review_skill`, the very function `tierwise review`
and the weekly digest call (tests/integration/test_replay_paired.py also replays through the real ledger).
v1's rule is `bench/legacy_review.py`, frozen for this comparison.

    python bench/replay_paired.py [--input FILE] [--tiers small,medium] [--price small=0.0006,medium=0.006]
        [--requests-per-week 750] [--shadow-per-week 50] [--weeks 12] [--trials 100] [--seed 1]
        [--skills 60] [--value USD] [--alpha A] [--jobs 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import legacy_review  # noqa: E402
from bot.config import ReviewSettings  # noqa: E402
from bot.core import review as new_review  # noqa: E402
from bot.core.confseq import PairedSeq  # noqa: E402
from bot.core.evidence import (  # noqa: E402
    EvalPairs,
    EvalStats,
    PairEvidence,
    ShadowStats,
    SkillReviewInput,
    TierWindowStats,
)
from bot.core.ladder import Ladder  # noqa: E402

MIN_LINES = 20
GOLDEN_CASES = 40
RATED_SHARE = 0.02
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday
WINDOW_DAYS = 28  # v1's review window (and the thumbs window of both rules)
EVIDENCE_WEEKS = ReviewSettings().evidence_days // 7  # the new rule's paired evidence horizon


class ReplayError(ValueError):
    """A bad replay file or option: the message names the line and the reason."""


# Input -------------------------------------------------------------------------------------------


def parse_prices(text: str, tiers: Sequence[str]) -> dict[str, float]:
    prices: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep:
            raise ReplayError(f"--price {part!r}: expected TIER=USD, e.g. small=0.0006")
        try:
            usd = float(value)
        except ValueError:
            raise ReplayError(f"--price {part!r}: {value!r} is not a number") from None
        if not math.isfinite(usd) or usd < 0:
            raise ReplayError(f"--price {part!r}: a price must be a non-negative number")
        prices[name.strip()] = usd
    missing = [t for t in tiers if t not in prices]
    if missing:
        raise ReplayError(f"--price has no price for {', '.join(missing)}")
    return prices


def load_lines(lines: Iterable[str], tiers: Sequence[str]) -> dict[str, list[tuple[float, ...]]]:
    """Per skill, the scores of every request on `tiers` (in that order). Refuses bad lines by number."""
    out: dict[str, list[tuple[float, ...]]] = {}
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ReplayError(f"line {number}: not JSON ({exc.msg})") from None
        if not isinstance(item, dict) or not isinstance(item.get("skill"), str) or not item["skill"]:
            raise ReplayError(f'line {number}: expected {{"skill": NAME, "scores": {{TIER: SCORE}}}}')
        scores = item.get("scores")
        if not isinstance(scores, dict):
            raise ReplayError(f"line {number}: 'scores' must be an object of tier → score")
        unknown = [t for t in scores if t not in tiers]
        if unknown:
            raise ReplayError(f"line {number}: unknown tier {unknown[0]!r} (tiers: {', '.join(tiers)})")
        missing = [t for t in tiers if t not in scores]
        if missing:
            raise ReplayError(f"line {number}: no score for tier {missing[0]!r}")
        row = []
        for tier in tiers:
            score = scores[tier]
            if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
                raise ReplayError(f"line {number}: score {score!r} for {tier} is outside [0, 1]")
            row.append(float(score))
        out.setdefault(item["skill"], []).append(tuple(row))
        first_line.setdefault(item["skill"], number)
    if not out:
        raise ReplayError("no lines: the replay file is empty")
    for skill, rows in out.items():
        if len(rows) < MIN_LINES:
            raise ReplayError(
                f"line {first_line[skill]}: skill {skill!r} has {len(rows)} lines, fewer than {MIN_LINES}"
            )
    return out


def generate(tiers: Sequence[str], skills: int = 60, lines: int = 600, seed: int = 1) -> list[str]:
    """Scenario generator: skills whose cheapest tier loses 2–42 % of pairs against the strongest and
    wins 1–10 %, spread evenly (a low-discrepancy sequence, so 60 skills cover the whole range); a
    base of good answers between 55 and 90 %. Middle tiers take the strong answer on half the pairs."""
    rng = random.Random(seed)
    out = []
    for i in range(skills):
        loss = 0.02 + 0.40 * ((i * 0.6180339887 + 0.31) % 1)
        win = 0.01 + 0.09 * ((i * 0.7548776662 + 0.17) % 1)
        base = 0.55 + 0.35 * ((i * 0.5698402910 + 0.5) % 1)
        name = f"skill-{i:02d}"
        for _ in range(lines):
            u = rng.random()
            if u < loss:
                strong, cheap = 1, 0
            elif u < loss + win:
                strong, cheap = 0, 1
            else:
                strong = cheap = 1 if rng.random() < base else 0
            scores = {tiers[0]: cheap, tiers[-1]: strong}
            for mid in tiers[1:-1]:
                scores[mid] = strong if rng.random() < 0.5 else cheap
            out.append(json.dumps({"skill": name, "scores": scores}))
    return out


# Simulation ---------------------------------------------------------------------------------------


@dataclass
class Config:
    tiers: tuple[str, ...]
    prices: dict[str, float]
    requests_per_week: int = 750
    shadow_per_week: int = 50
    weeks: int = 12
    trials: int = 100
    seed: int = 1
    value: float | None = None
    rules: ReviewSettings = field(default_factory=ReviewSettings)
    legacy: legacy_review.LegacyRules = field(default_factory=legacy_review.LegacyRules)


@dataclass
class Run:
    skill: str
    start: str
    end: str
    first_move_week: int | None
    user_usd: float
    shadow_usd: float
    judge_usd: float
    eval_usd: float
    saved_usd: float  # vs staying on the starting tier, counting only weeks on a tier within the margin
    moved_up: bool


def _week_stats(skill: str, tier: str, requests: int, price: float, rated: int, up: int) -> TierWindowStats:
    return TierWindowStats(skill, tier, requests, requests * price, price, price, 0.0, 0.0, 0, 0, rated, up)


def simulate_run(
    rule: str, skill: str, rows: list[tuple[float, ...]], start: int, cfg: Config, rng: random.Random
) -> Run:
    tiers = cfg.tiers
    ladder = Ladder(tiers)
    price = [cfg.prices[t] for t in tiers]
    means = [sum(r[k] for r in rows) / len(rows) for k in range(len(tiers))]
    margin = cfg.rules.margin
    golden = rng.sample(rows, min(GOLDEN_CASES, len(rows)))
    eval_usd = sum(price) * len(golden)
    cur = start
    last_change: datetime | None = None
    first_move: int | None = None
    plan: str | None = None  # the new rule's planned shadow tier, from last week's review
    user = shadow = judge = saved = 0.0
    weekly: list[dict[str, Any]] = []  # per week: requests and thumbs on a tier; v1's shadow counts
    rated = max(1, round(cfg.requests_per_week * RATED_SHARE))
    evals_old = {
        tiers[k]: EvalStats(
            skill, tiers[k], len(golden), sum(g[k] >= 0.5 for g in golden) / len(golden), 0, price[k], START
        )
        for k in range(len(tiers))
    }
    eval_pairs = tuple(
        EvalPairs(
            tiers[a],
            tiers[b],
            PairedSeq().extend(float(g[b] >= 0.5) - float(g[a] >= 0.5) for g in golden),
            len(golden),
        )
        for a in range(len(tiers))
        for b in range(a + 1, len(tiers))
    )
    for week in range(cfg.weeks):
        now = START + timedelta(days=7 * (week + 1))
        user += cfg.requests_per_week * price[cur]
        if means[start] - means[cur] <= margin + 1e-12:
            saved += cfg.requests_per_week * (price[start] - price[cur])
        ups = sum(rng.choice(rows)[cur] >= 0.5 for _ in range(rated))
        entry: dict[str, Any] = {"tier": tiers[cur], "rated": rated, "up": ups, "shadow": None}
        # Where the sampler points this week.
        if rule == "old":
            below = ladder.cheaper(tiers[cur])
            cand_name = below if below is not None else ladder.stronger(tiers[cur])
        elif plan is not None:
            cand_name = plan  # last week's review planned it and nothing moved since (as bot.economics.shadow caches it)
        else:
            data = _new_input(skill, cur, weekly, eval_pairs, cfg, ladder, last_change)
            cand_name = new_review.next_test(data, cfg.rules).tier
        if cand_name is not None:
            cand = tiers.index(cand_name)
            lo, hi = min(cur, cand), max(cur, cand)
            wins = ties = losses = 0
            diffs = []
            for _ in range(cfg.shadow_per_week):
                r = rng.choice(rows)
                diffs.append(r[hi] - r[lo])
                shadow += price[cand]
                if r[cand] != r[cur]:
                    judge += price[-1]
                diff = r[cand] - r[cur]
                wins, ties, losses = wins + (diff > 0), ties + (diff == 0), losses + (diff < 0)
            entry["shadow"] = (cur, cand, wins, ties, losses)
            entry["pairs"] = (lo, hi, diffs)
        weekly.append(entry)
        if rule == "old":
            rec = legacy_review.review_skill(
                _old_input(skill, cur, weekly, evals_old, cfg, last_change), cfg.legacy, now
            )
        else:
            data = _new_input(skill, cur, weekly, eval_pairs, cfg, ladder, last_change)
            rec = new_review.review_skill(data, cfg.rules, now)
        plan = rec.evidence.get("next_test", {}).get("tier") if rule == "new" else None
        if rec.action in ("downgrade", "upgrade") and rec.target_tier:
            plan = None  # the tier changed: plan again from the new tier
            cur = tiers.index(rec.target_tier)
            last_change = now
            if first_move is None:
                first_move = week + 1
    return Run(
        skill,
        tiers[start],
        tiers[cur],
        first_move,
        user,
        shadow,
        judge,
        eval_usd,
        saved,
        cur > start,
    )


def _window(weekly: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return weekly[-(WINDOW_DAYS // 7) :]


def _thumbs(
    skill: str, tier: str, weekly: list[dict[str, Any]], cfg: Config, price: float
) -> TierWindowStats:
    recent = [w for w in _window(weekly) if w["tier"] == tier]
    return _week_stats(
        skill,
        tier,
        cfg.requests_per_week * len(recent),
        price,
        sum(w["rated"] for w in recent),
        sum(w["up"] for w in recent),
    )


def _old_input(
    skill: str,
    cur: int,
    weekly: list[dict[str, Any]],
    evals: dict[str, EvalStats],
    cfg: Config,
    last_change: datetime | None,
) -> SkillReviewInput:
    tiers = cfg.tiers
    counts: dict[tuple[int, int], list[int]] = {}
    for w in _window(weekly):
        if w["shadow"] is not None:
            p, c, wins, ties, losses = w["shadow"]
            acc = counts.setdefault((p, c), [0, 0, 0])
            acc[0], acc[1], acc[2] = acc[0] + wins, acc[1] + ties, acc[2] + losses
    shadows = tuple(
        ShadowStats(skill, tiers[p], tiers[c], w, t, lo, 0, cfg.prices[tiers[c]])
        for (p, c), (w, t, lo) in counts.items()
    )
    stats = {tiers[cur]: _thumbs(skill, tiers[cur], weekly, cfg, cfg.prices[tiers[cur]])}
    return SkillReviewInput(
        skill=skill,
        current_tier=tiers[cur],
        tiers=tiers,
        window_days=WINDOW_DAYS,
        stats=stats,
        shadows=shadows,
        evals=evals,
        auto_apply=True,
        last_change_at=last_change,
    )


def _new_input(
    skill: str,
    cur: int,
    weekly: list[dict[str, Any]],
    eval_pairs: tuple[EvalPairs, ...],
    cfg: Config,
    ladder: Ladder,
    last_change: datetime | None,
) -> SkillReviewInput:
    tiers = cfg.tiers
    stats = {t: _thumbs(skill, t, weekly, cfg, cfg.prices[t]) for t in {w["tier"] for w in _window(weekly)}}
    if tiers[cur] not in stats:
        stats[tiers[cur]] = _week_stats(skill, tiers[cur], 0, cfg.prices[tiers[cur]], 0, 0)
    diffs: dict[tuple[int, int], list[float]] = {}
    for w in weekly[-EVIDENCE_WEEKS:]:  # the ledger's evidence horizon (review.evidence_days)
        if w.get("pairs") is not None:
            lo, hi, ds = w["pairs"]
            diffs.setdefault((lo, hi), []).extend(ds)
    pairs = tuple(
        PairEvidence(
            tiers[lo],
            tiers[hi],
            PairedSeq().extend(ds),
            sum(d > 0 for d in ds),
            sum(d == 0 for d in ds),
            sum(d < 0 for d in ds),
        )
        for (lo, hi), ds in diffs.items()
    )
    return SkillReviewInput(
        skill=skill,
        current_tier=tiers[cur],
        tiers=tiers,
        window_days=WINDOW_DAYS,
        stats=stats,
        ladder=ladder,
        pairs=pairs,
        eval_pairs=eval_pairs,
        cost_per_request=dict(cfg.prices),
        value_per_good_answer_usd=cfg.value,
        shadow_per_week=float(cfg.shadow_per_week),
        auto_apply=True,
        last_change_at=last_change,
    )


def _skill_job(args: tuple[str, list[tuple[float, ...]], Config, int]) -> list[tuple[str, Run]]:
    skill, rows, cfg, index = args
    out = []
    for rule in ("old", "new"):
        for trial in range(cfg.trials):
            for start in (len(cfg.tiers) - 1, 0):
                # The same random stream for both rules: identical first weeks, a fair comparison.
                rng = random.Random(f"{cfg.seed}:{index}:{trial}:{start}")
                out.append((rule, simulate_run(rule, skill, rows, start, cfg, rng)))
    return out


# Figures ------------------------------------------------------------------------------------------


def figures(runs: list[Run], data: dict[str, list[tuple[float, ...]]], cfg: Config) -> dict[str, Any]:
    tiers = cfg.tiers
    means = {s: [sum(r[k] for r in rows) / len(rows) for k in range(len(tiers))] for s, rows in data.items()}
    gap = {s: {t: (m[-1] - m[k]) * 100 for k, t in enumerate(tiers)} for s, m in means.items()}
    top, bottom = tiers[-1], tiers[0]
    from_top = [r for r in runs if r.start == top]
    from_bottom = [r for r in runs if r.start == bottom]

    def share(hits: list[bool]) -> float | None:
        return sum(hits) / len(hits) if hits else None

    unsafe_pool = [r for r in from_top if any(gap[r.skill][t] >= 5 for t in tiers[:-1])]
    safe_pool = [r for r in from_top if gap[r.skill][bottom] <= 1]
    up_pool = [r for r in from_bottom if gap[r.skill][bottom] >= 10]
    no_gain_pool = [
        r for r in from_bottom if all(gap[r.skill][bottom] - gap[r.skill][t] <= 0 for t in tiers[1:])
    ]
    # The oracle knows the gaps: from the top, it moves at once to the cheapest tier within the margin.
    oracle = 0.0
    for r in from_top:
        ok = [k for k, t in enumerate(tiers) if gap[r.skill][t] <= cfg.rules.margin * 100 + 1e-9]
        oracle += cfg.weeks * cfg.requests_per_week * (cfg.prices[top] - cfg.prices[tiers[min(ok)]])
    weeks = [r.first_move_week for r in runs if r.first_move_week is not None]
    user = sum(r.user_usd for r in runs)
    return {
        "unsafe_downgrades": share([gap[r.skill][r.end] >= 5 for r in unsafe_pool]),
        "downgrades_found": share([r.end != top for r in safe_pool]),
        "upgrades_found": share([gap[r.skill][bottom] - gap[r.skill][r.end] >= 10 for r in up_pool]),
        "wrong_upgrades": share([r.moved_up for r in no_gain_pool]),
        "savings_recovered": sum(r.saved_usd for r in from_top) / oracle if oracle else None,
        "shadow_spend_share": (sum(r.shadow_usd + r.judge_usd for r in runs) / user) if user else None,
        "eval_spend_share": (sum(r.eval_usd for r in runs) / user) if user else None,
        "median_weeks_to_decision": statistics.median(weeks) if weeks else None,
        "runs": len(runs),
        "pools": {
            "unsafe_downgrades": len(unsafe_pool),
            "downgrades_found": len(safe_pool),
            "upgrades_found": len(up_pool),
            "wrong_upgrades": len(no_gain_pool),
        },
    }


def replay(data: dict[str, list[tuple[float, ...]]], cfg: Config, jobs: int = 1) -> dict[str, Any]:
    jobs_in = [(s, rows, cfg, i) for i, (s, rows) in enumerate(sorted(data.items()))]
    if jobs > 1:
        from multiprocessing import get_context

        with get_context("fork").Pool(jobs) as pool:
            results = pool.map(_skill_job, jobs_in, chunksize=1)
    else:
        results = [_skill_job(j) for j in jobs_in]
    runs: dict[str, list[Run]] = {"old": [], "new": []}
    for chunk in results:
        for rule, run in chunk:
            runs[rule].append(run)
    return {rule: figures(rs, data, cfg) for rule, rs in runs.items()}


TARGETS = {
    "unsafe_downgrades": ("≤", 0.01),
    "downgrades_found": ("≥", 0.80),
    "upgrades_found": ("≥", 0.95),
    "wrong_upgrades": ("≤", 0.01),
    "shadow_spend_share": ("≤", 0.10),
}


def table(result: dict[str, Any]) -> str:
    def cell(x: Any, key: str) -> str:
        if x is None:
            return "n/a"
        return f"{x:.1f}" if key == "median_weeks_to_decision" else f"{x:.1%}"

    keys = [*TARGETS, "savings_recovered", "eval_spend_share", "median_weeks_to_decision"]
    out = [f"{'figure':<26} {'old (v1)':>10} {'new':>10}  target"]
    for key in keys:
        target = TARGETS.get(key)
        mark = f"{target[0]} {target[1]:.0%}" if target else ""
        out.append(
            f"{key:<26} {cell(result['old'][key], key):>10} {cell(result['new'][key], key):>10}  {mark}"
        )
    pools = result["new"]["pools"]
    out.append("runs per figure: " + ", ".join(f"{k} {v}" for k, v in pools.items()))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, help="JSONL of paired scores (default: the built-in generator)")
    parser.add_argument("--tiers", default="small,medium")
    parser.add_argument("--price", default="small=0.0006,medium=0.006")
    parser.add_argument("--requests-per-week", type=int, default=750)
    parser.add_argument("--shadow-per-week", type=int, default=50)
    parser.add_argument("--weeks", type=int, default=12)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skills", type=int, default=60, help="generated skills (without --input)")
    parser.add_argument("--value", type=float, default=None, help="value_per_good_answer_usd of every skill")
    parser.add_argument("--alpha", type=float, default=None, help="review.alpha (default: the product's)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        tiers = tuple(t.strip() for t in args.tiers.split(",") if t.strip())
        if len(tiers) < 2 or len(set(tiers)) != len(tiers):
            raise ReplayError(f"--tiers {args.tiers!r}: give two or more distinct tiers, cheapest first")
        prices = parse_prices(args.price, tiers)
        for name in ("requests_per_week", "shadow_per_week", "weeks", "trials", "skills", "jobs"):
            if getattr(args, name) < (0 if name == "shadow_per_week" else 1):
                raise ReplayError(f"--{name.replace('_', '-')} must be a positive whole number")
        if args.value is not None and (not math.isfinite(args.value) or args.value < 0):
            raise ReplayError("--value must be a non-negative number of USD")
        if args.alpha is not None and not 0 < args.alpha < 1:
            raise ReplayError("--alpha must be within (0, 1)")
        if args.input is not None:
            if not args.input.is_file():
                raise ReplayError(f"--input {args.input}: no such file")
            with args.input.open(encoding="utf-8") as f:
                data = load_lines(f, tiers)
        else:
            data = load_lines(generate(tiers, args.skills, seed=args.seed), tiers)
    except ReplayError as exc:
        print(f"replay_paired: {exc}", file=sys.stderr)
        return 2
    rules = ReviewSettings() if args.alpha is None else ReviewSettings(alpha=args.alpha)
    cfg = Config(
        tiers,
        prices,
        args.requests_per_week,
        min(args.shadow_per_week, args.requests_per_week),
        args.weeks,
        args.trials,
        args.seed,
        args.value,
        rules,
        replace(legacy_review.LegacyRules()),
    )
    began = time.perf_counter()
    result = replay(data, cfg, args.jobs)
    summary = (
        f"{len(data)} skills × {cfg.trials} trials × 2 starts, {cfg.weeks} weeks, "
        f"{cfg.requests_per_week} requests and ≤ {cfg.shadow_per_week} shadow pairs a week "
        f"({time.perf_counter() - began:.0f} s)\n{table(result)}"
    )
    if args.json:  # the object on stdout; the side-by-side table on stderr, for people
        print(json.dumps(result, indent=2))
        print(summary, file=sys.stderr)
    else:
        print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
