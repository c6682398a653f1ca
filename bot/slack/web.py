"""The Slack Web API client: token, base URL (SLACK_API_URL) and retry handlers in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.config import Settings


def make_client(settings: Settings) -> WebClient:
    """A WebClient that retries 429 (honouring Retry-After), 5xx and dropped connections."""
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    if settings.slack_bot_token is None:
        raise ValueError("SLACK_BOT_TOKEN is not set")
    base_url = settings.slack_api_url or "https://slack.com/api/"
    if not base_url.endswith("/"):
        base_url += "/"  # WebClient appends the method name directly
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=base_url,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )
