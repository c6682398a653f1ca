"""Logging setup. Secrets (Slack tokens, provider keys, bearer tokens…) are masked in every line,
tracebacks included: the filter rewrites the message, the formatter the finished line."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from bot.core.redaction import redact_secrets

if TYPE_CHECKING:
    from bot.config import Settings

# The configured secrets themselves (a signing secret has no recognisable shape): masked wherever
# they appear. Short values are skipped, so a placeholder such as "x" cannot blank every line.
_literals: set[str] = set()
_literals_lock = threading.Lock()
MIN_LITERAL = 8


def register_secrets(settings: Settings) -> None:
    """Mask the Slack tokens, the signing secret and every tier's API key of `settings` in logs."""
    from bot.config import env_value

    values = [
        s.get_secret_value()
        for s in (settings.slack_bot_token, settings.slack_signing_secret, settings.slack_app_token)
        if s
    ]
    values += [env_value(t.api_key_env) or "" for t in settings.tiers.values() if t.api_key_env]
    with _literals_lock:
        _literals.update(v for v in values if len(v) >= MIN_LITERAL)


def _mask(text: str) -> str:
    text = redact_secrets(text)
    for literal in _literals:
        if literal in text:
            text = text.replace(literal, "[secret]")
    return text


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message (for handlers that use their own formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _mask(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """Masks secrets in the whole formatted line, so an exception's text cannot leak one either."""

    def format(self, record: logging.LogRecord) -> str:
        return _mask(super().format(record))


def setup_logging(level: str = "INFO", settings: Settings | None = None) -> None:
    if settings is not None:
        register_secrets(settings)
    root = logging.getLogger()
    if not any(isinstance(f, RedactSecrets) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactSecrets())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("LiteLLM", "httpx", "urllib3", "slack_sdk", "apscheduler", "alembic", "bm25s"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
