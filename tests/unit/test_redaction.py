"""Redaction detectors: what each one catches, what it must leave alone, and the log filter."""

from __future__ import annotations

import logging

import pytest

from bot.core.redaction import DETECTORS, detectors, luhn_ok, redact, redact_secrets
from bot.observability.logs import RedactingFormatter, RedactSecrets


@pytest.mark.parametrize(
    ("text", "expected", "count"),
    [
        ("mail jane.doe+hr@example.co.uk today", "mail [email] today", 1),
        ("<mailto:a.b@larkspur.example|a.b@larkspur.example>", "<mailto:[email]|[email]>", 2),
        ("call +44 20 7946 0958 now", "call [phone] now", 1),
        ("call (555) 123-4567 or 555.123.4567", "call [phone] or [phone]", 2),
        ("+351912345678 is my mobile", "[phone] is my mobile", 1),
        ("card 4111 1111 1111 1111 ok", "card [card] ok", 1),
        ("card 5500-0000-0000-0004 ok", "card [card] ok", 1),
        ("amex 378282246310005", "amex [card]", 1),
        ("bot xoxb-1234567890-abcdefghij", "bot [secret]", 1),
        ("app xapp-1-A111-111-fakeapptoken", "app [secret]", 1),
        ("key sk-proj-abcdefghijklmnop1234", "key [secret]", 1),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [secret]", 1),
        ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [secret]", 1),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456", "Authorization: [secret]", 1),
        ("hook https://hooks.slack.com/services/T000/B000/XXXXXXXX", "hook [secret]", 1),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "jwt [secret]",
            1,
        ),
    ],
)
def test_each_detector_catches_its_kind(text: str, expected: str, count: int) -> None:
    assert redact(text) == (expected, count)


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 fails Luhn",  # a checksum that does not add up is not a card
        "Slack ts 1700000000.123456 in a thread",
        "on 2026-11-10 12:00 the invoice 1234567890 was paid",
        "server 192.168.100.200 answered",
        "version 1.2.3 of risk-assessment and desk-booking",
        "order #12345, total 1,234,567.89 EUR",
        "the task-manager sk-short is fine",
        "see the risk-assessment-procedures-2026-edition page",  # "sk-…" inside a word is no key
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert redact(text) == (text, 0)


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")


def test_redaction_is_idempotent() -> None:
    once, n = redact("a@b.example 4111111111111111 xoxb-1234567890-abcdefghij +44 20 7946 0958")
    assert n == 4
    assert redact(once) == (once, 0)


def test_only_the_chosen_detectors_run() -> None:
    text = "a@b.example 4111111111111111"
    assert redact(text, ["card"]) == ("a@b.example [card]", 1)
    assert redact(text, []) == (text, 0)


def test_an_unknown_detector_is_named() -> None:
    with pytest.raises(ValueError, match="unknown redaction detector\\(s\\) ssn"):
        detectors(["email", "ssn"])
    assert [d.name for d in detectors(DETECTORS)] == ["secret", "email", "card", "phone"]


def test_log_lines_lose_secrets_even_inside_tracebacks() -> None:
    record = logging.LogRecord(
        "t", logging.ERROR, __file__, 1, "token %s leaked", ("xoxb-1234567890-abcdefghij",), None
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "token [secret] leaked"
    try:
        raise RuntimeError("provider said: bad key sk-proj-abcdefghijklmnop1234")
    except RuntimeError:
        import sys

        failing = logging.LogRecord("t", logging.ERROR, __file__, 1, "call failed", None, sys.exc_info())
    line = RedactingFormatter("%(message)s").format(failing)
    assert "Traceback" in line and "bad key [secret]" in line and "sk-proj-" not in line
    assert redact_secrets("mail a@b.example") == "mail a@b.example"  # logs keep addresses and ids


def test_configured_secrets_of_any_shape_are_masked_in_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.config import load_settings
    from bot.observability import logs

    monkeypatch.setattr(logs, "_literals", set())
    monkeypatch.setenv("MY_VLLM_KEY", "plain-vllm-key-4242")
    settings = load_settings(
        slack_signing_secret="plain-signing-secret-0042",
        slack_bot_token="short",  # too short to mask safely: left alone
        tiers={
            "small": {"model": "openai/m", "api_base": "http://127.0.0.1:9/v1", "api_key_env": "MY_VLLM_KEY"}
        },
    )
    logs.register_secrets(settings)
    record = logging.LogRecord(
        "t",
        logging.INFO,
        __file__,
        1,
        "sig %s key %s bot %s",
        ("plain-signing-secret-0042", "plain-vllm-key-4242", "short"),
        None,
    )
    assert RedactingFormatter("%(message)s").format(record) == "sig [secret] key [secret] bot short"
