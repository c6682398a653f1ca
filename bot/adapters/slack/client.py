"""The Web API client: base URL from settings (tests, GovSlack), retries on 429, 5xx and dropped connections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_sdk import WebClient
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

if TYPE_CHECKING:
    from bot.config import Settings

DEFAULT_API_URL = "https://slack.com/api/"


class AnyServerErrorRetryHandler(ServerErrorRetryHandler):
    """slack_sdk's handler retries only 500 and 503; a 502/504 from a proxy is just as transient."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and 500 <= response.status_code < 600


def api_base_url(url: str | None) -> str:
    """`WebClient(base_url=...)` joins method names onto it, so it must end with a slash."""
    url = (url or DEFAULT_API_URL).strip()
    return url if url.endswith("/") else url + "/"


def retry_handlers() -> list[RetryHandler]:
    """429s wait for Retry-After (3 tries); 5xx and connection errors back off (2 tries each)."""
    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=3),
        AnyServerErrorRetryHandler(max_retry_count=2),
    ]


def make_client(settings: Settings, timeout: int = 30) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=api_base_url(settings.slack_api_url),
        timeout=timeout,
        retry_handlers=retry_handlers(),
    )
