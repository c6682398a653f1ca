"""Schema-valid answers on the embedded model: prompt-only (before) vs the JSON-schema grammar (after).

Runs a structured skill's golden set on one tier twice through the real pipeline (`run_eval`, no
escalation), once with the tier's `structured_output = "prompt"` (the schema only described in the
prompt, as before) and once as configured (`auto`: the embedded model decodes under a grammar built
from the output model's JSON schema), and prints both side by side.

    python bench/bench_structured.py --skill label-email --tier small [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import build_engine
from bot.config import load_settings
from bot.evals.runner import evals_dir, load_cases, run_eval


def run(skill: str, tier: str, mode: str, limit: int | None) -> dict[str, float]:
    settings = load_settings()
    settings.tiers[tier] = settings.tiers[tier].model_copy(update={"structured_output": mode})
    engine = build_engine(settings, with_economics=False)
    cases, _ = load_cases(evals_dir() / f"{skill}.jsonl")
    cases = cases[:limit] if limit else cases
    started = time.perf_counter()
    [summary] = run_eval(engine, skill, [tier], cases)
    seconds = time.perf_counter() - started
    outcomes = summary.outcomes
    invalid = sum(1 for o in outcomes if o.detail.startswith("invalid:"))
    errors = sum(1 for o in outcomes if o.error)
    return {
        "cases": len(outcomes),
        "schema_valid": len(outcomes) - invalid - errors,
        "errors": errors,
        "passed": summary.passed,
        "seconds_per_case": seconds / max(1, len(outcomes)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skill", default="label-email")
    parser.add_argument("--tier", default="small")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    before = run(args.skill, args.tier, "prompt", args.limit)
    after = run(args.skill, args.tier, "auto", args.limit)
    print(f"{args.skill} on tier {args.tier} ({before['cases']:.0f} golden cases, no escalation)")
    print(f"{'':28}{'prompt only (before)':>22}{'grammar (after)':>18}")
    for key, label in (
        ("schema_valid", "schema-valid answers"),
        ("passed", "golden cases passed"),
        ("errors", "model errors"),
    ):
        cells = [f"{r[key]:.0f}/{r['cases']:.0f} ({r[key] / r['cases']:.0%})" for r in (before, after)]
        print(f"{label:28}{cells[0]:>22}{cells[1]:>18}")
    print(f"{'seconds per case':28}{before['seconds_per_case']:>22.1f}{after['seconds_per_case']:>18.1f}")


if __name__ == "__main__":
    main()
