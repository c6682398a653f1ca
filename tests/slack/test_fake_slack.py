"""Protocol tests for tests/fakes/fake_slack.py, driven by the real slack_sdk / slack_bolt clients."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookClient

from tests.fakes.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    FIXTURES_DIR,
    FakeSlack,
    close_socket_mode,
    interactive_form_body,
    load_fixture,
    load_form_fixture,
    post_signed,
    sign,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url)


def _bolt_app(slack: FakeSlack, **kwargs) -> App:
    return App(
        client=WebClient(token=BOT_TOKEN, base_url=slack.api_url),
        signing_secret="fake-secret",
        **kwargs,
    )


@pytest.fixture
def socket_app(slack: FakeSlack) -> Iterator[tuple[App, SocketModeHandler]]:
    """A bolt App under the real builtin SocketModeHandler, connected to the fake."""
    app = _bolt_app(slack)
    handler = SocketModeHandler(app, APP_TOKEN)
    try:
        yield app, handler
    finally:
        close_socket_mode(handler)


# ---------------------------------------------------------------- fixtures copied


def test_fixture_folder_is_complete() -> None:
    for name in ("events", "interactivity", "socket_mode", "blockkit", "signing", "methods"):
        assert (FIXTURES_DIR / name).is_dir(), name
    for name in ("limits.json", "manifest.json", "README.md", "SOURCE.md"):
        assert (FIXTURES_DIR / name).is_file(), name
    assert load_fixture("events/app_mention.json")["event"]["type"] == "app_mention"
    assert load_form_fixture("interactivity/slash_command.form.txt").startswith(b"token=")


# ---------------------------------------------------------------- Web API


def test_post_message_then_replies_returns_thread(slack: FakeSlack, client: WebClient) -> None:
    parent = slack.add_message("C111", "question from a human", "U222")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*answer*"}}]
    resp = client.chat_postMessage(channel="C111", thread_ts=parent, text="answer", blocks=blocks)
    assert resp["ok"] and resp["channel"] == "C111"
    assert float(resp["ts"]) > float(parent)
    assert resp["message"]["user"] == "UBOT" and resp["message"]["bot_id"] == "BBOT"
    human_reply = slack.add_message("C111", "thanks", "U222", thread_ts=parent)

    replies = client.conversations_replies(channel="C111", ts=parent)
    texts = [m["text"] for m in replies["messages"]]
    assert texts == ["question from a human", "answer", "thanks"]
    assert replies["messages"][0]["reply_count"] == 2
    assert replies["messages"][2]["ts"] == human_reply

    call = slack.wait_for("chat.postMessage")
    assert call.status == 200 and call.ok
    assert call.json_field("blocks") == blocks  # slack_sdk sends chat.postMessage as JSON
    assert call.headers["content-type"].startswith("application/json")
    assert call.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.token == BOT_TOKEN
    assert slack.thread("C111", parent)[1]["blocks"] == blocks
    assert slack.bot_messages("C111")[0]["text"] == "answer"


def test_ts_are_unique_and_monotonic(client: WebClient) -> None:
    ts = [client.chat_postMessage(channel="C1", text=str(i))["ts"] for i in range(5)]
    assert ts == sorted(ts, key=float) and len(set(ts)) == 5
    assert ts[0] == "1700000000.000100"


def test_history_pagination_and_update_delete(slack: FakeSlack, client: WebClient) -> None:
    for i in range(5):
        slack.add_message("C2", f"m{i}", "U222")
    page = client.conversations_history(channel="C2", limit=2)
    assert [m["text"] for m in page["messages"]] == ["m4", "m3"] and page["has_more"]
    page2 = client.conversations_history(
        channel="C2", limit=2, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in page2["messages"]] == ["m2", "m1"]

    ts = client.chat_postMessage(channel="C2", text="draft")["ts"]
    updated = client.chat_update(channel="C2", ts=ts, text="final")
    assert updated["text"] == "final" and slack.get_message("C2", ts)["text"] == "final"
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="C2", ts="1.000001", text="x")
    assert err.value.response["error"] == "message_not_found"
    client.chat_delete(channel="C2", ts=ts)
    assert slack.get_message("C2", ts) is None


def test_errors_auth_and_unknown_method(slack: FakeSlack) -> None:
    anonymous = WebClient(base_url=slack.api_url)
    with pytest.raises(SlackApiError) as err:
        anonymous.auth_test()
    assert err.value.response["error"] == "not_authed"
    with pytest.raises(SlackApiError) as err:
        WebClient(token=BOT_TOKEN, base_url=slack.api_url).api_call("no.such.method")
    assert err.value.response["error"] == "unknown_method" and err.value.response.status_code == 200
    with pytest.raises(SlackApiError) as err:
        WebClient(token=APP_TOKEN, base_url=slack.api_url).chat_postMessage(channel="C1", text="x")
    assert err.value.response["error"] == "not_allowed_token_type"
    assert [c.method for c in slack.calls] == ["auth.test", "no.such.method", "chat.postMessage"]
    assert all(c.status == 200 and not c.ok for c in slack.calls)


def test_auth_test_views_users_assistant(slack: FakeSlack, client: WebClient) -> None:
    auth = client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"], auth["team"]) == (
        "UBOT",
        "BBOT",
        "T111",
        "Fake",
    )
    view = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}
    published = client.views_publish(user_id="U222", view=view)
    assert published["view"]["id"].startswith("V") and published["view"]["blocks"] == view["blocks"]
    assert slack.home_views["U222"]["type"] == "home"
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}
    opened = client.views_open(trigger_id="111.222.xxx", view=modal)
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id="111.222.xxx", view=modal)
    assert err.value.response["error"] == "exchanged_trigger_id"
    updated = client.views_update(view_id=opened["view"]["id"], view={**modal, "private_metadata": "x"})
    assert updated["view"]["private_metadata"] == "x"

    user = client.users_info(user="U222")["user"]
    assert user["id"] == "U222" and user["is_bot"] is False
    client.assistant_threads_setStatus(channel_id="D1", thread_ts="1.1", status="is thinking...")
    assert slack.assistant_status[("D1", "1.1")] == "is thinking..."
    client.assistant_threads_setSuggestedPrompts(
        channel_id="D1", thread_ts="1.1", prompts=[{"title": "a", "message": "b"}]
    )
    client.assistant_threads_setTitle(channel_id="D1", thread_ts="1.1", title="t")
    client.reactions_add(channel="C1", timestamp="1.1", name="eyes")
    assert slack.wait_for("reactions.add").params["name"] == "eyes"
    assert client.chat_postEphemeral(channel="C1", user="U222", text="psst")["message_ts"]
    assert slack.ephemerals[0]["text"] == "psst"
    link = client.chat_getPermalink(channel="C1", message_ts="1700000000.000100")["permalink"]
    assert link.endswith("/archives/C1/p1700000000000100")


def test_streaming_methods(slack: FakeSlack, client: WebClient) -> None:
    ts = client.chat_startStream(channel="D1", thread_ts="1.1", markdown_text="Hel")["ts"]
    client.chat_appendStream(channel="D1", ts=ts, markdown_text="lo")
    stopped = client.chat_stopStream(channel="D1", ts=ts, markdown_text="!")
    assert stopped["message"]["text"] == "Hello!"
    with pytest.raises(SlackApiError) as err:
        client.chat_appendStream(channel="D1", ts=ts, markdown_text="more")
    assert err.value.response["error"] == "message_not_in_streaming_state"


def test_a_message_still_streaming_cannot_be_updated(slack: FakeSlack, client: WebClient) -> None:
    """chat.update documents `streaming_state_conflict`; once stopped, the message is ordinary again."""
    ts = client.chat_startStream(channel="D1", thread_ts="1.1", markdown_text="Half an ans")["ts"]
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel="D1", ts=ts, text="the whole answer")
    assert err.value.response["error"] == "streaming_state_conflict"
    client.chat_stopStream(channel="D1", ts=ts)
    with pytest.raises(SlackApiError) as err:  # a stopped stream is stopped for good
        client.chat_stopStream(channel="D1", ts=ts)
    assert err.value.response["error"] == "message_not_in_streaming_state"
    client.chat_update(channel="D1", ts=ts, text="the whole answer")
    assert slack.get_message("D1", ts)["text"] == "the whole answer"  # type: ignore[index]


def test_block_limits_and_optional_schema_validation() -> None:
    with FakeSlack(validate_blocks=True) as slack:
        client = slack.web_client()
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(channel="C1", text="many", blocks=[{"type": "divider"}] * 51)
        assert err.value.response["error"] == "invalid_blocks"
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(
                channel="C1",
                text="bad",
                blocks=load_fixture("blockkit/samples/invalid_section_text_plain_string.json"),
            )
        assert err.value.response["error"] == "invalid_blocks"
        good = load_fixture("blockkit/samples/valid_section_actions_context.json")
        assert client.chat_postMessage(channel="C1", text="good", blocks=good)["ok"]
        with pytest.raises(SlackApiError) as err:
            client.api_call("chat.postMessage", json={"channel": "C1"})
        assert err.value.response["error"] == "no_text"


def test_async_client_get_and_json(slack: FakeSlack) -> None:
    async def run() -> None:
        aclient = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
        posted = await aclient.chat_postMessage(channel="C3", text="async")
        replies = await aclient.conversations_replies(channel="C3", ts=posted["ts"])
        assert [m["text"] for m in replies["messages"]] == ["async"]
        # Channel streams name their reader (the fake now enforces it, as Slack does; issue 11).
        await aclient.chat_startStream(
            channel="C3",
            thread_ts=posted["ts"],
            markdown_text="x",
            recipient_team_id="T111",
            recipient_user_id="U111",
        )

    asyncio.run(run())
    stream_call = slack.wait_for("chat.startStream")
    assert stream_call.headers["content-type"].startswith("application/json")
    assert stream_call.json_field("markdown_text") == "x"


# ---------------------------------------------------------------- faults


def test_rate_limit_is_retried_after_retry_after(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    client = WebClient(
        token=BOT_TOKEN,
        base_url=slack.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    start = time.monotonic()
    resp = client.chat_postMessage(channel="C1", text="hi")
    elapsed = time.monotonic() - start
    assert resp["ok"]
    attempts = slack.calls_to("chat.postMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[0].response == {"ok": False, "error": "ratelimited"}
    assert elapsed >= 0.95
    assert attempts[1].at - attempts[0].at >= 0.95
    assert len(slack.messages("C1")) == 1  # the faulted attempt stored nothing


def test_server_error_is_retried(slack: FakeSlack) -> None:
    slack.fail_next("chat.postMessage", status=500, times=2)
    handler = ServerErrorRetryHandler(
        max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(fixed_internal=0.05)
    )
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[handler])
    assert client.chat_postMessage(channel="C1", text="hi")["ok"]
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [500, 500, 200]


def test_api_error_fault_delay_and_clear(slack: FakeSlack, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response["error"] == "channel_not_found"
    slack.delay("auth.test", 0.3)
    start = time.monotonic()
    client.auth_test()
    assert time.monotonic() - start >= 0.3
    slack.fail_next("auth.test", status=503, times=5)
    slack.clear_faults()
    start = time.monotonic()
    assert client.auth_test()["ok"]
    assert time.monotonic() - start < 0.3


def test_wait_for_timeout_lists_methods(slack: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(AssertionError, match=r"auth\.test\(200\)"):
        slack.wait_for("chat.postMessage", timeout=0.2)
    mark = slack.mark()
    client.chat_postMessage(channel="C1", text="one")
    client.chat_postMessage(channel="C1", text="two")
    assert (
        slack.wait_for("chat.postMessage", lambda c: c.params["text"] == "two", since=mark).params["text"]
        == "two"
    )


# ---------------------------------------------------------------- uploads and response_url


def test_files_upload_v2_stores_bytes(slack: FakeSlack, client: WebClient) -> None:
    data = bytes(range(256)) * 10
    resp = client.files_upload_v2(
        content=data,
        filename="report.bin",
        title="Report",
        channel="C1",
        initial_comment="here",
        thread_ts="1.1",
    )
    file_id = resp["file"]["id"]
    assert file_id.startswith("F123") and resp["file"]["title"] == "Report"
    assert slack.uploads[file_id] == data
    get_url = slack.wait_for("files.getUploadURLExternal")
    assert get_url.params["filename"] == "report.bin" and int(get_url.params["length"]) == len(data)
    complete = slack.wait_for("files.completeUploadExternal")
    assert complete.json_field("files")[0]["id"] == file_id
    assert slack.wait_for(f"upload:{file_id}").status == 200
    shared = slack.thread("C1", "1.1")[-1]
    assert shared["text"] == "here" and shared["files"][0]["id"] == file_id


def test_response_url_posts_are_recorded(slack: FakeSlack) -> None:
    url = slack.response_url("cmd1")
    assert url.endswith("/response/cmd1")
    resp = WebhookClient(url).send(text="done", response_type="in_channel")
    assert resp.status_code == 200
    call = slack.wait_for("response_url:cmd1")
    assert call.params == {"text": "done", "response_type": "in_channel"}


# ---------------------------------------------------------------- signing and HTTP transport


def test_sign_matches_test_vector() -> None:
    vector = load_fixture("signing/signature_test_vector.json")
    body = load_form_fixture("interactivity/slash_command.form.txt")
    assert body.decode() == vector["body"]
    headers = sign(body, vector["signing_secret"], int(vector["x_slack_request_timestamp"]))
    assert headers == {
        "X-Slack-Request-Timestamp": vector["x_slack_request_timestamp"],
        "X-Slack-Signature": vector["x_slack_signature"],
    }
    now = sign(b"{}", "s")
    verifier = SignatureVerifier("s")
    assert verifier.is_valid(b"{}", now["X-Slack-Request-Timestamp"], now["X-Slack-Signature"])


def test_post_signed_drives_bolt_over_http(slack: FakeSlack) -> None:
    secret = "http-secret"
    app = App(client=WebClient(token=BOT_TOKEN, base_url=slack.api_url), signing_secret=secret)
    seen: list[str] = []

    @app.event("app_mention")
    def on_mention(event, say) -> None:
        seen.append(event["text"])
        say(text="pong", thread_ts=event["ts"])

    @app.action("button")
    def on_button(ack, respond) -> None:
        ack()
        respond(text="clicked")

    class BoltHandler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            resp = app.dispatch(BoltRequest(body=body, headers=dict(self.headers.items())))
            payload = resp.body.encode()
            self.send_response(resp.status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), BoltHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    try:
        event = load_fixture("events/app_mention.json")
        assert post_signed(url, event, "wrong-secret").status == 401
        result = post_signed(url, event, secret)
        assert result.status == 200
        reply = slack.wait_for("chat.postMessage")
        assert reply.params["text"] == "pong" and reply.params["thread_ts"] == event["event"]["ts"]
        assert seen == [event["event"]["text"]]

        action = load_fixture("interactivity/block_actions_button_in_message.json")
        action["response_url"] = slack.response_url("button")
        assert post_signed(url, interactive_form_body(action), secret).status == 200
        assert slack.wait_for("response_url:button").params["text"] == "clicked"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---------------------------------------------------------------- Socket Mode


def test_bolt_socket_mode_events_api(slack: FakeSlack, socket_app: tuple[App, SocketModeHandler]) -> None:
    app, handler = socket_app
    ran = threading.Event()
    events: list[dict] = []

    @app.event("app_mention")
    def on_mention(event, say) -> None:
        events.append(event)
        say(text="hello back", thread_ts=event["ts"])
        ran.set()

    handler.connect()
    conn = slack.socket.wait_connected(timeout=10)
    assert conn.ticket in slack.tickets
    assert slack.wait_for("apps.connections.open").token == APP_TOKEN

    fixture = load_fixture("socket_mode/events_api.json")
    env_id = slack.socket.send("events_api", fixture["payload"])
    ack = slack.socket.wait_ack(env_id, timeout=5)
    assert ack == {"envelope_id": env_id}
    assert ran.wait(5)
    assert events[0]["text"] == fixture["payload"]["event"]["text"]
    post = slack.wait_for("chat.postMessage")
    assert post.params["channel"] == "C111" and post.params["text"] == "hello back"

    sent = slack.socket.envelopes[-1]
    assert list(sent) == list(fixture)  # same fields, same order as the real envelope
    assert sent["type"] == "events_api" and sent["retry_attempt"] == 0 and sent["retry_reason"] == ""
    record = slack.socket.wait_ack_record(env_id)
    assert record.latency is not None and 0 <= record.latency < 3
    assert record.envelope_type == "events_api"


def test_slash_command_ack_with_payload(slack: FakeSlack, socket_app: tuple[App, SocketModeHandler]) -> None:
    app, handler = socket_app

    @app.command("/hello-socket-mode")
    def hello(ack) -> None:
        ack("text")

    handler.connect()
    slack.socket.wait_connected()
    fixture = load_fixture("socket_mode/slash_commands.json")
    env_id = slack.socket.send("slash_commands", fixture["payload"])
    assert list(slack.socket.envelopes[-1]) == list(fixture)
    assert slack.socket.envelopes[-1]["accepts_response_payload"] is True
    ack = slack.socket.wait_ack(env_id)
    assert ack["envelope_id"] == env_id
    assert ack["payload"] == {"text": "text"}


def test_redelivery_envelope_shape(slack: FakeSlack, socket_app: tuple[App, SocketModeHandler]) -> None:
    app, handler = socket_app
    retries: list[tuple[int | None, str | None]] = []

    @app.event("message")
    def on_message(context) -> None:  # bolt does not ack unhandled events (404), so handle it
        retries.append((context.get("retry_num"), context.get("retry_reason")))

    handler.connect()
    slack.socket.wait_connected()
    fixture = load_fixture("socket_mode/events_api_retry.json")
    env_id = slack.socket.send("events_api", fixture["payload"], retry_attempt=1, retry_reason="timeout")
    sent = slack.socket.envelopes[-1]
    assert {k: v for k, v in sent.items() if k != "envelope_id"} == {
        k: v for k, v in fixture.items() if k != "envelope_id"
    }
    assert slack.socket.wait_ack(env_id)["envelope_id"] == env_id


def test_sdk_socket_mode_client_large_frame_ping_pong_and_reconnect() -> None:
    with FakeSlack(socket_ping_interval=0.2) as slack:
        smc = SocketModeClient(
            app_token=APP_TOKEN, web_client=WebClient(base_url=slack.api_url), ping_interval=1
        )
        received: list[str] = []

        def listener(client: SocketModeClient, req: SocketModeRequest) -> None:
            received.append(req.type)
            client.send_socket_mode_response(
                SocketModeResponse(envelope_id=req.envelope_id, payload={"n": 1})
            )

        smc.socket_mode_request_listeners.append(listener)
        try:
            smc.connect()
            first = slack.socket.wait_connected()
            # ~127 KB fixture (about 67 KB as compact JSON): a 64-bit-length frame split over many recv()s
            big = load_fixture("socket_mode/interactive_block_actions_modal_static_select.json")
            env_id = slack.socket.send("interactive", big["payload"])
            assert slack.socket.wait_ack(env_id) == {"envelope_id": env_id, "payload": {"n": 1}}

            time.sleep(1.0)  # the server pings every 0.2 s and would drop a client that doesn't pong
            assert first.is_open
            assert smc.current_session is not None and smc.current_session.last_ping_pong_time is not None

            slack.socket.send_disconnect("refresh_requested")
            second = slack.socket.wait_connected(count=2)
            assert second.id != first.id
            assert len(slack.calls_to("apps.connections.open")) == 2
            env_id = slack.socket.send("events_api", load_fixture("events/app_mention.json"))
            assert slack.socket.wait_ack(env_id)["envelope_id"] == env_id

            slack.socket.close_connections()  # close frame: the builtin client reconnects
            third = slack.socket.wait_connected(count=3)
            env_id = slack.socket.send("events_api", load_fixture("events/app_mention.json"))
            ack = slack.socket.wait_ack_record(env_id)
            assert ack.connection_id == third.id
            assert received.count("events_api") == 2
        finally:
            close_socket_mode(smc)
        slack.socket.wait_disconnected()


def test_stop_releases_threads_and_ports() -> None:
    before = set(threading.enumerate())
    with FakeSlack() as slack:
        WebClient(token=BOT_TOKEN, base_url=slack.api_url).auth_test()
        ports = (slack.port, slack.socket.port)
    for port in ports:
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leftover == []


def test_http_form_bodies_parse(slack: FakeSlack) -> None:
    body = json.dumps({"channel": "C1", "text": "json body"}).encode()
    import urllib.request

    req = urllib.request.Request(
        slack.api_url + "chat.postMessage?unfurl_links=false",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {BOT_TOKEN}"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.loads(resp.read())["ok"] is True
    call = slack.wait_for("chat.postMessage")
    assert call.params == {"unfurl_links": "false", "channel": "C1", "text": "json body"}
    with urllib.request.urlopen(slack.api_url + f"auth.test?token={BOT_TOKEN}", timeout=5) as resp:
        assert json.loads(resp.read())["user_id"] == "UBOT"
