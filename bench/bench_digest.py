"""One week's digest over a big ledger: grouped SQL vs loading every row into Python, same run.

Fills a SQLite ledger (created by the real migrations) with 1,000,000 requests and 100,000
feedback rows over 8 ISO weeks (6 skills, 3 tiers, ~400 users, ~2 % escalations, ~1 % errors,
some unknown prices, user traffic plus shadow/judge/eval rows, and shadow pairs and eval runs so
the tier review has evidence), then times `build_digest(EconomicsContext.of(engine), period)` for the last full week
(3 runs) next to a baseline that loads every request and feedback row into Python and computes
the same figures there. Prints the query plan of every statement the digest runs.

    .venv/bin/python bench/bench_digest.py [--requests N] [--keep PATH]

Exits 1 when the digest's median wall time is 2 s or more, 2 when its figures differ from the
baseline's (the comparison checks that both compute the same thing).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bot.app import build_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LIMIT_S = 2.0
END = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday: the data covers the 8 ISO weeks before it
WEEKS = 8
START = END - timedelta(weeks=WEEKS)
PERIOD = "2026-W47"  # the last full week of data (16–23 Nov 2026)
TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's SQLite DateTime stores UTC datetimes

# skill: (share of traffic, main tier, prompt tokens median, completion tokens median, structured)
SKILLS = {
    "ask": (0.34, "small", 1400, 180, False),
    "summarize": (0.20, "small", 2200, 260, False),
    "label-email": (0.16, "medium", 1900, 60, True),
    "triage-alert": (0.12, "medium", 2600, 320, True),
    "write-report": (0.10, "large", 2400, 700, False),
    "hunt": (0.08, "large", 2500, 520, True),
}
# tier: (model, $ per input token, $ per output token, latency median ms)
TIERS = {
    "small": ("openai/gpt-4o-mini", 1.5e-7, 6e-7, 900),
    "medium": ("anthropic/claude-sonnet-4-5", 3e-6, 1.5e-5, 2400),
    "large": ("anthropic/claude-opus-4-1", 1.5e-5, 7.5e-5, 5200),
}
TIER_NAMES = list(TIERS)
USERS = 400
COMMENTS = {
    "ask": ("cited the old travel policy", "did not answer the question, just linked #it-help"),
    "summarize": ("missed the decision about the rollback", "owners are wrong", "too long"),
    "label-email": ("wrong team, this is a billing issue", "priority should be urgent"),
    "triage-alert": ("severity should be high", "wrong runbook"),
    "write-report": ("invented a metric that was not in my notes", "wrong template"),
    "hunt": ("the sigma rule did not parse in our SIEM", "wrong log source"),
}

REQUEST_COLUMNS = (
    "id", "created_at", "source", "purpose", "user_id", "channel", "thread_ts", "event_id", "skill",
    "route_reason", "tier", "model_requested", "model_used", "pack_hash", "prompt_tokens",
    "completion_tokens", "cached_tokens", "cache_write_tokens", "cost_usd", "cost_known", "price_source",
    "latency_ms", "status", "error", "escalated_from", "shadow", "input_chars", "response", "notes",
)  # fmt: skip
FEEDBACK_COLUMNS = ("request_id", "user_id", "score", "comment", "source", "created_at", "updated_at")


# Filling ---------------------------------------------------------------------------------------


def _timestamps(rng: np.random.Generator, n: int) -> np.ndarray:
    """n sorted microsecond offsets from START: weekdays busier than weekends, office hours busiest."""
    span_us = int((END - START).total_seconds() * 1e6)
    raw = np.sort(rng.integers(0, span_us, size=n * 2, dtype=np.int64))
    day = (raw // 86_400_000_000) % 7  # START is a Monday
    hour = (raw // 3_600_000_000) % 24
    keep_p = np.where(day >= 5, 0.35, 1.0) * np.where((hour >= 8) & (hour < 19), 1.0, 0.3)
    kept = raw[rng.random(raw.size) < keep_p]
    if kept.size < n:  # top up uniformly (never happens at these rates, but stay exact)
        kept = np.sort(np.concatenate([kept, rng.integers(0, span_us, size=n - kept.size)]))
    return np.sort(rng.choice(kept, size=n, replace=False))


def _as_text(offsets_us: np.ndarray) -> list[str]:
    base = np.datetime64(START.replace(tzinfo=None), "us")
    return [s.replace("T", " ") for s in np.datetime_as_string(base + offsets_us.astype("timedelta64[us]"))]


def generate_requests(n: int, seed: int = 7) -> tuple[list[tuple], dict[str, Any]]:
    rng = np.random.default_rng(seed)
    names = list(SKILLS)
    skill_i = rng.choice(len(names), size=n, p=[SKILLS[s][0] for s in names])
    main_tier = np.array([TIER_NAMES.index(SKILLS[s][1]) for s in names])[skill_i]
    # 10 % of traffic runs one tier off the skill's main tier (operator overrides, earlier assignments)
    drift = rng.choice([-1, 0, 1], size=n, p=[0.05, 0.9, 0.05])
    tier_i = np.clip(main_tier + drift, 0, 2)
    purpose = rng.choice(np.array(["user", "shadow", "judge", "eval"]), size=n, p=[0.915, 0.06, 0.02, 0.005])
    is_user = purpose == "user"
    # shadow rows replay on the next cheaper tier (or the next stronger one for the cheapest); the judge is large
    tier_i = np.where(purpose == "shadow", np.where(main_tier > 0, main_tier - 1, main_tier + 1), tier_i)
    tier_i = np.where(purpose == "judge", 2, tier_i)
    status = rng.choice(np.array(["ok", "error", "invalid"]), size=n, p=[0.99, 0.008, 0.002])
    # ~2 % escalations on the structured skills: row i-1 is the invalid first attempt, row i the retry
    # one tier up, pointing back at it (as the engine records them).
    structured = np.array([SKILLS[s][4] for s in names])[skill_i]
    escalated = is_user & structured & (rng.random(n) < 0.027 / 0.36) & (tier_i < 2)  # ≈ 2 % of user rows
    escalated[0] = False
    escalated[1:] &= ~escalated[:-1]  # a first attempt is never itself an escalation
    origin = np.flatnonzero(escalated) - 1
    skill_i[origin], purpose[origin], tier_i[origin] = skill_i[origin + 1], "user", tier_i[origin + 1]
    status[origin], status[origin + 1] = "invalid", "ok"
    tier_i[origin + 1] += 1
    is_user = purpose == "user"
    failed = status == "error"
    unknown = ~failed & (rng.random(n) < 0.004)
    user_w = 1.0 / np.arange(1, USERS + 1) ** 0.8  # a few heavy users, a long tail
    user_i = rng.choice(USERS, size=n, p=user_w / user_w.sum())
    p_med = np.array([SKILLS[s][2] for s in names])[skill_i]
    c_med = np.array([SKILLS[s][3] for s in names])[skill_i]
    prompt = np.where(failed, 0, (p_med * rng.lognormal(0, 0.35, n)).astype(np.int64))
    completion = np.where(failed, 0, (c_med * rng.lognormal(0, 0.5, n)).astype(np.int64) + 1)
    cached = np.where(rng.random(n) < 0.3, prompt // 2, 0)
    price_in = np.array([TIERS[t][1] for t in TIER_NAMES])[tier_i]
    price_out = np.array([TIERS[t][2] for t in TIER_NAMES])[tier_i]
    cost = np.where(unknown, 0.0, prompt * price_in + completion * price_out)
    lat_med = np.array([TIERS[t][3] for t in TIER_NAMES])[tier_i]
    latency = (lat_med * rng.lognormal(0, 0.45, n)).astype(np.int64)
    latency = np.where(failed, rng.integers(200, 120_000, n), latency)
    ids = [h[i : i + 16] for h in (rng.bytes(8 * n).hex(),) for i in range(0, 16 * n, 16)]
    created = _as_text(_timestamps(rng, n))
    chars = (p_med * 3.2 * rng.lognormal(0, 0.4, n)).astype(np.int64)

    skill_l = [names[i] for i in skill_i.tolist()]
    tier_l = [TIER_NAMES[i] for i in tier_i.tolist()]
    purpose_l, status_l, esc_l, unknown_l = (
        purpose.tolist(),
        status.tolist(),
        escalated.tolist(),
        unknown.tolist(),
    )
    user_l = user_i.tolist()
    cost_l = cost.tolist()
    packs = {
        "ask": "company-handbook@3f2a9c1d",
        "summarize": "report-style@8e1b44a0",
        "label-email": "email-taxonomy@c0ffee12",
        "triage-alert": "security-runbooks@77d0e5b9",
        "write-report": "report-style@8e1b44a0",
        "hunt": "threat-hunting@1a2b3c4d",
    }
    user_ids = [f"U{u:08d}" for u in range(USERS)]
    channels = [f"C{u % 37:08d}" for u in range(USERS)]
    replies = {s: [f"{s} answer: " + "lorem ipsum " * (4 + k) for k in range(12)] for s in names}
    errors = {"ok": None, "error": "timeout: the model did not answer in time", "invalid": "invalid output"}
    is_user_l = is_user.tolist()
    # Column by column (list comprehensions), then zipped into rows: much faster than a row loop.
    columns = [
        ids,
        created,
        ["slack" if u else p for u, p in zip(is_user_l, purpose_l, strict=True)],
        purpose_l,
        [
            user_ids[x] if p == "user" else ("eval" if p == "eval" else None)
            for x, p in zip(user_l, purpose_l, strict=True)
        ],
        [channels[x] if u else None for x, u in zip(user_l, is_user_l, strict=True)],
        [None] * n,
        ["Ev" + i if u else None for i, u in zip(ids, is_user_l, strict=True)],
        skill_l,
        [
            f"matched {s}; tier {t} (configuration)" if p == "user" else f"{p} of {s}"
            for s, t, p in zip(skill_l, tier_l, purpose_l, strict=True)
        ],
        tier_l,
        [TIERS[t][0] for t in tier_l],
        [None if st == "error" else TIERS[t][0] for t, st in zip(tier_l, status_l, strict=True)],
        [packs[s] for s in skill_l],
        prompt.tolist(),
        completion.tolist(),
        cached.tolist(),
        [0] * n,
        cost_l,
        [not u for u in unknown_l],
        ["unknown" if u else "litellm-price-map" for u in unknown_l],
        latency.tolist(),
        status_l,
        [errors[st] for st in status_l],
        [ids[i - 1] if e else None for i, e in enumerate(esc_l)],
        [p in ("shadow", "judge") for p in purpose_l],
        chars.tolist(),
        [
            None if st == "error" else replies[s][i % 12]
            for i, (s, st) in enumerate(zip(skill_l, status_l, strict=True))
        ],
        [None] * n,
    ]
    assert len(columns) == len(REQUEST_COLUMNS)
    rows = list(zip(*columns, strict=True))
    info = {
        "ids": ids,
        "created": created,
        "skill": skill_l,
        "tier": tier_l,
        "purpose": purpose_l,
        "cost": cost_l,
    }
    info["user"] = user_l
    info["feedback_ok"] = is_user & (status == "ok") & ~escalated
    return rows, info


def generate_feedback(info: dict[str, Any], n_feedback: int, seed: int = 11) -> list[tuple]:
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(info["feedback_ok"])
    chosen = np.sort(rng.choice(candidates, size=min(n_feedback, candidates.size), replace=False))
    # 👍 rate by skill: most skills are liked, summarize less so
    up_rate = {"ask": 0.86, "summarize": 0.62, "label-email": 0.9, "triage-alert": 0.83}
    rows = []
    delays = rng.integers(5, 3 * 3600, size=chosen.size)
    rolls = rng.random(chosen.size)
    comment_rolls = rng.random(chosen.size)
    for k, i in enumerate(chosen.tolist()):
        skill = info["skill"][i]
        score = 1 if rolls[k] < up_rate.get(skill, 0.8) else -1
        options = COMMENTS[skill]
        comment = options[(i + k) % len(options)] if score < 0 and comment_rolls[k] < 0.08 else None
        at = datetime.strptime(info["created"][i], TS_FORMAT) + timedelta(seconds=int(delays[k]))
        at_text = at.strftime(TS_FORMAT)
        rows.append((info["ids"][i], f"U{info['user'][i]:08d}", score, comment, "slack", at_text, at_text))
    return rows


def generate_side_tables(info: dict[str, Any], seed: int = 13) -> tuple[list[tuple], list[tuple]]:
    """Shadow pairs for the shadow rows (each pairs with the user request before it) and eval runs."""
    rng = np.random.default_rng(seed)
    pairs = []
    last_user: dict[str, int] = {}
    for i, purpose in enumerate(info["purpose"]):
        skill = info["skill"][i]
        if purpose == "user":
            last_user[skill] = i
        elif purpose == "shadow" and skill in last_user:
            j = last_user[skill]
            verdict = str(rng.choice(["win", "tie", "loss", "error"], p=[0.15, 0.62, 0.2, 0.03]))
            pairs.append(
                (
                    info["created"][i],
                    skill,
                    info["ids"][j],
                    info["tier"][j],
                    info["ids"][i],
                    info["tier"][i],
                    verdict,
                    "judge" if skill in ("ask", "summarize", "write-report") else "comparator",
                    None,
                    info["cost"][i],
                    0.0,
                    None,
                )
            )
    runs = []
    for week in range(WEEKS):
        at = (START + timedelta(weeks=week, days=2)).strftime(TS_FORMAT)
        for skill in SKILLS:
            for tier in TIER_NAMES:
                cases = 40
                passed = int(cases * {"small": 0.8, "medium": 0.88, "large": 0.92}[tier])
                runs.append(
                    (
                        f"run{week}{skill}{tier}"[:32],
                        at,
                        skill,
                        tier,
                        TIERS[tier][0],
                        "large",
                        None,
                        cases,
                        passed,
                        0,
                        0,
                        cases * (TIERS[tier][1] * 2000 + TIERS[tier][2] * 300),
                        0.0,
                        TIERS[tier][3],
                    )
                )
    return pairs, runs


def fill(path: Path, n_requests: int, n_feedback: int) -> dict[str, float]:
    from bot.ledger.store import Ledger

    timings: dict[str, float] = {}
    t = time.perf_counter()
    ledger = Ledger(f"sqlite:///{path}")  # the real migrations create the schema and indexes
    ledger.engine.dispose()
    timings["migrate"] = time.perf_counter() - t

    t = time.perf_counter()
    rows, info = generate_requests(n_requests)
    feedback = generate_feedback(info, n_feedback)
    pairs, runs = generate_side_tables(info)
    timings["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")  # a throwaway file: no WAL copy of 700 MB while loading
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB page cache while loading
    # Load without the secondary indexes, then rebuild them from the DDL the migrations wrote
    # (one sort per index instead of a b-tree insert per row per index): same schema, faster.
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('requests', 'feedback', 'shadow_pairs')"
    ).fetchall()
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    insert = f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})"
    for start in range(0, len(rows), 50_000):
        conn.executemany(insert, rows[start : start + 50_000])
    conn.executemany(
        f"INSERT INTO feedback ({', '.join(FEEDBACK_COLUMNS)}) VALUES ({', '.join('?' * len(FEEDBACK_COLUMNS))})",
        feedback,
    )
    conn.executemany(
        "INSERT INTO shadow_pairs (created_at, skill, primary_request_id, primary_tier, candidate_request_id,"
        " candidate_tier, verdict, method, judge_request_id, candidate_cost_usd, judge_cost_usd, detail)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        pairs,
    )
    conn.executemany(
        "INSERT INTO eval_runs (id, created_at, skill, tier, model, judge_tier, pack_hash, cases, passed,"
        " critical_failures, errors, total_cost_usd, judge_cost_usd, p50_latency_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        runs,
    )
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")  # as the application runs it
    conn.close()
    timings["insert"] = time.perf_counter() - t
    timings["shadow_pairs"] = len(pairs)
    timings["feedback"] = len(feedback)
    return timings


# The baseline: every row into Python ----------------------------------------------------------


def baseline(engine: Any, period: str) -> dict[str, Any]:
    """What the digest computes, the naive way: load every request and feedback row, then loop."""
    from sqlalchemy import select

    from bot.core.periods import previous_week, week_bounds
    from bot.core.stats import percentile
    from bot.ledger.models import Feedback, RequestRow

    with engine.ledger.engine.connect() as conn:
        requests = [dict(r) for r in conn.execute(select(RequestRow.__table__)).mappings()]
        feedback = [dict(r) for r in conn.execute(select(Feedback.__table__)).mappings()]
    votes: dict[str, list[int]] = defaultdict(list)
    for f in feedback:
        votes[f["request_id"]].append(f["score"])

    def week(since: datetime, until: datetime) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "requests": 0,
                "users": set(),
                "cost": 0.0,
                "up": 0,
                "down": 0,
                "unknown": 0,
                "errors": 0,
            }
        )
        for r in requests:
            if r["purpose"] != "user" or not since <= r["created_at"] < until:
                continue
            s = out[r["skill"]]
            s["requests"] += r["escalated_from"] is None
            s["users"].add(r["user_id"])
            s["cost"] += r["cost_usd"]
            s["unknown"] += not r["cost_known"]
            s["errors"] += r["status"] in ("error", "invalid")
            for score in votes.get(r["id"], ()):
                s["up" if score > 0 else "down"] += 1
        return out

    start, end = week_bounds(period, engine.settings.timezone)
    this, last = week(start, end), week(*week_bounds(previous_week(period), engine.settings.timezone))
    users = {r["user_id"] for r in requests if r["purpose"] == "user" and start <= r["created_at"] < end}
    # The review's window per (skill, tier): an escalation counts against the tier it escalated
    # from; requests and percentiles are over first attempts, percentiles over the latest week only.
    from bot.ledger.queries import PERCENTILE_DAYS

    since = end - timedelta(days=engine.settings.review.window_days)
    recent = max(since, end - timedelta(days=PERCENTILE_DAYS))
    tier_of = {r["id"]: r["tier"] for r in requests}
    window: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"lat": [], "cost": [], "n": 0, "sum": 0.0}
    )
    for r in requests:
        if r["purpose"] != "user" or r["tier"] is None or not since <= r["created_at"] < end:
            continue
        first = r["escalated_from"] is None
        w = window[(r["skill"], r["tier"] if first else tier_of.get(r["escalated_from"]) or r["tier"])]
        w["sum"] += r["cost_usd"]
        if first:
            w["n"] += 1
            if r["created_at"] >= recent:
                w["lat"].append(r["latency_ms"])
                w["cost"].append(r["cost_usd"])
    review = {
        key: {
            "requests": w["n"],
            "cost_sum": w["sum"],
            "latency_p50_ms": percentile(w["lat"], 0.5),
            "latency_p95_ms": percentile(w["lat"], 0.95),
            "cost_p95": percentile(w["cost"], 0.95),
        }
        for key, w in window.items()
    }
    return {"this": this, "last": last, "users": len(users), "review": review, "rows": len(requests)}


def compare(digest: Any, base: dict[str, Any]) -> list[str]:
    """Differences between the digest's figures and the baseline's (none expected)."""
    problems = []
    for line in digest.skills:
        b = base["this"].get(line.skill)
        want = (b["requests"], len(b["users"]), b["up"], b["down"]) if b else None
        got = (line.requests, line.users, line.thumbs_up, line.thumbs_down)
        if want != got or not math.isclose(line.cost_usd, b["cost"], rel_tol=1e-9):
            problems.append(f"{line.skill} this week: digest {got} ${line.cost_usd} vs baseline {want}")
        prev = base["last"].get(line.skill)
        if line.prev_requests != (prev["requests"] if prev else 0):
            problems.append(
                f"{line.skill} last week: {line.prev_requests} vs baseline {prev and prev['requests']}"
            )
    if digest.totals.users != base["users"]:
        problems.append(f"users: digest {digest.totals.users} vs baseline {base['users']}")
    for rec in digest.recommendations:
        ev, b = rec.evidence, base["review"].get((rec.skill, rec.current_tier))
        if not ev.get("requests") or b is None:
            continue
        for key in ("requests", "latency_p50_ms", "latency_p95_ms", "cost_p95", "cost_sum"):
            if not math.isclose(ev[key], round(b[key], 6), abs_tol=2e-6):
                problems.append(
                    f"{rec.skill} on {rec.current_tier} {key}: review {ev[key]} vs baseline {b[key]}"
                )
    return problems


# Measuring ------------------------------------------------------------------------------------


class StatementLog:
    """Records every SQL statement (with parameters and time) the digest runs."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.entries: list[tuple[str, Any, float]] = []
        self._t0 = 0.0
        self._sa_engine = engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        self._t0 = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        self.entries.append((statement, params, time.perf_counter() - self._t0))

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self._sa_engine, "before_cursor_execute", self._before)
        event.remove(self._sa_engine, "after_cursor_execute", self._after)


def explain(path: Path, log: StatementLog) -> None:
    conn = sqlite3.connect(path)
    merged: dict[str, list[Any]] = {}
    for statement, params, seconds in log.entries:
        entry = merged.setdefault(statement, [params, 0.0, 0])
        entry[1] += seconds
        entry[2] += 1
    ranked = sorted(merged.items(), key=lambda kv: -kv[1][1])
    print(f"\nQuery plans of the {len(ranked)} distinct statements the digest runs (slowest first):")
    for statement, (params, seconds, count) in ranked:
        head = " ".join(statement.split())
        print(
            f"\n-- {seconds * 1000:8.1f} ms in {count} call(s): {head[:150]}{'…' if len(head) > 150 else ''}"
        )
        for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params):
            print(f"   {row[3]}")
    conn.close()


# The index change proposed for the ledger (see the report): a covering index for the user-traffic
# window queries (range on created_at after purpose = 'user'; id last for the feedback join), a
# covering (request_id, score) index for the feedback probes, and no single-column purpose index
# (4 distinct values: without statistics SQLite takes `purpose = ?` on it as selective and walks
# ~92 % of the table through it).
TRY_INDEXES = (
    "DROP INDEX IF EXISTS ix_requests_purpose",
    "CREATE INDEX IF NOT EXISTS ix_requests_user_window ON requests (purpose, created_at, skill, tier, "
    "escalated_from, status, cost_known, cost_usd, latency_ms, user_id, id)",
    "CREATE INDEX IF NOT EXISTS ix_feedback_request_score ON feedback (request_id, score)",
)


def try_indexes(engine: Any, path: Path, runs: int, before: float) -> None:
    from bot.economics.context import EconomicsContext
    from bot.economics.digest import build_digest

    engine.ledger.engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    t = time.perf_counter()
    for ddl in TRY_INDEXES:
        conn.execute(ddl)
    conn.close()
    print(f"\nwith the proposed indexes (built in {time.perf_counter() - t:.1f} s):")
    walls, cpus = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        build_digest(EconomicsContext.of(engine), PERIOD)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    log = StatementLog(engine.ledger.engine)
    build_digest(EconomicsContext.of(engine), PERIOD)
    log.close()
    slowest = sorted(log.entries, key=lambda e: -e[2])[:4]
    conn = sqlite3.connect(path)
    for statement, params, seconds in slowest:
        plan = "; ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params))
        print(f"  {seconds * 1000:7.1f} ms  {' '.join(statement.split())[:60]}…  {plan[:150]}")
    conn.close()
    median = statistics.median(walls)
    print(
        f"  digest wall median {median:.3f} s (was {before:.3f} s), CPU median {statistics.median(cpus):.3f} s; "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="request rows (default 1,000,000)")
    parser.add_argument("--feedback", type=int, default=None, help="feedback rows (default requests / 10)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the database at this path")
    parser.add_argument("--runs", type=int, default=3, help="timed digest runs (default 3)")
    parser.add_argument(
        "--try-indexes",
        action="store_true",
        help="afterwards, apply the proposed index change (TRY_INDEXES) to this database and time again",
    )
    args = parser.parse_args(argv)
    n_feedback = args.feedback if args.feedback is not None else args.requests // 10

    workdir = Path(tempfile.mkdtemp(prefix="tierwise-bench-digest-"))
    os.chdir(workdir)  # no tierwise.toml or .env from the repository applies
    os.environ["TIERWISE_DATA_DIR"] = str(workdir)
    os.environ.pop("TIERWISE_CONFIG", None)
    path = (args.keep or workdir / "ledger.db").resolve()
    if path.exists():
        path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)

    print(f"ledger: {path}")
    print(
        f"load average before filling: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)"
    )
    t = time.perf_counter()
    timings = fill(path, args.requests, n_feedback)
    fill_s = time.perf_counter() - t
    size_mb = path.stat().st_size / 1e6
    print(
        f"filled {args.requests:,} requests, {int(timings['feedback']):,} feedback rows, "
        f"{int(timings['shadow_pairs']):,} shadow pairs over {WEEKS} weeks in {fill_s:.1f} s "
        f"(migrations {timings['migrate']:.1f} s, generating {timings['generate']:.1f} s, "
        f"inserting + indexing {timings['insert']:.1f} s); file {size_mb:,.0f} MB"
    )

    from bot.config import load_settings
    from bot.economics.context import EconomicsContext
    from bot.economics.digest import build_digest, to_text
    from bot.models.llm import LLM

    # Each skill is configured on its main tier, so the review looks at the traffic it has.
    skills = {name: {"tier": spec[1]} for name, spec in SKILLS.items()}
    settings = load_settings(database_url=f"sqlite:///{path}", skills=skills)
    engine = build_engine(settings, llm=LLM(settings.tiers, mock_response="x"))

    # Closed days are rolled up once (the scheduler's nightly job does this as days close); time that
    # one-off catch-up for the whole 8 weeks separately, then the digest itself.
    from bot.ledger import rollups
    from bot.ledger.models import utcnow

    t = time.perf_counter()
    with engine.ledger.session() as s:
        days, _ = rollups.split(utcnow() - timedelta(days=WEEKS * 7 + 7), utcnow(), utcnow())
        rollups.ensure(s, days)
    print(
        f"daily rollups for {len(days)} closed days (one-off catch-up; nightly it is one day): "
        f"{time.perf_counter() - t:.2f} s"
    )

    load = os.getloadavg()[0]
    walls, cpus = [], []
    digest = None
    for _ in range(args.runs):
        t, c = time.perf_counter(), time.process_time()
        digest = build_digest(EconomicsContext.of(engine), PERIOD)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    assert digest is not None
    log = StatementLog(engine.ledger.engine)
    build_digest(EconomicsContext.of(engine), PERIOD)
    log.close()

    t, c = time.perf_counter(), time.process_time()
    base = baseline(engine, PERIOD)
    base_wall, base_cpu = time.perf_counter() - t, time.process_time() - c
    problems = compare(digest, base)

    print()
    print(to_text(digest))
    explain(path, log)

    median = statistics.median(walls)
    print()
    print(
        f"digest {PERIOD} = week figures + {settings.review.window_days}-day tier review, {args.runs} runs:"
    )
    print(
        f"  wall min {min(walls):.3f} s, median {median:.3f} s; CPU min {min(cpus):.3f} s, "
        f"median {statistics.median(cpus):.3f} s  (runs: {', '.join(f'{x:.3f}' for x in walls)})"
    )
    print(
        f"baseline, every request and feedback row loaded into Python ({base['rows']:,} + {n_feedback:,} rows), "
        f"same figures: wall {base_wall:.2f} s, CPU {base_cpu:.2f} s"
    )
    print(f"baseline / digest (wall, median): {base_wall / median:.1f}×")
    print(f"load average during the runs: {load:.2f} → {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
    if problems:
        print("FIGURES DIFFER from the baseline:")
        print("\n".join(f"  {p}" for p in problems))
    else:
        print(
            "figures: the digest and the baseline agree (week lines, users, review requests/cost/percentiles)"
        )
    verdict = "OK" if median < LIMIT_S else "TOO SLOW"
    print(f"{verdict}: digest median {median:.3f} s (limit {LIMIT_S:.0f} s)")

    if args.try_indexes:
        try_indexes(engine, path, args.runs, median)

    engine.ledger.engine.dispose()
    if args.keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
    if problems:
        return 2
    return 0 if median < LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
