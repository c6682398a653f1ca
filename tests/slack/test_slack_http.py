"""The HTTP transport: request signing, url_verification, /healthz, and the server's own limits."""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.fakes.fake_slack import SIGNING_SECRET, load_fixture, post_signed
from tests.slack_helpers import (
    BotEnv,
    event_body,
    http_bot_fixture,  # noqa: F401 (fixture)
    mention,
    slack_fixture,  # noqa: F401 (fixture)
)

pytestmark = pytest.mark.timeout(30)


def _get(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_healthz_and_unknown_paths(http_bot: BotEnv) -> None:
    base = http_bot.url.removesuffix("/slack/events")
    assert _get(f"{base}/healthz") == (200, b'{"ok": true}')
    assert _get(f"{base}/nope")[0] == 404
    assert post_signed(f"{base}/other", {"type": "x"}, SIGNING_SECRET).status == 404


def test_url_verification_answers_its_challenge(http_bot: BotEnv) -> None:
    body = load_fixture("events/url_verification.json")
    result = post_signed(http_bot.url, body, SIGNING_SECRET)
    assert result.status == 200
    assert result.json()["challenge"] == body["challenge"]


def _a_mention(http_bot: BotEnv) -> dict:
    ts = http_bot.slack.add_message("C111", "<@UBOT> hi", "UUSER")
    return event_body(mention("hi", ts), http_bot.next_id())


def test_unsigned_or_stale_requests_are_rejected(http_bot: BotEnv) -> None:
    bad_secret = post_signed(http_bot.url, _a_mention(http_bot), "not-the-secret")
    stale = post_signed(http_bot.url, _a_mention(http_bot), SIGNING_SECRET, timestamp=int(time.time()) - 301)
    assert (bad_secret.status, stale.status) == (401, 401)
    http_bot.settle()
    assert http_bot.rows() == []
    assert not http_bot.slack.calls_to("chat.postMessage")
    fresh = post_signed(http_bot.url, _a_mention(http_bot), SIGNING_SECRET, timestamp=int(time.time()) - 250)
    assert fresh.status == 200
    http_bot.settle()
    assert len(http_bot.rows()) == 1


def _status_for_headers(url: str, headers: dict[str, str]) -> int:
    """POST headers only: the server must decide from them, without reading a body."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        connection.putrequest("POST", parts.path)
        for key, value in headers.items():
            connection.putheader(key, value)
        connection.endheaders()
        return connection.getresponse().status
    finally:
        connection.close()


def test_body_limits(http_bot: BotEnv) -> None:
    assert _status_for_headers(http_bot.url, {"Content-Length": "2000000"}) == 413
    assert _status_for_headers(http_bot.url, {"Transfer-Encoding": "chunked"}) == 411
