"""bench/replay_paired.py: input checks, the scenario generator, a small replay of both rules, and the
same replay through the real ledger and `tier_review` (the path `tierwise review` and the digest use),
which must reach exactly the decisions the benchmark's pure path reaches on the same evidence."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

import bench.replay_paired as rp
from bot.core.confseq import PairedSeq
from bot.core.evidence import EvalPairs
from bot.core.ladder import Ladder
from bot.core.review import review_skill
from bot.economics import tier_review
from bot.economics.context import EconomicsContext
from bot.ledger.models import EvalResult, EvalRun, TierAssignment, utcnow
from tests.ledger_builder import LedgerBuilder, priced_tiers

TIERS = ("small", "medium")


def line(skill: str = "s", **scores: float) -> str:
    return json.dumps({"skill": skill, "scores": scores})


def good_file(n: int = 20) -> list[str]:
    return [line(small=1, medium=1)] * n


# Bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([*good_file(3), line(small=1, large=1)], "line 4: unknown tier 'large' (tiers: small, medium)"),
        ([*good_file(2), line(small=1.5, medium=0)], "line 3: score 1.5 for small is outside [0, 1]"),
        ([*good_file(2), line(small=-0.1, medium=0)], "line 3: score -0.1 for small is outside [0, 1]"),
        ([*good_file(1), line(small=1)], "line 2: no score for tier 'medium'"),
        (
            [*good_file(1), "{not json"],
            "line 2: not JSON (Expecting property name enclosed in double quotes)",
        ),
        (
            [*good_file(1), json.dumps({"scores": {}})],
            'line 2: expected {"skill": NAME, "scores": {TIER: SCORE}}',
        ),
        (
            good_file(20) + [line("tiny", small=1, medium=0)] * 19,
            "line 21: skill 'tiny' has 19 lines, fewer than 20",
        ),
        ([], "no lines: the replay file is empty"),
    ],
)
def test_bad_replay_files_are_refused_with_the_line_and_reason(lines: list[str], message: str) -> None:
    with pytest.raises(rp.ReplayError) as err:
        rp.load_lines(lines, TIERS)
    assert str(err.value) == message


def test_the_command_line_refuses_bad_input_without_a_traceback(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join([*good_file(3), line(small=2, medium=0)]) + "\n")
    assert rp.main(["--input", str(path)]) == 2
    assert capsys.readouterr().err == "replay_paired: line 4: score 2 for small is outside [0, 1]\n"
    assert rp.main(["--price", "small=0.1"]) == 2
    assert capsys.readouterr().err == "replay_paired: --price has no price for medium\n"
    assert rp.main(["--price", "small=x,medium=1"]) == 2
    assert "'x' is not a number" in capsys.readouterr().err
    assert rp.main(["--input", str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_an_external_file_in_the_format_replays(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(3)
    rows = [
        line("billing-faq", small=int(rng.random() < 0.7), medium=int(rng.random() < 0.9)) for _ in range(60)
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(rows) + "\n")
    assert rp.main(["--input", str(path), "--trials", "2", "--weeks", "3", "--jobs", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"old", "new"}
    for rule in out.values():
        assert {
            "unsafe_downgrades",
            "downgrades_found",
            "upgrades_found",
            "wrong_upgrades",
            "savings_recovered",
            "shadow_spend_share",
            "median_weeks_to_decision",
        } <= set(rule)
        assert rule["runs"] == 4  # one skill × 2 trials × 2 starting points


# The generator ------------------------------------------------------------------------------------


def test_the_generator_spreads_losses_and_wins_like_real_model_pairs() -> None:
    data = rp.load_lines(rp.generate(TIERS, 60, lines=4000, seed=5), TIERS)
    assert len(data) == 60
    losses = [sum(r[1] > r[0] for r in rows) / len(rows) for rows in data.values()]
    wins = [sum(r[0] > r[1] for r in rows) / len(rows) for rows in data.values()]
    assert 0.01 < min(losses) < 0.04 and 0.39 < max(losses) < 0.44
    assert 0.0 < min(wins) < 0.025 and 0.085 < max(wins) < 0.115
    three = rp.load_lines(rp.generate(("small", "medium", "large"), 2, seed=5), ("small", "medium", "large"))
    assert all(len(r) == 3 for rows in three.values() for r in rows)


# A small replay of both rules ---------------------------------------------------------------------


def test_a_small_replay_is_deterministic_and_the_new_rule_is_safer() -> None:
    data = rp.load_lines(rp.generate(TIERS, 12, seed=2), TIERS)
    cfg = rp.Config(TIERS, {"small": 0.0006, "medium": 0.006}, trials=3, weeks=8, seed=4)
    first, second = rp.replay(data, cfg), rp.replay(data, cfg)
    assert first == second
    new = first["new"]
    assert new["unsafe_downgrades"] == 0.0 and new["wrong_upgrades"] == 0.0
    assert new["shadow_spend_share"] is not None and 0 < new["shadow_spend_share"] < 0.1
    assert first["old"]["runs"] == new["runs"] == 12 * 3 * 2
    table = rp.table(first)
    assert "unsafe_downgrades" in table and "old (v1)" in table


# Through the real ledger --------------------------------------------------------------------------

# Tier names of their own, so the engine's ladder is exactly these two (no default tiers merged in).
LADDER_TIERS = ("lite", "pro")
PRICES = {"lite": 0.006, "pro": 0.06}  # 600 requests a month: moving saves $32.40 a month
PER_WEEK, SHADOW, WEEKS = 140, 40, 10


def skill_rows(loss: float, win: float, seed: int) -> list[tuple[float, ...]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(400):
        u = rng.random()
        rows.append((0.0, 1.0) if u < loss else (1.0, 0.0) if u < loss + win else (1.0, 1.0))
    return rows


SKILLS = {  # name: (starting tier, its paired scores)
    "label-email": ("pro", skill_rows(0.02, 0.02, 1)),  # lite is as good: downgrade
    "summarize": ("pro", skill_rows(0.30, 0.02, 2)),  # lite is much worse: stay
    "ask": ("lite", skill_rows(0.35, 0.02, 3)),  # pro is much better: upgrade
}


def test_a_replay_through_the_ledger_makes_the_benchmarks_decisions(make_engine: Any) -> None:
    tiers = priced_tiers({"lite": (0.006, 0.0), "pro": (0.06, 0.0)})
    skills = {
        name: {
            "tier": tier,
            "auto_apply": True,
            "shadow_rate": SHADOW / PER_WEEK,
            "shadow_weekly_max_calls": SHADOW,
        }
        for name, (tier, _) in SKILLS.items()
    }
    engine = make_engine(tiers=tiers, skills=skills, judge_tier="pro")
    assert engine.ladder.tiers == LADDER_TIERS
    b = LedgerBuilder(engine.ledger)
    rng = random.Random(11)
    start = (utcnow() - timedelta(weeks=WEEKS + 1)).replace(microsecond=0)
    cfg = rp.Config(LADDER_TIERS, PRICES, PER_WEEK, SHADOW, WEEKS, 1)
    ladder = Ladder(LADDER_TIERS)
    sim: dict[str, dict[str, Any]] = {}
    for name, (_tier, rows) in SKILLS.items():
        golden = rows[:40]
        for k, t in enumerate(LADDER_TIERS):  # an admin's golden-set run on both tiers, before week 1
            run = b.eval_run(
                start, name, t, cases=40, passed=sum(int(g[k]) for g in golden), total_cost=40 * PRICES[t]
            )
            with engine.ledger.session() as s:
                s.execute(update(EvalResult).where(EvalResult.run_id == run.id).values(passed=False))
                for i, g in enumerate(golden):
                    s.execute(
                        update(EvalResult)
                        .where(EvalResult.run_id == run.id, EvalResult.case_id == f"c{i + 1:03d}")
                        .values(passed=bool(g[k]))
                    )
                s.commit()
        pairs = (EvalPairs("lite", "pro", PairedSeq().extend(g[1] - g[0] for g in golden), 40),)
        sim[name] = {"weekly": [], "eval_pairs": pairs, "last": None, "moves": []}

    for week in range(WEEKS):
        week_start = start + timedelta(weeks=week)
        now = week_start + timedelta(weeks=1)
        for name, (_, rows) in SKILLS.items():
            st = sim[name]
            cur = engine.configured_tier(engine.registry.get(name))[0]
            c = LADDER_TIERS.index(cur)
            # The sampler: the ledger path and the benchmark's pure path must point at the same tier.
            planned = tier_review.next_test_for(EconomicsContext.of(engine), name, week_start).tier
            pure = rp._new_input(name, c, st["weekly"], st["eval_pairs"], cfg, ladder, st["last"])
            assert planned == rp.new_review.next_test(pure, cfg.rules).tier, (name, week)
            reqs = b.requests(
                PER_WEEK,
                week_start,
                step=timedelta(minutes=60),
                skill=name,
                tier=cur,
                cost=PRICES[cur],
                user="U1",
            )
            rated = [rng.choice(rows) for _ in range(3)]
            for req, r in zip(reqs, rated, strict=False):
                b.feedback(req, user="U1", score=1 if r[c] >= 0.5 else -1)
            entry: dict[str, Any] = {
                "tier": cur,
                "rated": 3,
                "up": sum(r[c] >= 0.5 for r in rated),
                "shadow": None,
            }
            if planned is not None:
                k = LADDER_TIERS.index(planned)
                drawn = [rng.choice(rows) for _ in range(SHADOW)]
                verdicts = ["win" if r[k] > r[c] else "loss" if r[k] < r[c] else "tie" for r in drawn]
                b.shadow_pairs(
                    week_start + timedelta(minutes=30),
                    name,
                    cur,
                    planned,
                    wins=verdicts.count("win"),
                    ties=verdicts.count("tie"),
                    losses=verdicts.count("loss"),
                    candidate_cost=PRICES[planned],
                    step=timedelta(minutes=60),
                )
                entry["pairs"] = (
                    0,
                    1,
                    [r[1] - r[0] for r in drawn],
                )  # pro − lite, as the benchmark keeps them
            st["weekly"].append(entry)
        recs = tier_review.review(EconomicsContext.of(engine), now)
        rows_stored = tier_review.store(EconomicsContext.of(engine), recs, f"week-{week + 1}")
        for rec in recs:
            if rec.skill not in SKILLS:
                continue
            st = sim[rec.skill]
            c = LADDER_TIERS.index(rec.current_tier)
            pure = review_skill(
                rp._new_input(rec.skill, c, st["weekly"], st["eval_pairs"], cfg, ladder, st["last"]),
                cfg.rules,
                now,
            )
            assert (rec.action, rec.target_tier, rec.reason) == (pure.action, pure.target_tier, pure.reason)
        tier_review.auto_apply(EconomicsContext.of(engine), rows_stored, recs)
        with engine.ledger.session() as s:  # the applied change happened at the simulated week's end
            moved = s.execute(select(TierAssignment).where(TierAssignment.created_at > now)).scalars().all()
            for row in moved:
                sim[row.skill]["last"], row.created_at = now, now
                sim[row.skill]["moves"].append((week + 1, row.previous_tier, row.tier))
                s.add(row)
            s.commit()

    final = {name: engine.configured_tier(engine.registry.get(name))[0] for name in SKILLS}
    assert final == {"label-email": "lite", "summarize": "pro", "ask": "pro"}
    # Exact for this seed: ask moves up after week 1 (its first 40 pairs already show pro credibly more
    # than 5 points better), label-email down after week 3 (120 pairs put lite within the margin).
    assert sim["label-email"]["moves"] == [(3, "pro", "lite")]
    assert sim["ask"]["moves"] == [(1, "lite", "pro")]
    assert sim["summarize"]["moves"] == []
    with engine.ledger.session() as s:
        assert s.execute(select(EvalRun)).scalars().all()  # the golden sets were part of the evidence
