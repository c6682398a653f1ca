"""Talking to a bot as Slack does over HTTP: v0 request signatures, the form bodies of slash commands and
interactions, and signed POSTs of events/commands/interactions to the bot's endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

SIGNING_SECRET = "fake-signing-secret-0123456789ab"


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack request-signing headers (v0 scheme) for ``body``.

    basestring = ``v0:{timestamp}:{raw body}``, signature = ``v0=`` + hex HMAC-SHA256(secret, basestring).
    ``timestamp`` defaults to now (``int(time.time())``).
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    base = b"v0:" + str(ts).encode("ascii") + b":" + body
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def form_body(fields: dict[str, Any]) -> bytes:
    """``application/x-www-form-urlencoded`` body, as Slack sends slash commands."""
    return urllib.parse.urlencode({k: "" if v is None else str(v) for k, v in fields.items()}).encode()


def interactive_form_body(payload: dict) -> bytes:
    """The HTTP body Slack POSTs for interactivity: ``payload=<url-encoded compact JSON>``."""
    return urllib.parse.urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


@dataclass
class HttpResult:
    """Result of :func:`post_signed`."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def post_signed(
    url: str,
    body: bytes | str | dict,
    secret: str,
    *,
    content_type: str | None = None,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> HttpResult:
    """POST a Slack-signed request to a bot's HTTP endpoint (the HTTP transport), like Slack does.

    ``body``: raw bytes/str are sent unchanged; a dict is sent as compact JSON. ``content_type`` defaults
    to ``application/json`` for dicts and bodies starting with ``{``, else form-encoded.
    ``retry_num`` / ``retry_reason`` add ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason``.
    Non-2xx responses are returned, not raised.
    """
    if isinstance(body, dict):
        raw = json.dumps(body, separators=(",", ":")).encode()
    elif isinstance(body, str):
        raw = body.encode("utf-8")
    else:
        raw = body
    if content_type is None:
        content_type = (
            "application/json" if raw.lstrip().startswith(b"{") else "application/x-www-form-urlencoded"
        )
    all_headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)"}
    all_headers.update(sign(raw, secret, timestamp))
    if retry_num is not None:
        all_headers["X-Slack-Retry-Num"] = str(retry_num)
        all_headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    if headers:
        all_headers.update(headers)
    req = urllib.request.Request(url, data=raw, headers=all_headers, method="POST")
    start = time.monotonic()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            data = resp.read()
            return HttpResult(resp.status, dict(resp.headers.items()), data, time.monotonic() - start)
    except urllib.error.HTTPError as e:
        data = e.read()
        return HttpResult(e.code, dict(e.headers.items()), data, time.monotonic() - start)
