"""Native streaming into Slack (chat.startStream / appendStream / stopStream), agent_view, native
feedback buttons and the fallbacks, against the fake Slack over both transports.

Every payload is validated against fixtures/slack/blockkit and limits.json when a test ends (the
`slack` fixture), and the fake answers like Slack to what Slack would reject.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.slack.manifest import suggested_prompts
from bot.adapters.slack.streaming import APPEND_INTERVAL, MESSAGE_TEXT_MAX
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fake_slack import FakeSlack, load_fixture
from tests.slack_helpers import (
    USER,
    BotEnv,
    button_click,
    event_body,
    feedback_click,
    limits,
    mention,
    message,
    modal_submission,
    slack_fixture,  # noqa: F401 (fixture)
    slash,
    start_bot,
)

ANSWER = "**VPN**: install the GlobalProtect client, then sign in with SSO. Ask #it-help if it fails."


@pytest.fixture(name="stream_env", params=["http", "socket"])
def stream_env_fixture(
    request: pytest.FixtureRequest, slack: FakeSlack, make_engine: Callable[..., Any], tmp_path: Path
) -> Iterator[BotEnv]:
    env = start_bot(slack, make_engine, tmp_path, request.param, slack_streaming=True)
    yield env
    env.stop()


def _tier(url: str, model: str) -> dict[str, Any]:
    return {"model": f"openai/{model}", "api_base": url, "data_boundary": "local", "max_retries": 0}


def _paced(slack: FakeSlack, tmp_path: Path, fake_openai: FakeOpenAI, streaming: bool) -> BotEnv:
    """HTTP transport, and a model server that streams tokens at a fixed rate (no litellm mock)."""
    from bot.app import build_engine
    from bot.config import load_settings
    from bot.models.llm import LLM
    from bot.pipeline.engine import Engine

    def build(**settings: Any) -> Engine:
        loaded = load_settings(**settings)
        return build_engine(loaded, llm=LLM(loaded.tiers))

    tiers = {name: _tier(fake_openai.url, f"{name}-model") for name in ("small", "medium", "large")}
    return start_bot(slack, build, tmp_path, "http", slack_streaming=streaming, tiers=tiers)


@pytest.fixture(name="paced_env")
def paced_env_fixture(slack: FakeSlack, tmp_path: Path, fake_openai: FakeOpenAI) -> Iterator[BotEnv]:
    env = _paced(slack, tmp_path, fake_openai, streaming=True)
    yield env
    env.stop()


@pytest.fixture(name="paced_update_env")
def paced_update_env_fixture(slack: FakeSlack, tmp_path: Path, fake_openai: FakeOpenAI) -> Iterator[BotEnv]:
    env = _paced(slack, tmp_path, fake_openai, streaming=False)
    yield env
    env.stop()


def _mention(env: BotEnv, text: str, event_id: str, channel: str = "C111") -> str:
    ts = env.slack.add_message(channel, f"<@UBOT> {text}", USER)
    assert env.event(event_body(mention(text, ts, channel=channel), event_id)).status == 200
    return ts


def _stream_calls(slack: FakeSlack) -> list[Any]:
    return [c for c in slack.calls if c.method.startswith("chat.") and "Stream" in c.method]


def _row(env: BotEnv) -> Any:
    [row] = env.rows()
    return row


def test_mention_is_streamed_into_its_thread(stream_env: BotEnv, script: Any) -> None:
    script.default = ANSWER
    slack = stream_env.slack
    ts = _mention(stream_env, "how do I get VPN access?", "EvS1")
    stream_env.settle()

    start = slack.wait_for("chat.startStream")
    assert start.ok and start.params["thread_ts"] == ts
    assert (start.params["recipient_team_id"], start.params["recipient_user_id"]) == ("T111", USER)
    stop = slack.wait_for("chat.stopStream")
    assert stop.ok and not slack.calls_to("chat.postMessage") and not slack.calls_to("chat.update")
    [answer] = slack.bot_messages("C111")
    assert answer["thread_ts"] == ts and answer["text"] == ANSWER.replace("#it-help", "#it-help")
    # Under the streamed text: the sources (and the built-in model's label), the footer, the feedback.
    *above, footer, feedback = answer["blocks"]
    assert footer["type"] == "context" and feedback["type"] == "context_actions"
    assert above and "Sources:" in above[0]["elements"][0]["text"]
    row = _row(stream_env)
    assert feedback["elements"][0]["positive_button"]["value"] == f"up:{row.id}"
    assert (row.status, row.delivery) == ("ok", "stream")
    assert row.ttft_ms is not None and row.visible_ttft_ms is not None
    assert stream_env.engine.ledger.request_for_message("C111", answer["ts"]) == row.id
    # loading messages while the context is chosen, within Slack's limits
    status = slack.calls_to("assistant.threads.setStatus")[0]
    loading = status.json_field("loading_messages")
    assert status.ok and 1 <= len(loading) <= limits()["assistant_threads.set_status_loading_messages"]


def test_agent_view_dm_prompts_then_a_streamed_threaded_answer(stream_env: BotEnv, script: Any) -> None:
    script.default = ANSWER
    slack = stream_env.slack
    opened = load_fixture("events/app_home_opened_messages_agent_view.json")
    opened["event"].update({"user": USER, "channel": "DUSER"})
    assert stream_env.event(opened).status == 200
    stream_env.settle()
    prompts = slack.wait_for("assistant.threads.setSuggestedPrompts")
    assert prompts.ok and "thread_ts" not in prompts.params  # agent_view: the Messages tab, no thread
    listed = prompts.json_field("prompts")
    assert 1 <= len(listed) <= limits()["agents.manifest_suggested_prompts_max"]
    assert listed == suggested_prompts(stream_env.engine.registry)  # one per skill, as in the manifest
    assert not slack.calls_to("views.publish")  # the Home tab was not the one opened

    ts = slack.add_message("DUSER", "how do I get VPN access?", USER)
    stream_env.event(event_body(message("how do I get VPN access?", ts, channel="DUSER"), "EvS2"))
    stream_env.settle()
    start = slack.wait_for("chat.startStream")
    assert start.params["thread_ts"] == ts and "recipient_user_id" not in start.params  # a DM
    [answer] = slack.bot_messages("DUSER")
    assert answer["thread_ts"] == ts and answer["text"] == ANSWER
    assert _row(stream_env).delivery == "stream"


def test_thread_follow_up_is_streamed_in_the_thread(stream_env: BotEnv, script: Any) -> None:
    script.default = ANSWER
    slack = stream_env.slack
    root = _mention(stream_env, "how do I get VPN access?", "EvS3")
    stream_env.settle()
    follow = slack.add_message("C111", "and on Linux?", USER, thread_ts=root)
    stream_env.event(event_body(message("and on Linux?", follow, thread_ts=root), "EvS4"))
    stream_env.settle()
    starts = slack.calls_to("chat.startStream")
    assert [c.params["thread_ts"] for c in starts] == [root, root]
    assert [r.delivery for r in stream_env.rows()] == ["stream", "stream"]


def test_structured_skill_streams_a_progress_line_then_its_fields(stream_env: BotEnv, script: Any) -> None:
    script.default = json.dumps(
        {"category": "access", "priority": "high", "tags": ["vpn"], "reason": "cannot connect"}
    )
    slack = stream_env.slack
    _mention(stream_env, "label this support ticket with a category and priority: VPN is down", "EvS5")
    stream_env.settle()
    start = slack.wait_for("chat.startStream")
    [step] = start.json_field("chunks")  # a task card in the answer's timeline, not text
    assert step["type"] == "task_update" and "Working on the tw-label fields" in step["title"]
    assert step["status"] == "in_progress"
    assert "{" not in "".join(c.params.get("markdown_text") or "" for c in _stream_calls(slack))
    assert list(slack.stream_tasks[("C111", start.response["ts"])].values()) == [
        {"title": step["title"], "status": "complete"}
    ]
    blocks = slack.wait_for("chat.stopStream").json_field("blocks")
    fields = [f["text"] for f in blocks[0]["fields"]]
    assert "*Category*\naccess" in fields and blocks[-1]["type"] == "context_actions"
    assert _row(stream_env).delivery == "stream"


def test_escalation_is_shown_as_a_step(stream_env: BotEnv, script: Any) -> None:
    good = {"category": "access", "priority": "high", "tags": ["vpn"], "reason": "cannot connect"}
    script.on("small", "not json at all").on("medium", json.dumps(good))
    slack = stream_env.slack
    _mention(stream_env, "label this support ticket with a category and priority: VPN is down", "EvS6")
    stream_env.settle()
    chunks = [chunk for c in _stream_calls(slack) for chunk in c.json_field("chunks") or []]
    steps = {(c["title"], c["status"]) for c in chunks if c["type"] == "task_update"}
    assert ("small's answer failed validation; asking medium", "in_progress") in steps
    [ts] = {c.response["ts"] for c in _stream_calls(slack) if c.method == "chat.startStream"}
    tasks = slack.stream_tasks[("C111", ts)]
    assert [t["title"] for t in tasks.values()][-1] == "small's answer failed validation; asking medium"
    assert all(t["status"] == "complete" for t in tasks.values())  # each step closed by the next, or the end
    rows = sorted(stream_env.rows(), key=lambda r: r.escalated_from is not None)
    assert [(r.tier, r.status) for r in rows] == [("small", "invalid"), ("medium", "ok")]
    assert rows[-1].delivery == "stream" and rows[0].delivery is None


def test_refused_stream_falls_back_to_one_posted_answer(stream_env: BotEnv, script: Any) -> None:
    script.default = ANSWER
    slack = stream_env.slack
    slack.stream_refusals[USER] = "user_not_found"  # e.g. a Slack Connect user
    ts = _mention(stream_env, "how do I get VPN access?", "EvS7")
    stream_env.settle()
    assert [c.error for c in slack.calls_to("chat.startStream")] == ["user_not_found"]
    [answer] = slack.bot_messages("C111")
    assert answer["thread_ts"] == ts and answer["blocks"][0] == {"type": "markdown", "text": ANSWER}
    assert _row(stream_env).delivery == "post"


def test_stream_broken_midway_is_repaired_in_place(paced_env: BotEnv, fake_openai: FakeOpenAI) -> None:
    fake_openai.default = "word " * 120
    fake_openai.token_interval = 0.02  # ~2.4 s of tokens: several appends
    slack = paced_env.slack
    slack.fail_next("chat.appendStream", status=200, error="messaging_processing_failed")
    _mention(paced_env, "explain the VPN", "EvS8")
    paced_env.settle(30)
    assert slack.calls_to("chat.appendStream")[0].error == "messaging_processing_failed"
    [answer] = slack.bot_messages("C111")  # the streamed message became the whole answer: once
    assert answer["blocks"][0]["text"] == ("word " * 120).strip()
    assert slack.calls_to("chat.update") and not slack.calls_to("chat.postMessage")
    assert _row(paced_env).delivery == "update"


def test_stream_broken_and_not_updatable_is_posted_anew_once(
    paced_env: BotEnv, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = "word " * 120
    fake_openai.token_interval = 0.02
    slack = paced_env.slack
    slack.fail_next("chat.appendStream", status=200, error="messaging_processing_failed")
    slack.fail_next("chat.update", status=200, error="cant_update_message")
    ts = _mention(paced_env, "explain the VPN", "EvS14")
    paced_env.settle(30)
    [answer] = slack.bot_messages("C111")  # posted anew, the partial one deleted: still exactly once
    assert answer["thread_ts"] == ts and answer["blocks"][0]["text"] == ("word " * 120).strip()
    assert slack.calls_to("chat.delete") and _row(paced_env).delivery == "post"
    row = _row(paced_env)
    assert paced_env.engine.ledger.request_for_message("C111", answer["ts"]) == row.id


def test_stream_refused_at_stop_is_repaired(stream_env: BotEnv, script: Any) -> None:
    script.default = ANSWER
    slack = stream_env.slack
    slack.fail_next("chat.stopStream", status=200, error="msg_blocks_too_long")
    _mention(stream_env, "how do I get VPN access?", "EvS9")
    stream_env.settle()
    [answer] = slack.bot_messages("C111")
    assert answer["blocks"][0] == {"type": "markdown", "text": ANSWER}
    assert answer["blocks"][-1]["type"] == "context_actions"
    assert _row(stream_env).delivery == "update"


def test_a_stream_slack_would_not_finish_is_finished_later_without_a_second_model_call(
    stream_env: BotEnv, script: Any
) -> None:
    """Slack refuses every way to finish a streamed answer (stopStream, the chat.update with the whole
    answer, a post anew) for two deliveries, then recovers. The reply kept on the work item is
    delivered over the streamed message by the worker's back-off retries: one message, one model call."""
    from bot.ledger.work import WorkQueue

    script.default = ANSWER
    slack = stream_env.slack
    work = stream_env.app.tierwise.work
    work.delivery_backoff_s = 0.01
    # Try 1: stopStream twice (the stop, then the repair's), update, post. Try 2: update, post.
    slack.fail_next("chat.stopStream", status=200, error="fatal_error", times=2)
    slack.fail_next("chat.update", status=200, error="fatal_error", times=2)
    slack.fail_next("chat.postMessage", status=200, error="fatal_error", times=2)
    ts = _mention(stream_env, "how do I get VPN access?", "EvS20")
    stream_env.settle()
    [half] = slack.bot_messages("C111")  # the stream, left open: Slack would not let it be stopped
    assert slack.is_streaming("C111", half["ts"]) and half["thread_ts"] == ts
    item = WorkQueue(stream_env.engine.ledger).get("EvS20")
    assert item is not None and (item.status, item.stage) == ("open", "replied") and item.reply
    assert item.message_ts == half["ts"] and "(try 1 of 6)" in (item.detail or "")
    for expected_try in (2, None):  # one more refusal, then Slack takes it
        time.sleep(0.05)
        assert work.redeliver_due() == 1
        stream_env.settle()
        item = WorkQueue(stream_env.engine.ledger).get("EvS20")
        assert item is not None
        if expected_try is not None:
            assert f"(try {expected_try} of 6)" in (item.detail or "") and item.status == "open"
    [answer] = slack.bot_messages("C111")  # the streamed message itself, finished: no second one
    assert answer["ts"] == half["ts"] and not slack.is_streaming("C111", answer["ts"])
    assert answer["blocks"][0] == {"type": "markdown", "text": ANSWER}
    assert (item.status, item.stage) == ("done", "delivered")
    assert len(script.calls) == 1  # the kept reply was delivered; the model was asked once
    assert [c.error for c in slack.calls_to("chat.update")][-2:] == ["streaming_state_conflict", None]
    assert work.redeliver_due(now=time.monotonic() + 3600) == 0
    row = _row(stream_env)
    assert row.status == "ok" and row.delivery == "update"
    assert stream_env.engine.ledger.request_for_message("C111", answer["ts"]) == row.id


def test_user_stop_ends_the_answer_and_is_recorded(paced_env: BotEnv, fake_openai: FakeOpenAI) -> None:
    fake_openai.default = "token " * 400
    fake_openai.token_interval = 0.02  # ~8 s if nobody stops it
    slack = paced_env.slack
    _mention(paced_env, "explain everything", "EvS10")
    start = slack.wait_for("chat.startStream", timeout=15)
    slack.stop_stream_by_user("C111", start.response["ts"])
    slack.stop_stream_by_user("C111", start.response["ts"])  # pressed twice: nothing breaks
    paced_env.settle(20)
    assert slack.calls_to("chat.appendStream")[-1].error == "stopped_by_user"
    row = _row(paced_env)
    assert row.status == "stopped" and 0 < row.completion_tokens < 400
    assert row.delivery == "stream"
    [answer] = slack.bot_messages("C111")
    assert "Stopped before the end" in json.dumps(answer["blocks"])
    deadline = time.monotonic() + 5
    while not fake_openai.disconnected and time.monotonic() < deadline:
        time.sleep(0.05)  # the server notices the closed connection at its next write
    assert fake_openai.disconnected  # the model stopped generating too
    slack.stop_stream_by_user("C111", start.response["ts"])  # after the end: nothing breaks either
    assert len(slack.bot_messages("C111")) == 1


def test_pings_are_neutralised_and_a_50000_char_answer_rolls_over(
    paced_env: BotEnv, fake_openai: FakeOpenAI
) -> None:
    fake_openai.default = "Hi <!channel>, ask <@U999AAA> or @here. " + "long text " * 5000
    fake_openai.chunk_chars = 997  # big chunks: 50,000 characters in ~50 deltas, pings cut in two
    stream_env = paced_env
    slack = stream_env.slack
    _mention(stream_env, "write a lot", "EvS11")
    stream_env.settle(30)
    streamed = "".join(c.params.get("markdown_text") or "" for c in _stream_calls(slack))
    assert "<!channel>" not in streamed and "<@U999AAA>" not in streamed and " @here" not in streamed
    messages = slack.bot_messages("C111")
    assert len(messages) >= 5 and all(len(m["text"]) <= MESSAGE_TEXT_MAX for m in messages)
    assert all(c.ok for c in slack.calls if c.method != "assistant.threads.setStatus")
    row = _row(stream_env)
    assert {stream_env.engine.ledger.request_for_message("C111", m["ts"]) for m in messages} == {row.id}


def test_appends_stay_within_slacks_rate(paced_env: BotEnv, fake_openai: FakeOpenAI) -> None:
    fake_openai.default = "word " * 150
    fake_openai.token_interval = 0.01
    slack = paced_env.slack
    _mention(paced_env, "explain the VPN", "EvS12")
    paced_env.settle(30)
    appends = [c.at for c in slack.calls_to("chat.appendStream")]
    assert len(appends) >= 2
    gaps = [b - a for a, b in itertools.pairwise(appends)]
    assert min(gaps) >= APPEND_INTERVAL * 0.9  # Tier 4: 100 a minute at most, per answer


def test_native_feedback_buttons_land_on_the_right_request(stream_env: BotEnv, script: Any) -> None:
    script.default = ANSWER
    slack = stream_env.slack
    _mention(stream_env, "how do I get VPN access?", "EvS13")
    stream_env.settle()
    [answer] = slack.bot_messages("C111")
    answer = {**answer, "channel": "C111"}
    row = _row(stream_env)

    assert stream_env.interactive(feedback_click(f"up:{row.id}", answer, slack)).status == 200
    stream_env.settle()
    assert [(f.request_id, f.score, f.source) for f in stream_env.feedback()] == [(row.id, 1, "slack-button")]

    stream_env.interactive(feedback_click(f"down:{row.id}", answer, slack))
    stream_env.settle()
    view = slack.calls_to("views.open")[0].json_field("view")
    assert view["private_metadata"] == row.id
    stream_env.interactive(modal_submission(view, "Wrong client name."))
    stream_env.settle()
    assert [(f.request_id, f.score, f.comment) for f in stream_env.feedback()] == [
        (row.id, -1, "Wrong client name.")
    ]


def test_slash_command_streams_under_its_question(stream_env: BotEnv, script: Any) -> None:
    script.default = ANSWER
    slack = stream_env.slack
    assert stream_env.command(slash("/tw-digest", "summarise the VPN rollout", slack)).status == 200
    stream_env.settle()
    question = slack.calls_to("chat.postMessage")[0]
    assert "summarise the VPN rollout" in question.params["text"]
    start = slack.wait_for("chat.startStream")
    assert start.params["thread_ts"] == question.response["ts"]
    assert (start.params["recipient_team_id"], start.params["recipient_user_id"]) == ("T111", USER)
    assert _row(stream_env).delivery == "stream"


def test_slash_command_where_the_bot_cannot_post_answers_by_response_url(
    stream_env: BotEnv, script: Any
) -> None:
    script.default = ANSWER
    slack = stream_env.slack
    slack.fail_next("chat.postMessage", status=200, error="not_in_channel", times=5)
    stream_env.command(slash("/tw-digest", "summarise the VPN rollout", slack))
    stream_env.settle()
    assert not slack.calls_to("chat.startStream")
    [answer] = [c for c in slack.calls if c.method.startswith("response_url:")]
    assert answer.params["response_type"] == "in_channel" and ANSWER in json.dumps(answer.params["blocks"])
    assert _row(stream_env).delivery == "response_url"


def test_stop_button_on_the_placeholder(paced_update_env: BotEnv, fake_openai: FakeOpenAI) -> None:
    from bot.adapters.slack.ids import STOP_ACTION

    fake_openai.default = "token " * 400
    fake_openai.token_interval = 0.02  # ~8 s if nobody stops it
    env, slack = paced_update_env, paced_update_env.slack
    _mention(env, "explain everything", "EvS20")
    placeholder = slack.wait_for("chat.postMessage", timeout=15)
    [stop] = [b for b in placeholder.json_field("blocks") if b["type"] == "actions"]
    key = stop["elements"][0]["value"]
    message = {**slack.get_message("C111", placeholder.response["ts"]), "channel": "C111"}
    assert env.interactive(button_click(STOP_ACTION, key, message, slack)).status == 200
    env.settle(20)
    row = _row(env)
    assert row.status == "stopped" and 0 < row.completion_tokens < 400 and row.delivery == "update"
    [answer] = slack.bot_messages("C111")
    assert "Stopped before the end" in json.dumps(answer["blocks"])
    # pressed again after the end: a short note, nothing else
    env.interactive(button_click(STOP_ACTION, key, message, slack))
    env.settle()
    assert slack.ephemerals[-1]["text"] == "That answer has already finished."
    assert len(slack.bot_messages("C111")) == 1


def test_a_refusal_takes_the_loading_status_down(stream_env: BotEnv, script: Any) -> None:
    slack = stream_env.slack
    _mention(stream_env, "", "EvS22")  # nothing asked: rejected with a hint
    stream_env.settle()
    assert slack.calls_to("assistant.threads.setStatus")[-1].params["status"] == ""
    assert not _stream_calls(slack) and not slack.assistant_status
    assert slack.ephemerals[-1]["text"].startswith("Tell me what you need")
