"""The fake Slack's streaming and agent methods answer like Slack (documented arguments, errors, limits),
so the bot's tests fail when it sends what Slack would reject."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from tests.fakes.fake_slack import FakeSlack
from tests.slack_helpers import limits


def _error(call: object) -> str:
    with pytest.raises(SlackApiError) as caught:
        call()  # type: ignore[operator]
    return str(caught.value.response["error"])


def test_channel_streams_need_recipients_and_a_thread(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    root = fake_slack.add_message("C1", "question", "U1")
    assert (
        _error(lambda: client.chat_startStream(channel="C1", thread_ts=root)) == "missing_recipient_team_id"
    )
    assert (
        _error(lambda: client.chat_startStream(channel="C1", thread_ts=root, recipient_team_id="T111"))
        == "missing_recipient_user_id"
    )
    bot_as_user = lambda: client.chat_startStream(  # noqa: E731
        channel="C1", thread_ts=root, recipient_team_id="T111", recipient_user_id="B0BOT"
    )
    assert _error(bot_as_user) == "invalid_arguments"
    assert _error(lambda: client.api_call("chat.startStream", json={"channel": "D1"})) == "invalid_arguments"
    ok = client.chat_startStream(channel="D1", thread_ts=root, markdown_text="hi")  # DMs name nobody
    assert ok["ts"]


def test_text_limits_per_call_and_per_message(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    cap = limits()["streaming.markdown_text_per_call_max_chars"]
    ts = client.chat_startStream(channel="D1", thread_ts="1.0", markdown_text="a")["ts"]
    too_long = lambda: client.chat_appendStream(channel="D1", ts=ts, markdown_text="x" * (cap + 1))  # noqa: E731
    assert _error(too_long) == "invalid_arguments"
    client.chat_appendStream(channel="D1", ts=ts, markdown_text="x" * (cap - 1))
    over = lambda: client.chat_appendStream(channel="D1", ts=ts, markdown_text="y")  # noqa: E731
    assert _error(over) == "msg_too_long"  # ~12,000 per streamed message, as observed
    assert _error(lambda: client.api_call("chat.appendStream", json={"channel": "D1", "ts": ts})) == "no_text"


def test_stop_by_user_and_after_stop(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    ts = client.chat_startStream(channel="D1", thread_ts="1.0", markdown_text="a")["ts"]
    fake_slack.stop_stream_by_user("D1", ts)
    assert (
        _error(lambda: client.chat_appendStream(channel="D1", ts=ts, markdown_text="b")) == "stopped_by_user"
    )
    assert _error(lambda: client.chat_stopStream(channel="D1", ts=ts)) == "message_not_in_streaming_state"
    other = client.chat_startStream(channel="D1", thread_ts="1.0", markdown_text="a")["ts"]
    client.chat_stopStream(channel="D1", ts=other)
    late = lambda: client.chat_appendStream(channel="D1", ts=other, markdown_text="b")  # noqa: E731
    assert _error(late) == "message_not_in_streaming_state"


def test_stop_stream_blocks_are_checked(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    ts = client.chat_startStream(channel="D1", thread_ts="1.0", markdown_text="a")["ts"]
    divider = {"type": "divider"}
    count = limits()["streaming.stop_stream_blocks_max"] + 1
    many = lambda: client.chat_stopStream(channel="D1", ts=ts, blocks=[divider] * count)  # noqa: E731
    assert _error(many) == "msg_blocks_too_many"
    halves = [{"type": "markdown", "text": "m" * 6001}] * 2  # 12,002 characters of markdown blocks
    assert _error(lambda: client.chat_stopStream(channel="D1", ts=ts, blocks=halves)) == "invalid_blocks"
    assert client.chat_stopStream(channel="D1", ts=ts, blocks=[divider])["ok"]


def test_loading_messages_limits(fake_slack: FakeSlack) -> None:
    client = fake_slack.web_client()
    most = limits()["assistant_threads.set_status_loading_messages"]
    ok = client.assistant_threads_setStatus(
        channel_id="D1", thread_ts="1.0", status="x", loading_messages=["a"]
    )
    assert ok["ok"]
    for bad in ([], ["a"] * (most + 1), ["x" * 51]):
        call = lambda bad=bad: client.assistant_threads_setStatus(  # noqa: E731
            channel_id="D1", thread_ts="1.0", status="x", loading_messages=bad
        )
        assert _error(call) == "invalid_arguments", bad


def test_task_update_chunks_are_checked_and_tracked(fake_slack: FakeSlack) -> None:
    """Chunk shapes as the pinned slack-sdk's ChatStream sends them; a malformed one is `invalid_chunks`."""
    client = fake_slack.web_client()
    step = {"type": "task_update", "id": "step-1", "title": "Asking medium", "status": "in_progress"}
    ts = client.chat_startStream(channel="D1", thread_ts="1.0", chunks=[step])[
        "ts"
    ]  # a step alone is content
    assert fake_slack.stream_tasks[("D1", ts)] == {
        "step-1": {"title": "Asking medium", "status": "in_progress"}
    }
    text = {"type": "markdown_text", "text": "Done."}
    client.chat_appendStream(channel="D1", ts=ts, chunks=[{**step, "status": "complete"}, text])
    assert fake_slack.stream_tasks[("D1", ts)]["step-1"]["status"] == "complete"
    assert fake_slack.get_message("D1", ts)["text"] == "Done."
    bad = [
        [{**step, "status": "finished"}],  # not one of pending / in_progress / complete / error
        [{k: v for k, v in step.items() if k != "id"}],
        [{**step, "colour": "red"}],
        [{"type": "task_card", "title": "a block, not a chunk"}],
        [{**step, "sources": [{"type": "url", "url": "https://x.example"}]}],  # a source needs its text
        "not a list",
    ]
    for chunks in bad:
        call = lambda c=chunks: client.chat_appendStream(channel="D1", ts=ts, chunks=c)  # noqa: E731
        assert _error(call) == "invalid_chunks", chunks
    client.chat_stopStream(channel="D1", ts=ts, chunks=[{"type": "plan_update", "title": "Answered"}])
