"""Time to first visible text: native streaming vs the placeholder-then-update path, in one run.

A model that emits tokens at a fixed rate (the OpenAI-compatible fake, streaming) answers 20 concurrent
mentions through the real bot (HTTP transport, bolt, engine, litellm) into the fake Slack. Both fakes
run in processes of their own (bench/_harness.py), as a model server and Slack would: the figures are
the bot's, not the fakes' CPU under the bot's GIL.
The same load runs three times: with `slack_streaming` on (chat.startStream/appendStream/stopStream);
on, as the bot streamed before its per-chunk and database work was cut (every chunk rebuilt by litellm's
stream wrapper, SQLite writers waiting in SQLite's sleeping busy handler instead of on the ledger's write
gate); and off (a "Working on it…" placeholder, then chat.update). Per answer it measures, from the
moment the event was sent:

* the model's first token (the fake server's first streamed chunk) and its last one;
* the first answer text visible in Slack (startStream with text; or the chat.update / post of the answer);
* the end of the answer in Slack (chat.stopStream, or the update);
* chat.appendStream calls per answer and the shortest gap between two of them.

Targets (streaming): first visible text within 300 ms of the model's first token (p95); total time
within 5% of the model's own; appends per answer within Tier 4 (100 a minute). Exits 1 if one misses.

    .venv/bin/python bench/bench_slack_stream.py [--mentions 20] [--tokens 150] [--token-ms 20]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._harness import (
    BOT_TOKEN,
    SIGNING_SECRET,
    ModelServer,
    SlackServer,
    epoch,
    mention_body,
    percentile,
    post_signed,
    serve_bot,
)

FIRST_TEXT_LIMIT_MS = 300.0
TOTAL_OVERHEAD_LIMIT = 0.05
APPENDS_PER_MINUTE = 100  # chat.appendStream is Tier 4 (limits.json rate_limits)


@dataclass
class Answer:
    model_first_ms: float
    model_last_ms: float
    visible_ms: float
    done_ms: float
    appends: int
    min_gap_s: float | None

    @property
    def lag_ms(self) -> float:
        return self.visible_ms - self.model_first_ms

    @property
    def overhead(self) -> float:
        return self.done_ms / self.model_last_ms - 1


ROUNDS = {
    "stream": "native stream",
    "before": "native stream, before: litellm's chunk wrapper, SQLite's busy handler",
    "update": "placeholder, then chat.update (old)",
}


@contextlib.contextmanager
def as_before(name: str) -> Iterator[None]:
    """The "before" round: chunks through litellm's wrapper, no write gate (the code paths of stop 16)."""
    if name != "before":
        yield
        return
    import bot.ledger.db as db
    import bot.models.stream as stream

    saved = stream._openai_stream, db.gate_for
    stream._openai_stream, db.gate_for = (lambda _stream: None), (lambda _database: None)
    try:
        yield
    finally:
        stream._openai_stream, db.gate_for = saved


def run_once(streaming: bool, mentions: int, model: ModelServer) -> list[Answer]:
    from bot.adapters.slack.app import build_app
    from bot.adapters.slack.blocks import PROGRESS_TEXT
    from bot.adapters.slack.server import settle_heap
    from bot.app import build_engine
    from bot.config import load_settings
    from bot.models.llm import LLM

    tier = {"model": "openai/bench-model", "api_base": model.url, "data_boundary": "local", "max_retries": 0}
    with tempfile.TemporaryDirectory() as data, SlackServer() as slack:
        settings = load_settings(
            data_dir=data,
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.api_url,
            slack_streaming=streaming,
            tiers={name: tier for name in ("small", "medium", "large")},
        )
        engine = build_engine(settings, llm=LLM(settings.tiers), with_economics=False)
        executor = ThreadPoolExecutor(max_workers=48, thread_name_prefix="bench-lazy")
        app = build_app(engine, executor=executor)
        settle_heap()  # as `tierwise serve` does once its app is built (its warm-up thread)
        with serve_bot(app) as base:
            url = f"{base}/slack/events"
            bodies, sent = [], {}
            for i in range(mentions):
                channel = f"C{i % 4:03d}"
                question = f"how do I get VPN access? (question {i})"
                ts = slack.add_message(channel, f"<@UBOT> {question}", "UBENCH")
                bodies.append(mention_body(f"EvSTREAM{int(streaming)}{i:04d}", channel, ts, question))
            model.refresh()
            first_request = len(model.requests)

            def deliver(body: dict[str, Any]) -> None:
                sent[body["event"]["ts"]] = time.monotonic()
                post_signed(url, body, SIGNING_SECRET, timeout=10)

            with ThreadPoolExecutor(max_workers=mentions) as senders:
                list(senders.map(deliver, bodies))
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and len(engine.ledger.requests_since(epoch())) < mentions:
                time.sleep(0.05)
            executor.shutdown(wait=True)
        calls = slack.calls

        model.refresh()
        # The model request that served each question (the question text is in its prompt).
        request_of: dict[str, int] = {}
        for number, body in enumerate(model.requests[first_request:], start=first_request + 1):
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
            for b in bodies:
                if b["event"]["text"].split("> ", 1)[1] in prompt:
                    request_of[b["event"]["ts"]] = number
        thread_of: dict[str, str] = {}
        visible: dict[str, float] = {}
        done: dict[str, float] = {}
        appends: dict[str, list[float]] = {}
        for call in calls:
            if not call.ok:
                continue
            if call.method in ("chat.startStream", "chat.postMessage"):
                thread = str(call.params.get("thread_ts") or call.response["ts"])
                thread_of[call.response["ts"]] = thread
                is_placeholder = call.params.get("text") == PROGRESS_TEXT
                if call.method == "chat.startStream" or not is_placeholder:
                    visible.setdefault(thread, call.at)
                if call.method == "chat.postMessage" and not is_placeholder:
                    done[thread] = call.at
            elif call.method == "chat.appendStream":
                appends.setdefault(thread_of[str(call.params["ts"])], []).append(call.at)
            elif call.method in ("chat.update", "chat.stopStream"):
                thread = thread_of[str(call.params["ts"])]
                visible.setdefault(thread, call.at)
                done[thread] = call.at
        answers = []
        for b in bodies:
            ts = b["event"]["ts"]
            number = request_of[ts]
            gaps = [y - x for x, y in zip(appends.get(ts, []), appends.get(ts, [])[1:], strict=False)]
            answers.append(
                Answer(
                    model_first_ms=(model.first_chunk_at[number] - sent[ts]) * 1000,
                    model_last_ms=(model.last_chunk_at[number] - sent[ts]) * 1000,
                    visible_ms=(visible[ts] - sent[ts]) * 1000,
                    done_ms=(done[ts] - sent[ts]) * 1000,
                    appends=len(appends.get(ts, [])),
                    min_gap_s=min(gaps) if gaps else None,
                )
            )
        return answers


def row(label: str, values: list[float], unit: str = "ms") -> str:
    return (
        f"{label:<44} p50 {percentile(values, 0.5):8.0f} {unit}   p95 {percentile(values, 0.95):8.0f} {unit}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mentions", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=150, help="tokens (4 characters each) per answer")
    parser.add_argument("--token-ms", type=float, default=20.0, help="milliseconds between tokens")
    args = parser.parse_args()

    from bot.adapters.slack.server import warm_up

    logging.basicConfig(level=logging.WARNING)
    warm_up()  # as `tierwise serve` does at start: litellm's import (seconds; not measured), the heap settled
    text = " ".join(f"w{i:03d}" for i in range(args.tokens))  # distinct words: litellm rejects loops
    model = ModelServer(text, args.token_ms / 1000, 5)
    try:
        for name in ROUNDS:  # warm-up: first-use costs (imports, pack indexes) are not measured
            with as_before(name):
                run_once(name != "update", 2, model)
        results, cpu = {}, {}
        for name in ROUNDS:
            before = time.process_time()
            with as_before(name):
                results[name] = run_once(name != "update", args.mentions, model)
            cpu[name] = time.process_time() - before
    finally:
        model.close()

    seconds = args.tokens * args.token_ms / 1000
    print(
        f"{args.mentions} concurrent mentions; the model streams {args.tokens} tokens, one every "
        f"{args.token_ms:.0f} ms (~{seconds:.1f} s per answer)\n"
    )
    for name, title in ROUNDS.items():
        answers = results[name]
        print(f"[{title}]  (bot process CPU for the round: {cpu[name]:.1f} s)")
        print(row("model first token (from the event)", [a.model_first_ms for a in answers]))
        print(row("first answer text visible in Slack", [a.visible_ms for a in answers]))
        print(row("  visible minus model first token", [a.lag_ms for a in answers]))
        print(row("model last token", [a.model_last_ms for a in answers]))
        print(row("answer complete in Slack", [a.done_ms for a in answers]))
        print(row("  total over the model's own (%)", [100 * a.overhead for a in answers], "%"))
        if name != "update":
            counts = [float(a.appends) for a in answers]
            gaps = [a.min_gap_s for a in answers if a.min_gap_s is not None]
            print(row("appendStream calls per answer", counts, "  "))
            if gaps:
                print(
                    f"{'shortest gap between appends (one answer)':<44} {min(gaps):.2f} s = "
                    f"{60 / min(gaps):.0f} a minute (Tier 4: {APPENDS_PER_MINUTE})"
                )
        print()

    stream = results["stream"]
    failures = []
    lag = percentile([a.lag_ms for a in stream], 0.95)
    if lag > FIRST_TEXT_LIMIT_MS:
        failures.append(f"p95 first visible text {lag:.0f} ms after the model's first token (limit 300)")
    over = percentile([a.overhead for a in stream], 0.95)
    if over > TOTAL_OVERHEAD_LIMIT:
        failures.append(f"p95 total time {100 * over:.1f}% over the model's own (limit 5%)")
    gaps = [a.min_gap_s for a in stream if a.min_gap_s is not None]
    if gaps and 60 / min(gaps) > APPENDS_PER_MINUTE:
        failures.append(f"appends at {60 / min(gaps):.0f} a minute in one answer (Tier 4: 100)")
    for failure in failures:
        print(f"FAIL: {failure}")
    print("PASS" if not failures else "FAILED")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
