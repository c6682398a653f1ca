"""Logging setup. Secrets (Slack tokens, provider keys, bearer tokens…) are masked in every line,
tracebacks included: the filter rewrites the message, the formatter the finished line."""

from __future__ import annotations

import logging

from bot.redaction import redact_secrets


class RedactSecrets(logging.Filter):
    """Masks secrets in a record's message (for handlers that use their own formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_secrets(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class RedactingFormatter(logging.Formatter):
    """Masks secrets in the whole formatted line, so an exception's text cannot leak one either."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


def redact(text: str) -> str:
    return redact_secrets(text)


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(isinstance(f, RedactSecrets) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactSecrets())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("LiteLLM", "httpx", "urllib3", "slack_sdk", "apscheduler", "alembic", "bm25s"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
