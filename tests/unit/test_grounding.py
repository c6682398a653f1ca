"""Issue 14's pure parts: loop cutting, the key-fact and right-source scorers, the model queue's
positions, the not-covered answer and how sources render in the CLI, the shell and Slack blocks."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.shell import Shell, format_reply
from bot.adapters.slack.blocks import progress_message, reply_messages
from bot.context.grounding import EMBEDDED_LABEL, not_covered_text, source_lines, sources_text
from bot.context.packs import Citation
from bot.core.types import Reply, Request
from bot.evals.facts import has_fact, key_fact_recall, right_source
from bot.evals.runner import evals_dir, load_cases
from bot.models import queue as model_queue
from bot.models.repetition import cut_repetition, cut_unfinished, loop_start

# Loops -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "Open the Okta dashboard and click Request app. Choose ZPA-Standard. Your manager approves it. "
            "Open the Okta dashboard and click Request app. Choose",
            "Open the Okta dashboard and click Request app. Choose ZPA-Standard. Your manager approves it.",
        ),
        (
            "1. Request ZPA in the Okta dashboard.\n2. Request ZPA in the Okta dashboard.\n3. Request",
            "1. Request ZPA in the Okta dashboard.",
        ),
        (
            "Use ZPA. It is a private access tool. the app the app the app the app",
            "Use ZPA. It is a private access tool.",
        ),
        # No sentence ends before the loop: keep what came before it.
        ("Ask in #it-help, it-help, it-help, it-help", "Ask in #it-help, it-help,"),
    ],
)
def test_a_looping_answer_is_cut_at_the_last_complete_sentence(text: str, kept: str) -> None:
    assert cut_repetition(text) == (kept, True)


@pytest.mark.parametrize(
    "text",
    [
        "Open Okta. Click Request app. Your manager approves it.",
        "Yes. Yes. The floating holiday cannot be carried over.",  # short repeats are not a loop
        "Step 1: open Okta.\nStep 2: request ZPA.\nStep 3: install the client.",
    ],
)
def test_an_answer_that_does_not_repeat_is_kept(text: str) -> None:
    assert loop_start(text) is None
    assert cut_repetition(text) == (text, False)


def test_an_answer_cut_by_the_token_limit_loses_its_broken_tail() -> None:
    assert cut_unfinished("Open Okta. Then your manager appr") == "Open Okta."
    assert cut_unfinished("Open Okta.") == "Open Okta."
    assert cut_unfinished("no sentence ends here") == "no sentence ends here"


# Scorers ---------------------------------------------------------------------------------------


def test_key_facts_match_wordings_case_and_markup_but_not_inside_words() -> None:
    answer = "Use **Zscaler Private Access**: request it in okta; 20 days of leave in 2026."
    assert has_fact(answer, "ZPA|Zscaler Private Access")
    assert has_fact(answer, "Okta")
    assert has_fact(answer, "20")
    assert not has_fact(answer, "202")  # not inside "2026"
    assert not has_fact(answer, "NordVPN")
    assert key_fact_recall(answer, ["ZPA|Zscaler Private Access", "manager", "Okta", "Request app"]) == 0.5
    assert key_fact_recall(answer, []) is None


def test_right_source() -> None:
    assert right_source(["it/vpn-access.md", "hr/benefits.md"], ["it/vpn-access.md"])
    assert not right_source(["hr/benefits.md"], ["it/vpn-access.md"])
    assert right_source([], [])  # nothing expected, nothing cited: "the handbook doesn't cover this"
    assert not right_source(["hr/onboarding.md"], [])


def test_every_ask_case_lists_key_facts_and_sources() -> None:
    cases, problems = load_cases(evals_dir() / "ask.jsonl")
    assert problems == []
    assert all(c.key_facts and c.sources is not None for c in cases)
    vpn = next(c for c in cases if c.input == "How do I get VPN access?")
    assert vpn.sources == ("it/vpn-access.md",)
    assert "Zscaler Private Access|ZPA" in vpn.key_facts
    # The reference answers state their own key facts: the scorer and the facts agree.
    raw = {json.loads(line)["id"]: json.loads(line) for line in (evals_dir() / "ask.jsonl").open()}
    for case in cases:
        assert key_fact_recall(raw[case.id]["reference"], case.key_facts) == 1.0, case.id


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"input": "q", "rubric": "r", "key_facts": "ZPA"}', "'key_facts' must be a list"),
        ('{"input": "q", "rubric": "r", "key_facts": [""]}', "'key_facts' must be a list"),
        ('{"input": "q", "rubric": "r", "sources": "it/vpn.md"}', "'sources' must be a list"),
    ],
)
def test_bad_key_facts_or_sources_are_reported_with_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(line + "\n")
    cases, problems = load_cases(path)
    assert cases == []
    assert problems == [f"set.jsonl line 1: {message}" + problems[0].split(message, 1)[1]]


# The queue -------------------------------------------------------------------------------------


def test_waiters_hear_their_position_in_arrival_order() -> None:
    queue = model_queue.ModelQueue()
    heard: dict[str, list[int]] = {"b": [], "c": []}
    order: list[str] = []
    release = threading.Event()
    a_in = threading.Event()

    def first() -> None:
        with queue.turn():
            order.append("a")
            a_in.set()
            release.wait(5)

    c_heard_one = threading.Event()

    def hear(name: str) -> Any:
        def on_position(ahead: int) -> None:
            heard[name].append(ahead)
            if name == "c" and ahead == 1:
                c_heard_one.set()

        return on_position

    def waiter(name: str) -> None:
        with model_queue.watching(hear(name)) as watch, queue.turn():
            order.append(name)
            if name == "b":  # hold the turn until c has seen itself move up
                c_heard_one.wait(5)
        assert watch.waited_s > 0

    a = threading.Thread(target=first)
    a.start()
    a_in.wait(5)
    b = threading.Thread(target=waiter, args=("b",))
    b.start()
    while queue.length < 2:
        threading.Event().wait(0.01)
    c = threading.Thread(target=waiter, args=("c",))
    c.start()
    while queue.length < 3:
        threading.Event().wait(0.01)
    release.set()
    for t in (a, b, c):
        t.join(5)
    assert order == ["a", "b", "c"]
    assert heard["b"] == [1, 0]  # one ahead, then our turn
    assert heard["c"] == [2, 1, 0]
    assert queue.length == 0


def test_no_wait_no_position() -> None:
    queue = model_queue.ModelQueue()
    heard: list[int] = []
    with model_queue.watching(heard.append) as watch, queue.turn() as waited:
        pass
    assert heard == [] and waited < 0.5 and watch.waited_s == waited


def test_position_text() -> None:
    assert model_queue.position_text(2) == "2 questions ahead of yours"
    assert model_queue.position_text(1) == "1 question ahead of yours"


# Rendering -------------------------------------------------------------------------------------

VPN = Citation(
    "company-handbook",
    "it/vpn-access.md",
    "VPN and private access (Zscaler ZPA)",
    "How to get VPN (ZPA) access",
    "https://handbook.example.com/it/vpn-access.md#how-to-get-vpn-zpa-access",
)
ABOUT = Citation(
    "company-handbook", "about-larkspur.md", "About Larkspur Systems", "Which Slack channel to use"
)


def _reply(**changes: Any) -> Reply:
    base: dict[str, Any] = {
        "text": "Open the Okta dashboard and click Request app.",
        "status": "ok",
        "skill": "ask",
        "request_id": "r1",
        "tier": "small",
        "model": "tierwise-local/smollm2",
        "sources": ("it/vpn-access.md", "about-larkspur.md"),
        "citations": (VPN, ABOUT),
        "embedded": True,
    }
    return Reply(**{**base, **changes})


def test_sources_in_the_terminal_name_title_section_path_and_link() -> None:
    assert source_lines([VPN, ABOUT]) == [
        "VPN and private access (Zscaler ZPA) › How to get VPN (ZPA) access — it/vpn-access.md "
        "<https://handbook.example.com/it/vpn-access.md#how-to-get-vpn-zpa-access>",
        "About Larkspur Systems › Which Slack channel to use — about-larkspur.md",
    ]
    assert sources_text([VPN]).startswith("Sources:\n  • VPN and private access")
    assert sources_text([]) == ""


def test_shell_reply_shows_sources_and_the_label_once(engine: Any, script: Any) -> None:
    text = format_reply(_reply(), label=True)
    assert "Sources:\n  • VPN and private access (Zscaler ZPA) › How to get VPN (ZPA) access" in text
    assert f"ⓘ {EMBEDDED_LABEL}" in text
    script.on("small", "Open the Okta dashboard and click Request app.", "Your manager approves it.")
    shell = Shell(engine)
    first = shell.handle_line("How do I get VPN access?")
    second = shell.handle_line("/ask How do I get VPN access?")
    assert first is not None and second is not None
    assert "Sources:" in first and "it/vpn-access.md" in first
    assert "tierwise.example.toml" in first
    assert "Sources:" in second and "tierwise.example.toml" not in second


def test_slack_blocks_list_sources_with_links_and_the_label() -> None:
    [message] = reply_messages(_reply(), label=EMBEDDED_LABEL)
    blocks = message.blocks
    sources = next(b for b in blocks if b["type"] == "context" and "Sources" in json.dumps(b))
    text = sources["elements"][0]["text"]
    assert text.startswith(
        "*Sources:* <https://handbook.example.com/it/vpn-access.md#how-to-get-vpn-zpa-access|"
    )
    assert "(`it/vpn-access.md`)" in text and "(`about-larkspur.md`)" in text
    label = next(b for b in blocks if "tierwise.example.toml" in json.dumps(b))
    assert label["type"] == "context"
    # Sources are not repeated in the footer when they are listed above it.
    footer = blocks[-2]
    assert all("Sources" not in e["text"] for e in footer["elements"])


def test_queue_position_in_the_slack_placeholder() -> None:
    message = progress_message(None, "2 questions ahead of yours")
    assert message.text == "2 questions ahead of yours. Working on it…"
    assert "2 questions ahead of yours" in json.dumps(message.blocks)


def test_not_covered_names_the_closest_documents() -> None:
    text = not_covered_text(["company-handbook"], [VPN, ABOUT])
    assert text.startswith("The company handbook doesn't cover this, so I won't guess.")
    assert "• VPN and private access (Zscaler ZPA) (it/vpn-access.md)" in text


def test_unrelated_question_on_the_built_in_model_is_not_sent_to_it(engine: Any, script: Any) -> None:
    reply = engine.handle(Request(text="What's the weather in Lisbon tomorrow?", skill="ask"))
    assert reply.ok
    assert reply.text.startswith("The company handbook doesn't cover this")
    assert "The closest documents are:" in reply.text
    assert script.calls == []  # nothing invented: the model was not asked
    row = engine.ledger.get_request(reply.request_id)
    assert row is not None and row.status == "ok" and row.notes.startswith("not covered by the packs")


def test_ask_reply_carries_citations_and_the_embedded_flag(engine: Any, script: Any) -> None:
    script.on("small", "Request Zscaler Private Access in Okta.")
    reply = engine.handle(Request(text="How do I get VPN access?", skill="ask"))
    assert reply.embedded
    row = engine.ledger.get_request(reply.request_id)
    assert row is not None and row.notes is not None
    assert row.notes.startswith("context: it/vpn-access.md › How to get VPN (ZPA) access | about-larkspur.md")
    assert reply.citations[0].doc == "it/vpn-access.md"
    assert reply.citations[0].section == "How to get VPN (ZPA) access"
    system, user = (m["content"] for m in script.calls[0][1])
    # The tiny-model layout: the excerpt right above the question, instructions in the system message.
    assert user.startswith("Excerpt:\n[it/vpn-access.md — VPN and private access (Zscaler ZPA) › How to get")
    assert "click **Request app**" in user
    assert user.endswith("\n\nQuestion: How do I get VPN access?")
    assert system.startswith("You are Tierwise") and "Sources:" not in system
    assert "Larkspur Systems is a B2B SaaS company" not in user  # not the whole always-included doc
