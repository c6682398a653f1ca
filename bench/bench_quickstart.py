"""The README's quick start on the embedded model: old context selection vs the tier-aware one, in one run.

The quick-start question ("How do I get VPN access?") and ten other `ask` golden questions (every
fourth case, not hand-picked) are answered twice by SmolLM2-135M in-process:

- old: the whole skill budget of context (always-included document first, then BM25 chunks, as
  before issue 14) and the old generation settings (repeat penalty 1.15, no stops, no loop cut);
- new: the engine's tier-aware prompt for the embedded tier and today's generation (bot.models.embedded).

Per question and in total it prints time to first token, total time, prompt tokens, key-fact recall
and right-source rate (deterministic, from evals/ask.jsonl). Targets: the quick-start answer in under
8 s after load, under 600 prompt tokens, key-fact recall at least doubled. The machine's load is
printed too: on a shared box the seconds are noisy; tokens, recall and sources are not.

    .venv/bin/python bench/bench_quickstart.py [--limit N] [--max-tokens N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUICK_START = "ask-001"


@dataclass
class Run:
    case: str
    ttft_s: float
    total_s: float
    prompt_tokens: int
    recall: float
    source_ok: bool
    text: str


def generate(
    messages: list[dict[str, str]], max_tokens: int, old: bool
) -> tuple[dict[str, Any], float, float]:
    """One answer; (response, seconds to first token, total seconds)."""
    import llama_cpp

    from bot.models import embedded

    first: list[float] = []
    started = time.perf_counter()
    if old:  # what the embedded model ran before issue 14: a mild penalty, nothing else
        model = embedded.get_model()

        def mark(input_ids: Any, scores: Any) -> Any:
            if not first:
                first.append(time.perf_counter())
            return scores

        with embedded.QUEUE.turn():
            out = model.create_chat_completion(
                messages=messages,
                max_tokens=max_tokens,
                temperature=0.2,
                repeat_penalty=1.15,
                seed=1234,
                logits_processor=llama_cpp.LogitsProcessorList([mark]),
            )
    else:
        out = embedded.chat(
            messages, max_tokens, 0.2, on_first_token=lambda: first.append(time.perf_counter())
        )
    done = time.perf_counter()
    return out, (first[0] if first else done) - started, done - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=11, help="questions (the quick start first)")
    parser.add_argument("--max-tokens", type=int, default=0, help="cap on answer tokens (0: the skill's)")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="tierwise-bench-")
    os.chdir(tmp)
    os.environ["TIERWISE_DATA_DIR"] = tmp
    from bot.app import build_engine
    from bot.config import load_settings
    from bot.context import grounding
    from bot.context.packs import select_context
    from bot.core.prompt import CONTEXT_HEADER, build_parts, citation_rule
    from bot.evals.facts import key_fact_recall, right_source
    from bot.evals.runner import evals_dir, load_cases
    from bot.models.embedded import get_model
    from bot.pipeline.engine import COMPACT_ANSWER_TOKENS, PROMPT_MARGIN

    engine = build_engine(load_settings(), with_economics=False)
    skill = engine.registry.skills["ask"]
    tier = engine.tiers[0]
    count = engine.llm.counter(tier)
    packs = [engine.packs[p] for p in skill.packs]
    always = {d for p in packs for d in p.always_include}
    cases, _ = load_cases(evals_dir() / "ask.jsonl")
    quick = next(c for c in cases if c.id == QUICK_START)
    others = [c for c in cases if c.id != QUICK_START and c.sources][::4]
    chosen = [quick, *others][: args.limit]
    max_tokens = args.max_tokens or skill.max_output_tokens

    started = time.perf_counter()
    get_model()
    load_s = time.perf_counter() - started
    print(f"model loaded in {load_s:.1f}s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"{len(chosen)} questions; answers up to {max_tokens} tokens (old), as the engine caps them (new)\n"
    )

    def old_prompt(question: str) -> tuple[list[dict[str, str]], list[str]]:
        # The engine before issue 14: the skill's whole budget, always-included documents first.
        window = engine.settings.tiers[tier].context_window or 8192
        fixed = (
            count(skill.instructions)
            + count(CONTEXT_HEADER)
            + count(citation_rule())
            + 4 * 2
            + 3
            + count(question)
            + skill.max_output_tokens
            + PROMPT_MARGIN
        )
        budget = max(0, min(skill.context_budget, window - fixed))
        sel = select_context(packs, question, budget, count, engine.settings.cache_dir)
        return build_parts(skill, question, sel.text).messages(), [s for s in sel.sources if s not in always]

    def new_prompt(question: str) -> tuple[list[dict[str, str]] | None, list[str], str, int]:
        parts, sel, _ = engine._prompt(skill, tier, question, [], [])
        assert sel is not None
        if not grounding.covered(sel):
            return None, [], grounding.not_covered_text(skill.packs, sel.closest), 0
        # The engine's own answer cap for the tiny-model layout.
        tokens = min(max_tokens, COMPACT_ANSWER_TOKENS) if parts.context_in_user else max_tokens
        return parts.messages(), [c.doc for c in sel.citations if c.doc not in always], "", tokens

    runs: dict[str, list[Run]] = {"old": [], "new": []}
    for case in chosen:
        for mode in ("old", "new"):
            if mode == "old":
                messages, cited = old_prompt(case.input)
                canned, tokens = "", max_tokens
            else:
                messages, cited, canned, tokens = new_prompt(case.input)
            if messages is None:
                run = Run(case.id, 0.0, 0.0, 0, 0.0, False, canned)
            else:
                out, ttft, total = generate(messages, tokens, old=mode == "old")
                text = out["choices"][0]["message"]["content"] or ""
                run = Run(case.id, ttft, total, int(out["usage"]["prompt_tokens"]), 0.0, False, text)
            run.recall = key_fact_recall(run.text, case.key_facts) or 0.0
            run.source_ok = right_source(cited, case.sources or ())
            runs[mode].append(run)
            print(
                f"{case.id} {mode}: ttft {run.ttft_s:5.1f}s  total {run.total_s:6.1f}s  "
                f"prompt {run.prompt_tokens:5d}  key facts {run.recall:4.0%}  "
                f"source {'right' if run.source_ok else 'wrong'}",
                flush=True,
            )
            if case.id == QUICK_START:
                print("    " + run.text.replace("\n", "\n    ")[:700], flush=True)

    def summary(mode: str, rows: list[Run]) -> list[str]:
        return [
            mode,
            f"{statistics.median(r.ttft_s for r in rows):.1f}s",
            f"{statistics.median(r.total_s for r in rows):.1f}s",
            f"{statistics.mean(r.prompt_tokens for r in rows):.0f}",
            f"{statistics.mean(r.recall for r in rows):.0%}",
            f"{sum(r.source_ok for r in rows) / len(rows):.0%}",
        ]

    head = ["", "median TTFT", "median total", "mean prompt tokens", "key-fact recall", "right source"]
    table = [head, summary("old", runs["old"]), summary("new", runs["new"])]
    quick_rows = [
        [
            "quick start " + m,
            f"{r.ttft_s:.1f}s",
            f"{r.total_s:.1f}s",
            str(r.prompt_tokens),
            f"{r.recall:.0%}",
            "right" if r.source_ok else "wrong",
        ]
        for m in ("old", "new")
        for r in runs[m][:1]
    ]
    widths = [max(len(row[i]) for row in table + quick_rows) for i in range(len(head))]
    print(f"\nold vs new on {len(chosen)} questions (load average now {os.getloadavg()[0]:.1f}):")
    for row in [*table, *quick_rows]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    old_recall = statistics.mean(r.recall for r in runs["old"])
    new_recall = statistics.mean(r.recall for r in runs["new"])
    quick_new = runs["new"][0]
    print(
        f"\ntargets: quick start < 8s after load: {quick_new.total_s:.1f}s; "
        f"prompt < 600 tokens: {quick_new.prompt_tokens}; "
        f"recall doubled: {old_recall:.0%} → {new_recall:.0%}"
    )


if __name__ == "__main__":
    main()
