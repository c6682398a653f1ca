"""Metrics during load, and what the privacy and observability hooks cost per request.

Part 1 runs the real HTTP server and bolt app (as `tierwise serve` builds them: metrics attached to
the ledger, the Slack worker pool tracked) against the fake Slack on 127.0.0.1, sends mentions whose
model calls take a while, scrapes GET /metrics while they run and after, and prints every Tierwise
metric family with its samples, parsed by the Prometheus text parser.

Part 2 times (CPU time of the calling thread) `Engine.handle` on an instant scripted model, side by side in one run: every hook off
(the defaults: no metrics listener, no redaction, no tracing) and every hook on (metrics attached,
all four redaction detectors on storage and on an external tier's prompt, tracing into the SDK's
in-memory exporter).

    .venv/bin/python bench/bench_observability.py [--events 12] [--model-seconds 1] [--requests 300]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import BOT_TOKEN, SIGNING_SECRET, SlackServer, mention_body, post_signed, serve_bot

QUESTION = "My card is 4111 1111 1111 1111 and my mail jane@customer.example: why was I charged twice?"


def scrape(url: str) -> dict[str, list[Any]]:
    from prometheus_client.parser import text_string_to_metric_families

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        body = response.read().decode("utf-8")
    return {
        f.name: [s for s in f.samples if not s.name.endswith("_created")]
        for f in text_string_to_metric_families(body)
        if f.name.startswith("tierwise_")
    }


def part_one(events: int, model_seconds: float) -> int:
    from bot.adapters.slack.app import build_app
    from bot.app import build_engine
    from bot.config import load_settings
    from bot.models.llm import LLM
    from bot.observability.metrics import TrackedExecutor, attach

    def slow_model(tier: str, messages: list[dict[str, Any]]) -> str:
        time.sleep(model_seconds)
        return "Use the **IT portal**: request VPN access, approval takes a day."

    with tempfile.TemporaryDirectory() as data, SlackServer() as slack:
        settings = load_settings(
            data_dir=data,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.api_url,
        )
        engine = build_engine(settings, llm=LLM(settings.tiers, mock_response=slow_model))
        metrics = attach(engine.ledger)
        executor = TrackedExecutor(
            max_workers=4, thread_name_prefix="bench-lazy"
        )  # fewer than events: a queue
        metrics.register_queue("slack", executor.depth, executor.oldest_age)
        with serve_bot(build_app(engine, executor=executor), metrics) as base:
            bodies = []
            for i in range(events):
                ts = slack.add_message("C001", "<@UBOT> how do I get VPN access?", "UBENCH")
                bodies.append(mention_body(f"EvOBS{i:04d}", "C001", ts, "how do I get VPN access?"))
            with ThreadPoolExecutor(max_workers=events) as senders:
                list(
                    senders.map(
                        lambda b: post_signed(f"{base}/slack/events", b, SIGNING_SECRET, timeout=10), bodies
                    )
                )
            time.sleep(model_seconds / 2)
            during = scrape(f"{base}/metrics")
            # The operator's view: the metric families' TYPE lines, as curl sees them.
            if shutil.which("curl"):
                out = subprocess.run(
                    ["curl", "-s", "--noproxy", "*", f"{base}/metrics"], capture_output=True, text=True
                )
                types = [line for line in out.stdout.splitlines() if line.startswith("# TYPE tierwise_")]
                print(f"  curl {base}/metrics during the run: {len(types)} families")
                for line in types:
                    print(f"    {line}")
            deadline = time.monotonic() + 60 + events * model_seconds
            while time.monotonic() < deadline:
                done = sum(s.value for s in scrape(f"{base}/metrics").get("tierwise_requests", []))
                if done >= events:
                    break
                time.sleep(0.2)
            after = scrape(f"{base}/metrics")
        executor.shutdown(wait=True)

    queue = {
        s.name: s.value
        for s in during["tierwise_work_queue_depth"] + during["tierwise_work_queue_oldest_age_seconds"]
    }
    print(f"Part 1: {events} mentions, model {model_seconds:.1f} s per call, 4 Slack workers")
    print(
        f"  during the run: work queue depth {queue['tierwise_work_queue_depth']:.0f}, "
        f"oldest waiting {queue['tierwise_work_queue_oldest_age_seconds']:.2f} s"
    )
    print("  GET /metrics after the run (Tierwise families, non-zero samples):")
    for name, samples in sorted(after.items()):
        shown = [s for s in samples if s.value and not s.name.endswith("_bucket")]
        print(f"    {name}: {len(samples)} sample(s)")
        for s in shown[:6]:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "le")
            print(f"      {s.name}{{{labels}}} {s.value:g}")
    answered = sum(s.value for s in after.get("tierwise_requests", []))
    print(f"  requests counted: {answered:.0f} of {events}")
    return 0 if answered == events else 1


def part_two(requests: int) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from bot.app import build_engine
    from bot.config import load_settings
    from bot.core.types import Request
    from bot.models.llm import LLM
    from bot.observability import tracing
    from bot.observability.metrics import attach

    tiers = {
        name: {"model": f"openai/{name}-model", "api_base": "http://127.0.0.1:9/v1", "max_retries": 0}
        for name in ("small", "medium", "large")
    }
    redact = {
        "privacy": {"redact": ["email", "phone", "card", "secret"]},
        "skills": {"ask": {"redact_external": True}},
    }
    # label: (settings overrides, metrics attached, tracing on)
    variants: dict[str, tuple[dict[str, Any], bool, bool]] = {
        "every hook off (defaults)": ({}, False, False),
        "metrics attached": ({}, True, False),
        "redaction (4 detectors)": (redact, False, False),
        "tracing (in-memory)": ({}, False, True),
        "every hook on": (redact, True, True),
    }
    timings: dict[str, list[float]] = defaultdict(list)
    engines = {}
    with tempfile.TemporaryDirectory() as data:
        for i, (label, (overrides, metered, traced)) in enumerate(variants.items()):
            settings = load_settings(data_dir=Path(data) / str(i), tiers=tiers, **overrides)
            engine = build_engine(settings, llm=LLM(settings.tiers, mock_response=f"Noted: {QUESTION}"))
            engine.after_reply.clear()
            if metered:
                attach(engine.ledger)
            engines[label] = (engine, traced)
            engine.handle(Request(text="warm up", skill="ask"))
        # Interleaved rounds, so drift on a shared machine hits every variant alike.
        for _ in range(requests):
            for label, (engine, traced) in engines.items():
                if traced:
                    tracing.configure(load_settings(), exporter=InMemorySpanExporter())
                else:
                    tracing.shutdown()
                # CPU time of this thread: the machine is shared, and wall time mostly measures the neighbours.
                started = time.thread_time()
                engine.handle(Request(text=QUESTION, skill="ask", user="U1"))
                timings[label].append((time.thread_time() - started) * 1000)
        tracing.shutdown()
    print(f"Part 2: Engine.handle on an instant model, {requests} requests each, interleaved")
    print(f"  {'variant':<28} {'median CPU ms':>14} {'p90':>8}")
    for label, values in timings.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        print(f"  {label:<28} {statistics.median(values):>14.2f} {p90:>8.2f}")
    off = statistics.median(timings["every hook off (defaults)"])
    for label, values in timings.items():
        if label != "every hook off (defaults)":
            print(
                f"  {label}: {statistics.median(values) - off:+.2f} CPU ms per request against every hook off"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=12)
    parser.add_argument("--model-seconds", type=float, default=1.0)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from bot.models.llm import litellm_module

    litellm_module()  # a one-time import of seconds; not what this measures
    status = part_one(args.events, args.model_seconds)
    part_two(args.requests)
    sys.exit(status)


if __name__ == "__main__":
    main()
