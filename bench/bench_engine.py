"""Engine overhead per request vs a bare litellm call, measured side by side in one run.

Sends N requests (default 2,000) through the real engine (routing, context selection with bm25s,
prompt assembly, ledger writes to a SQLite file) with litellm's `mock_response`, and N bare
`litellm.completion(mock_response=...)` calls. Overhead = handle() time minus the time spent in
litellm.completion. Prints p50/p99 of each and a per-stage breakdown.

    .venv/bin/python bench/bench_engine.py [N]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bot.app import build_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(n: int = 2000) -> None:
    tmp = tempfile.mkdtemp(prefix="tierwise-bench-")
    os.chdir(tmp)
    os.environ["TIERWISE_DATA_DIR"] = tmp
    from bot.config import load_settings
    from bot.core.stats import percentile as pct
    from bot.core.types import Request
    from bot.models.llm import LLM, litellm_module

    settings = load_settings()
    reply = "Request VPN access in Okta, then install Zscaler. Sources: [it/vpn-access.md]"
    engine = build_engine(settings, llm=LLM(settings.tiers, mock_response=reply))
    questions = [
        json.loads(line)["input"] for line in (ROOT / "evals" / "ask.jsonl").read_text().splitlines() if line
    ]

    # Stage timers: wrap the three engine stages the issue names.
    stages: dict[str, list[float]] = defaultdict(list)

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[name].append(time.perf_counter() - t)

        return wrapper

    import bot.pipeline.engine as engine_mod

    engine.router.route = timed("routing", engine.router.route)
    engine_mod.select_tiered = timed("context selection", engine_mod.select_tiered)
    engine.ledger.record = timed("ledger write", engine.ledger.record)
    engine.ledger.claim_event = timed("dedupe (event id)", engine.ledger.claim_event)

    # Warm up: litellm import, bm25s index build, token counter caches, SQLite file.
    for q in questions[:20]:
        engine.handle(Request(text=q, event_id=f"warm-{q}"))
    stages.clear()

    # Before/after the in-flight note of each model call (issue 13), interleaved request by request so that
    # drift hits both: "before" skips the note, as the engine did before it existed.
    start_call = engine.ledger.start_call

    def no_note(row, worker):
        return None

    litellm = litellm_module()
    overhead, totals = [], []
    before: list[float] = []
    for i in range(2 * n):
        q = questions[i % len(questions)]
        old = i % 2 == 1
        engine.ledger.start_call = no_note if old else start_call
        t = time.perf_counter()
        r = engine.handle(Request(text=q, source="bench", user=f"U{i % 50}", event_id=f"E{i}"))
        total = time.perf_counter() - t
        assert r.status == "ok", r.text
        if old:
            before.append(total - r.latency_s)
            continue
        totals.append(total)
        overhead.append(total - r.latency_s)
    engine.ledger.start_call = start_call

    bare = []
    messages = [{"role": "user", "content": questions[0]}]
    for _ in range(n):
        t = time.perf_counter()
        litellm.completion(model=settings.tiers["small"].model, messages=messages, mock_response=reply)
        bare.append(time.perf_counter() - t)

    ms = 1000
    print(f"requests: {n} (SQLite ledger at {tmp})")
    print(
        f"bare litellm.completion(mock_response): p50 {pct(bare, 0.5) * ms:.2f} ms  p99 {pct(bare, 0.99) * ms:.2f} ms"
    )
    print(
        f"engine handle() end to end:            p50 {pct(totals, 0.5) * ms:.2f} ms  p99 {pct(totals, 0.99) * ms:.2f} ms"
    )
    print(
        f"engine overhead (handle − model call): p50 {pct(overhead, 0.5) * ms:.2f} ms  p99 {pct(overhead, 0.99) * ms:.2f} ms"
    )
    print(f"overhead / bare call (p50): {pct(overhead, 0.5) / pct(bare, 0.5):.2f}×")
    print(
        f"before (no in-flight note): overhead  p50 {pct(before, 0.5) * ms:.2f} ms  p99 {pct(before, 0.99) * ms:.2f} ms"
    )
    print(
        f"after  (in-flight note):   overhead  p50 {pct(overhead, 0.5) * ms:.2f} ms  p99 {pct(overhead, 0.99) * ms:.2f} ms"
        f"  (+{(pct(overhead, 0.5) - pct(before, 0.5)) * ms:.2f} ms p50; limit +1 ms)"
    )
    for name, values in stages.items():
        print(
            f"  {name:<20} p50 {pct(values, 0.5) * ms:.3f} ms  p99 {pct(values, 0.99) * ms:.3f} ms  (n={len(values)})"
        )
    from datetime import UTC, datetime

    rows = engine.ledger.usage(datetime(2000, 1, 1, tzinfo=UTC))
    print(
        f"ledger rows for the run: {sum(r.requests for r in rows) - 20} (+20 warm-up; half of them 'before'), mean {statistics.mean(totals) * ms:.2f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
