"""Ack latency and exactly-once answers under load, over the real HTTP server and bolt app.

20 mentions arrive at once (signed POSTs to /slack/events on 127.0.0.1); each model call takes 2 s.
While those run, Slack's redelivery of every event (X-Slack-Retry-Num: 1) arrives too. Every
delivery must be acknowledged in under 1 s, and every event answered exactly once with one ledger
row. Every event is persisted as durable work before its ack (bot.ledger.work). Runs on SQLite, then
on Postgres when a URL is given (--postgres, or TIERWISE_TEST_DATABASE_URL). Prints the figures;
exits 1 if any misses.

    .venv/bin/python bench/bench_slack_ack.py [--events 20] [--model-seconds 2] [--no-retries]
                                              [--postgres postgresql://…]
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    BOT_TOKEN,
    SIGNING_SECRET,
    SlackServer,
    epoch,
    mention_body,
    percentile,
    post_signed,
    serve_bot,
)
from bot.app import build_engine

ACK_LIMIT_MS = 1000.0


def count_answers(slack: SlackServer) -> Counter[str]:
    """Answers per thread: chat.postMessage, chat.update or chat.stopStream calls that carry 👍/👎."""
    thread_of: dict[str, str] = {}
    answers: Counter[str] = Counter()
    methods = ("chat.postMessage", "chat.update", "chat.startStream", "chat.stopStream")
    for call in slack.calls:
        if not call.ok or call.method not in methods:
            continue
        blocks = call.json_field("blocks") or []
        is_answer = any(b.get("type") in ("actions", "context_actions") for b in blocks)
        if call.method in ("chat.postMessage", "chat.startStream"):
            thread = str(call.params.get("thread_ts") or call.response["ts"])
            thread_of[call.response["ts"]] = thread
        else:
            thread = thread_of.get(str(call.params.get("ts")), str(call.params.get("ts")))
        if is_answer:
            answers[thread] += 1
    return answers


def run(events: int, model_seconds: float, retries: bool, database_url: str | None = None) -> int:
    from bot.adapters.slack.app import build_app
    from bot.config import load_settings
    from bot.models.llm import LLM, litellm_module

    logging.basicConfig(level=logging.WARNING)
    litellm_module()  # a one-time import of seconds; not what this measures

    def slow_model(tier: str, messages: list[dict[str, Any]]) -> str:
        time.sleep(model_seconds)
        return "Use the **IT portal**: request VPN access, approval takes a day."

    with tempfile.TemporaryDirectory() as data, SlackServer() as slack:
        settings = load_settings(
            data_dir=data,
            database_url=database_url,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.api_url,
        )
        engine = build_engine(settings, llm=LLM(settings.tiers, mock_response=slow_model))
        executor = ThreadPoolExecutor(max_workers=48, thread_name_prefix="bench-lazy")
        app = build_app(engine, executor=executor)
        with serve_bot(app) as base:
            url = f"{base}/slack/events"

            bodies = []
            run_id = secrets.token_hex(3)  # a database kept between runs must not see redeliveries
            print(f"--- {engine.ledger.engine.dialect.name} ledger ---")
            for i in range(events):
                channel = f"C{i % 4:03d}"
                ts = slack.add_message(channel, "<@UBOT> how do I get VPN access?", "UBENCH")
                bodies.append(
                    mention_body(f"EvBENCH{run_id}{i:04d}", channel, ts, "how do I get VPN access?")
                )

            acks: list[tuple[int, float]] = []
            lock = threading.Lock()

            def deliver(body: dict[str, Any], retry: int | None) -> None:
                result = post_signed(url, body, SIGNING_SECRET, retry_num=retry, timeout=10)
                with lock:
                    acks.append((result.status, result.elapsed * 1000))

            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=2 * events) as senders:
                futures = [senders.submit(deliver, b, None) for b in bodies]
                if retries:
                    time.sleep(0.5)  # Slack redelivers while the first attempts are still being answered
                    futures += [senders.submit(deliver, b, 1) for b in bodies]
                for future in futures:
                    future.result()

            threads = {b["event"]["ts"] for b in bodies}
            deadline = time.monotonic() + 30 + model_seconds
            while time.monotonic() < deadline and set(count_answers(slack)) < threads:
                time.sleep(0.05)
            answered_at = time.monotonic() - started
            time.sleep(1.0)  # room for a duplicate to show up
        executor.shutdown(wait=True)

        answers = count_answers(slack)
        rows = engine.ledger.requests_since(epoch(), limit=10_000)
        event_ids = {b["event_id"] for b in bodies}
        bench_rows = [r for r in rows if r.event_id in event_ids]
        latencies = [ms for _, ms in acks]
        statuses = Counter(status for status, _ in acks)

        p50, p99, worst = percentile(latencies, 0.5), percentile(latencies, 0.99), max(latencies)
        once = sum(1 for t in threads if answers.get(t) == 1)
        print(
            f"deliveries: {len(acks)} ({events} events{' + ' + str(events) + ' redeliveries' if retries else ''})"
        )
        print(f"HTTP statuses: {dict(statuses)}")
        print(f"ack latency ms: p50 {p50:.1f}  p99 {p99:.1f}  max {worst:.1f}  (limit {ACK_LIMIT_MS:.0f})")
        print(f"model: {model_seconds:.1f} s per call; all answered after {answered_at:.1f} s")
        print(
            f"answers: {sum(answers[t] for t in threads)} for {events} events ({once} answered exactly once)"
        )
        print(f"ledger rows: {len(bench_rows)} (status ok: {sum(1 for r in bench_rows if r.status == 'ok')})")

        failures = []
        if statuses != Counter({200: len(acks)}):
            failures.append("not every delivery got HTTP 200")
        if worst >= ACK_LIMIT_MS:
            failures.append(f"an ack took {worst:.0f} ms")
        if once != events or sum(answers[t] for t in threads) != events:
            failures.append("not every event was answered exactly once")
        if len(bench_rows) != events or any(r.status != "ok" for r in bench_rows):
            failures.append("ledger rows do not match one ok row per event")
        for failure in failures:
            print(f"FAIL: {failure}")
        print("PASS" if not failures else "FAILED")
        return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--model-seconds", type=float, default=2.0)
    parser.add_argument("--no-retries", action="store_true", help="send each event once only")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TIERWISE_TEST_DATABASE_URL"),
        help="also run on this Postgres database (default: $TIERWISE_TEST_DATABASE_URL)",
    )
    args = parser.parse_args()
    failed = run(args.events, args.model_seconds, not args.no_retries)
    if args.postgres:
        failed |= run(args.events, args.model_seconds, not args.no_retries, args.postgres)
    sys.exit(failed)


if __name__ == "__main__":
    main()
