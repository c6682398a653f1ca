"""A fake Slack for tests: Web API over HTTP, Socket Mode over WebSocket, webhooks and file uploads.

Everything listens on 127.0.0.1 with ephemeral ports and runs in background threads, so the real
``slack_sdk`` / ``slack_bolt`` clients talk to it over real sockets::

    with FakeSlack() as slack:
        client = WebClient(token=BOT_TOKEN, base_url=slack.api_url)
        client.chat_postMessage(channel="C111", text="hi")
        assert slack.wait_for("chat.postMessage").params["text"] == "hi"

Socket Mode (the real ``SocketModeHandler`` with the builtin client)::

    app = App(client=WebClient(token=BOT_TOKEN, base_url=slack.api_url))
    handler = SocketModeHandler(app, APP_TOKEN)
    handler.connect()
    slack.socket.wait_connected()
    env_id = slack.socket.send("events_api", load_fixture("events/app_mention.json"))
    ack = slack.socket.wait_ack(env_id)      # {"envelope_id": env_id} (+ "payload" if ack(...) had one)
    close_socket_mode(handler)               # close the client before the fake stops (fast close)

Note: bolt does not ack envelopes that no listener handles (it answers 404 internally), so wait_ack
times out for unhandled event types; register a listener for what you send.

Response shapes follow the ``examples.success`` of tests/fixtures/slack/methods/docs.slack.dev/*.json.
Times recorded here (``Call.at``, ``Ack.sent_at`` / ``Ack.received_at``) are ``time.monotonic()``.
Only the standard library and ``websockets`` are used for the servers (``pytest`` for the optional
``fake_slack`` fixture; ``slack_sdk`` lazily in ``FakeSlack.web_client``; ``jsonschema`` only with
``validate_blocks=True``). Caveat: slack_sdk honours ``HTTP(S)_PROXY`` env vars and ignores ``NO_PROXY``,
so unset them in tests that use the fake.

Modules, by concern (import the public names from this package):
  state.py        what the fake holds and records for assertions (calls, messages, streams, views, files)
  web_api.py      the Web API methods: argument checks, documented errors and limits, response shapes
  socket_mode.py  the Socket Mode WebSocket server, its envelopes and the acks it records
  signing.py      request signatures and signed HTTP posts of events/interactions to a bot
  server.py       FakeSlack itself: the HTTP server, fault injection, lifecycle; the pytest fixture
  fixtures.py     fixture files under tests/fixtures/slack and the tokens
"""

from tests.fakes.fake_slack.fixtures import (
    APP_TOKEN,
    BOT_TOKEN,
    FIXTURES_DIR,
    load_fixture,
    load_form_fixture,
)
from tests.fakes.fake_slack.server import FakeSlack, fake_slack
from tests.fakes.fake_slack.signing import (
    SIGNING_SECRET,
    HttpResult,
    form_body,
    interactive_form_body,
    post_signed,
    sign,
)
from tests.fakes.fake_slack.socket_mode import Ack, FakeSocketMode, SocketConnection, close_socket_mode
from tests.fakes.fake_slack.state import Call, Headers

__all__ = [
    "APP_TOKEN",
    "BOT_TOKEN",
    "FIXTURES_DIR",
    "SIGNING_SECRET",
    "Ack",
    "Call",
    "FakeSlack",
    "FakeSocketMode",
    "Headers",
    "HttpResult",
    "SocketConnection",
    "close_socket_mode",
    "fake_slack",
    "form_body",
    "interactive_form_body",
    "load_fixture",
    "load_form_fixture",
    "post_signed",
    "sign",
]
