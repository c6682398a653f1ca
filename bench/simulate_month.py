"""A simulated month of traffic through the real engine, then the tier review and the digest.

Three skills, three situations (the issue's "done when"):

- `label-email` runs on `medium`, but `small` labels emails just as well: every request is
  shadowed one tier down (the comparator sees the same labels: ties), and golden-set evals on
  both tiers pass alike. Expected: downgrade medium → small, with the saving.
- `summarize` runs on `small`, which drops the decisions and owners: users give mostly 👎, and
  shadowed one tier up, the judge (`large`) prefers the `medium` answer. Expected: upgrade
  small → medium.
- `ask` runs on `small` and users like it (mostly 👍); there is no cheaper tier to shadow onto.
  Expected: keep.

Everything runs for real: the engine (routing, packs, prompts, litellm, ledger), the Shadow hook,
the judge, `engine.rate`, the eval runner, `tier_review.review` and `build_digest`. Only the
models are stand-ins: an OpenAI-compatible fake server on 127.0.0.1 (tests/fakes/fake_openai.py)
answers per tier, with per-token prices per tier so the costs differ.

Time: the engine has no clock to inject (rows take `utcnow()`), so each simulated day's rows
are re-dated after the day's batch: every row newer than the simulated month (i.e. written
just now) is moved onto that day, keeping its order and spacing (requests, feedback, shadow
pairs, eval runs).

    .venv/bin/python bench/simulate_month.py [--label-email N] [--summarize N] [--ask N] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.app import build_engine  # noqa: E402
from bot.evals.judge import PAIR_SYSTEM, RUBRIC_SYSTEM  # noqa: E402
from bot.evals.runner import EvalCase, evals_dir, load_cases  # noqa: E402

SIM_START = datetime(2026, 10, 5, tzinfo=UTC)  # Monday of ISO week 2026-W41
DAYS = 28  # four ISO weeks: W41–W44; the review window (28 days) is exactly this month
SIM_END = SIM_START + timedelta(days=DAYS)
PERIOD = "2026-W44"  # the digest's week: the month's last

# Per-token prices (USD) of the stand-in tiers, shaped like a real ladder (×20 per step up).
PRICES = {"small": (1.5e-7, 6e-7), "medium": (3e-6, 1.5e-5), "large": (1.5e-5, 7.5e-5)}
HARD_CASE = "le-004"  # the one golden email `small` gets wrong (priority), so the tiers differ a little


@dataclass
class SimConfig:
    label_email_per_day: int = 60
    summarize_per_day: int = 8
    ask_per_day: int = 15
    eval_cases: int | None = None  # label-email golden cases per eval run (None: all 54)
    price_scale: float = 1.0  # multiplies every tier price (a scaled-down run keeps the $ volume)
    seed: int = 7


@dataclass
class SimResult:
    engine: Any
    recommendations: list[Any]
    digest: Any
    eval_runs: list[Any]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def rec(self, skill: str) -> Any:
        return next(r for r in self.recommendations if r.skill == skill)


# The model stand-in ------------------------------------------------------------------------------


def _cases(skill: str) -> list[EvalCase]:
    cases, problems = load_cases(evals_dir() / f"{skill}.jsonl")
    assert not problems, problems
    return cases


class SimModel:
    """Answers the fake server's requests by tier (the model name) and by what is asked."""

    def __init__(self) -> None:
        self.labels = {c.input.strip(): (c.id, c.expected or {}) for c in _cases("label-email")}
        self.calls: dict[str, int] = {}

    def __call__(self, body: dict[str, Any]) -> str:
        tier = str(body.get("model", "")).removeprefix("sim-")
        messages = body.get("messages", [])
        system = str(messages[0].get("content", "")) if messages else ""
        user = str(messages[-1].get("content", "")) if messages else ""
        kind = "judge" if system in (PAIR_SYSTEM, RUBRIC_SYSTEM) else "answer"
        self.calls[f"{tier}:{kind}"] = self.calls.get(f"{tier}:{kind}", 0) + 1
        if system == PAIR_SYSTEM:
            return self._pairwise(user)
        if system == RUBRIC_SYSTEM:
            return json.dumps({"score": 4, "reason": "meets the rubric"})
        if user.strip() in self.labels:
            return self._label(tier, *self.labels[user.strip()])
        if re.search(r"^[^\n():]{1,40} \(\d{1,2}:\d{2}\): ", user, re.MULTILINE):
            return self._summary(tier, user)
        return (
            "Request Zscaler Private Access in the Okta dashboard (Request app), your manager approves, "
            "then install Zscaler Client Connector from Self Service.\nSources: [it/vpn-access.md]"
        )

    @staticmethod
    def _label(tier: str, case_id: str, expected: dict[str, Any]) -> str:
        label = dict(expected)
        if tier == "small" and case_id == HARD_CASE:
            label["priority"] = "normal"  # small misses the overdue-invoice urgency on this one email
        label["reason"] = f"taxonomy rule for {label['category']}"
        return json.dumps(label)

    @staticmethod
    def _summary(tier: str, transcript: str) -> str:
        speakers = sorted(set(re.findall(r"^([^\n():]{1,40}) \(\d{1,2}:\d{2}\): ", transcript, re.MULTILINE)))
        if tier == "small":  # small skims: no owners, no decisions
            return "Decisions: none\nOwners: none\nOpen questions: the thread discussed several things"
        owners = ", ".join(f"@{s.split()[0].lower()}" for s in speakers[:3])
        return (
            f"Decisions: the team agreed on the plan in the thread [complete]\nOwners: {owners} own the next "
            "steps\nOpen questions: none"
        )

    @staticmethod
    def _pairwise(user: str) -> str:
        """The judge prefers the complete summary; identical answers tie."""
        one = re.search(r"<answer_1>\n(.*?)\n</answer_1>", user, re.DOTALL)
        two = re.search(r"<answer_2>\n(.*?)\n</answer_2>", user, re.DOTALL)
        a, b = (one.group(1) if one else ""), (two.group(1) if two else "")
        good_a, good_b = "[complete]" in a, "[complete]" in b
        if good_a == good_b:
            # A structured disagreement (label-email): the answer with the stricter priority wins.
            rank = {"urgent": 3, "high": 2, "normal": 1, "low": 0}
            pa = rank.get(str(_json_field(a, "priority")), -1)
            pb = rank.get(str(_json_field(b, "priority")), -1)
            if pa == pb:
                return json.dumps({"winner": "tie", "reason": "equivalent answers"})
            return json.dumps({"winner": "1" if pa > pb else "2", "reason": "the right priority"})
        winner = "1" if good_a else "2"
        return json.dumps({"winner": winner, "reason": "names the decisions and owners"})


def _json_field(text: str, name: str) -> Any:
    try:
        return json.loads(text).get(name)
    except (ValueError, AttributeError):
        return None


# The simulation ----------------------------------------------------------------------------------


def settings_for(url: str, database_url: str, price_scale: float) -> Any:
    from bot.config import load_settings

    tiers = {
        name: {
            "model": f"openai/sim-{name}",
            "api_base": url,
            "data_boundary": "local",
            "input_cost_per_token": price_in * price_scale,
            "output_cost_per_token": price_out * price_scale,
            "context_window": 16384,
            "max_retries": 0,
            "timeout": 30,
        }
        for name, (price_in, price_out) in PRICES.items()
    }
    caps = {"shadow_weekly_max_calls": 100_000, "shadow_weekly_max_usd": 1_000.0}
    skills = {
        "label-email": {"tier": "medium", "shadow_rate": 1.0, "shadow_direction": "down", **caps},
        "summarize": {"tier": "small", "shadow_rate": 1.0, "shadow_direction": "up", **caps},
        "ask": {"tier": "small", "shadow_rate": 1.0, "shadow_direction": "down", **caps},
    }
    return load_settings(database_url=database_url, tiers=tiers, skills=skills, judge_tier="large")


def redate(engine: Any, day: datetime, batch_start: datetime) -> int:
    """Move every row written since `batch_start` (all newer than the simulated month) onto `day`,
    from 09:00, keeping order and spacing (stretched to fill at most nine hours)."""
    from sqlalchemy import bindparam, select, update

    from bot.ledger.models import EvalRun, Feedback, RequestRow, ShadowPair

    moved = 0
    tables = (
        (RequestRow, RequestRow.id, (RequestRow.created_at,)),
        (Feedback, Feedback.id, (Feedback.created_at, Feedback.updated_at)),
        (ShadowPair, ShadowPair.id, (ShadowPair.created_at,)),
        (EvalRun, EvalRun.id, (EvalRun.created_at,)),
    )
    with engine.ledger.engine.begin() as conn:
        spans = []
        for model, pk, cols in tables:
            rows = conn.execute(select(pk, *cols).where(cols[0] >= SIM_END)).all()
            spans.append((model, pk, cols, rows))
        stamps = [at for *_, rows in spans for row in rows for at in row[1:]]
        if not stamps:
            return 0
        duration = max((max(stamps) - batch_start).total_seconds(), 1.0)
        stretch = min(600.0, 9 * 3600 / duration)
        opens = day + timedelta(hours=9)

        def shift(at: datetime) -> datetime:
            return opens + timedelta(seconds=(at - batch_start).total_seconds() * stretch)

        for model, pk, cols, rows in spans:
            if not rows:
                continue
            stmt = (
                update(model.__table__)
                .where(model.__table__.c[pk.key] == bindparam("pk"))
                .values({c.key: bindparam(f"new_{c.key}") for c in cols})
            )
            params = [
                {"pk": row[0], **{f"new_{c.key}": shift(at) for c, at in zip(cols, row[1:], strict=True)}}
                for row in rows
            ]
            conn.execute(stmt, params)
            moved += len(rows)
    return moved


def simulate(config: SimConfig, database_url: str, log: Any = None) -> SimResult:
    """Run the month against a fresh ledger at `database_url`; returns the review and the digest."""
    from bot.core.periods import week_bounds
    from bot.core.types import Request
    from bot.economics.context import EconomicsContext
    from bot.economics.digest import build_digest
    from bot.economics.shadow import Shadow
    from bot.economics.tier_review import review
    from bot.evals.runner import run_eval
    from bot.ledger.models import utcnow
    from bot.models.llm import LLM
    from tests.fakes.fake_openai import FakeOpenAI

    say = log or (lambda _msg: None)
    started = time.perf_counter()
    assert utcnow() > SIM_END + timedelta(days=1), "the clock must be past the simulated month"
    rng = random.Random(config.seed)
    model = SimModel()
    emails = [c.input for c in _cases("label-email")]
    threads = [c.input for c in _cases("summarize")]
    questions = [c.input for c in _cases("ask")]
    for pool in (emails, threads, questions):
        rng.shuffle(pool)
    counts = {"requests": 0, "ratings": 0, "errors": 0}

    with FakeOpenAI(default=model) as fake:
        settings = settings_for(fake.url, database_url, config.price_scale)
        engine = build_engine(settings, llm=LLM(settings.tiers))
        # The real Shadow hook, run inline with a seeded RNG so the month is reproducible.
        engine.after_reply.remove(engine.shadow)
        engine.shadow = Shadow(
            EconomicsContext.of(engine), engine, rng=random.Random(config.seed), background=False
        )
        engine.after_reply.append(engine.shadow)
        users = [f"U{n:04d}" for n in range(1, 41)]

        def ask(skill: str, text: str, day: int, k: int) -> Any:
            user = users[rng.randrange(len(users))]
            reply = engine.handle(
                Request(
                    text=text,
                    source="slack",
                    user=user,
                    channel="CSIM",
                    skill=skill,
                    explicit_via="slash",
                    event_id=f"sim-{day}-{skill}-{k}",
                )
            )
            counts["requests"] += 1
            counts["errors"] += reply.status != "ok"
            return reply, user

        # (skill, share who rate, chance a rating is 👍, 👎 comments)
        feedback = {
            "label-email": (0.15, 0.92, ("wrong team",)),
            "summarize": (0.6, 0.2, ("missed the decision and who owns it", "no owners listed")),
            "ask": (0.4, 0.9, ("linked the wrong page",)),
        }
        schedule = {
            "label-email": (config.label_email_per_day, emails),
            "summarize": (config.summarize_per_day, threads),
            "ask": (config.ask_per_day, questions),
        }
        served = dict.fromkeys(schedule, 0)
        runs: list[Any] = []
        for day in range(DAYS):
            batch_start = utcnow()
            todo = [skill for skill, (n, _) in schedule.items() for _ in range(n)]
            rng.shuffle(todo)
            for k, skill in enumerate(todo):
                pool = schedule[skill][1]
                reply, user = ask(skill, pool[served[skill] % len(pool)], day, k)
                served[skill] += 1
                share, up, comments = feedback[skill]
                if reply.ok and rng.random() < share:
                    score = 1 if rng.random() < up else -1
                    comment = (
                        comments[rng.randrange(len(comments))] if score < 0 and rng.random() < 0.3 else None
                    )
                    engine.rate(reply.request_id, user, score, comment, source="slack")
                    counts["ratings"] += 1
            if day == DAYS - 4:  # the weekly eval job, in the month's last week
                cases = _cases("label-email")
                chosen = cases if config.eval_cases is None else cases[: config.eval_cases]
                runs = run_eval(engine, "label-email", ["small", "medium"], chosen)
                say(
                    "evals label-email: "
                    + ", ".join(f"{r.tier} {r.passed}/{r.cases} ({r.pass_rate:.1%})" for r in runs)
                )
            moved = redate(engine, SIM_START + timedelta(days=day), batch_start)
            say(
                f"day {day + 1:2d} {SIM_START + timedelta(days=day):%a %Y-%m-%d}: {len(todo)} requests, {moved} rows"
            )

        counts["model_calls"] = len(fake.requests)
        _, end = week_bounds(PERIOD, settings.timezone)
        assert end == SIM_END, (end, SIM_END)
        economics = EconomicsContext.of(engine)
        recs = review(economics, end)
        digest = build_digest(economics, PERIOD)
        return SimResult(
            engine=engine,
            recommendations=recs,
            digest=digest,
            eval_runs=runs,
            counts={**counts, **{f"calls {k}": v for k, v in sorted(model.calls.items())}},
            seconds=time.perf_counter() - started,
        )


# Output ------------------------------------------------------------------------------------------


def _ci(bounds: list[float]) -> str:
    return f"[{bounds[0]:.1%}, {bounds[1]:.1%}]"


def evidence_lines(rec: Any) -> list[str]:
    """The numbers behind a recommendation, one short line each."""
    ev = rec.evidence
    thumbs = f"👍 {ev['thumbs_up']} of {ev['feedback']}"
    if ev["feedback"]:
        thumbs += f" = {ev['thumbs_up_rate']:.1%} {_ci(ev['thumbs_ci'])}"
    lines = [
        f"{ev['requests']} requests in {ev['window_days']} days on {ev['tier']} at ${ev['cost_mean']:.6f} each "
        f"(${ev['monthly_cost_usd']:.2f}/month); {thumbs}"
    ]
    for c in ev.get("comparisons", []):
        if not c["pairs"]:
            continue
        lo, hi = c["ci_points"]
        cost = c["monthly_cost_change_usd"]
        lines.append(
            f"paired vs {c['tier']}: {c['pairs']} pairs, {c['tier']} {c['advantage_points']:+.1f} pts "
            f"[{lo:.1f}, {hi:.1f}] against a {c['margin_points']:.1f}-pt margin: {c['state']}"
            + (f", {cost:+.2f} USD/month" if cost is not None else "")
            + (f", blocked by: {', '.join(c['blocked_by'])}" if c["blocked_by"] else "")
        )
    for tier, e in sorted(ev.get("eval", {}).items()):
        lines.append(
            f"eval on {tier}: {e['cases']} golden cases, pass rate {e['pass_rate']:.1%}, "
            f"${e['mean_cost_usd']:.6f}/case"
        )
    nxt = ev.get("next_test") or {}
    if nxt.get("tier"):
        need = f", about {nxt['pairs_needed']} more pairs" if nxt.get("pairs_needed") is not None else ""
        lines.append(f"next: shadow-test {nxt['tier']} ({nxt['reason']}){need}")
    return lines


def report(result: SimResult) -> str:
    from bot.core.rec_format import format_recommendation
    from bot.economics.digest import to_text

    out = ["Tier review at the end of the month:"]
    for rec in result.recommendations:
        if rec.skill in ("label-email", "summarize", "ask"):
            out.append(f"  {format_recommendation(rec)}")
            out.extend(f"      {line}" for line in evidence_lines(rec))
    others = [r.skill for r in result.recommendations if r.skill not in ("label-email", "summarize", "ask")]
    out.append(f"  (no traffic, keep: {', '.join(others)})")
    out += ["", f"Digest for the month's last week ({PERIOD}):", "", to_text(result.digest)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Simulate a month of traffic, then review the tiers.")
    parser.add_argument("--label-email", type=int, default=SimConfig.label_email_per_day, help="requests/day")
    parser.add_argument("--summarize", type=int, default=SimConfig.summarize_per_day, help="requests/day")
    parser.add_argument("--ask", type=int, default=SimConfig.ask_per_day, help="requests/day")
    parser.add_argument("--eval-cases", type=int, default=None, help="label-email golden cases (default all)")
    parser.add_argument("--price-scale", type=float, default=1.0, help="multiply every tier price")
    parser.add_argument("--keep", type=Path, default=None, help="keep the ledger at this path")
    parser.add_argument("--quiet", action="store_true", help="no per-day progress")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="tierwise-sim-"))
    os.chdir(workdir)  # no tierwise.toml or .env from elsewhere applies
    os.environ["TIERWISE_DATA_DIR"] = str(workdir)
    for key in [k for k in os.environ if k.lower() in ("http_proxy", "https_proxy", "all_proxy")]:
        os.environ.pop(key)  # the fake model server is on 127.0.0.1
    path = (args.keep or workdir / "ledger.db").resolve()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    config = SimConfig(
        label_email_per_day=args.label_email,
        summarize_per_day=args.summarize,
        ask_per_day=args.ask,
        eval_cases=args.eval_cases,
        price_scale=args.price_scale,
    )
    result = simulate(config, f"sqlite:///{path}", log=None if args.quiet else print)
    print()
    print(
        f"simulated {DAYS} days ({SIM_START:%Y-%m-%d} to {SIM_END - timedelta(days=1):%Y-%m-%d}) in "
        f"{result.seconds:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in result.counts.items())
    )
    print(f"ledger: {path}")
    print()
    print(report(result))
    expected = {
        "label-email": ("downgrade", "small"),
        "summarize": ("upgrade", "medium"),
        "ask": ("keep", None),
    }
    got = {skill: (result.rec(skill).action, result.rec(skill).target_tier) for skill in expected}
    print()
    print("as expected" if got == expected else f"UNEXPECTED: {got} (expected {expected})")
    return 0 if got == expected else 1


if __name__ == "__main__":
    sys.exit(main())
