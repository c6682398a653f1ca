"""Getting an answer to the user: progress while the model works, the answer itself, ephemeral notes,
and the ledger's note of which Slack message answers which request.

Slack failures end here: after the client's own retries (429 with Retry-After, 5xx, dropped
connections) a message that still cannot be posted is logged with its request id. The ledger row
was written by the engine before any posting, so it is kept either way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.adapters.slack.blocks import Message, progress_message, reply_messages
from bot.models.queue import position_text
from bot.observability import tracing

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.core.types import Reply
    from bot.ledger.store import Ledger

log = logging.getLogger(__name__)

# Errors reaching Slack: API errors, and transport errors once the retry handlers gave up.
SLACK_FAILURES = (SlackClientError, OSError)
ASSISTANT_STATUS = "is thinking…"
# chat.update on a message still streaming (methods/chat/chat.update.json).
STREAMING_CONFLICT = "streaming_state_conflict"
# chat.stopStream on a stream that is not open any more (web_api/streaming_errors.json).
STREAM_CLOSED = ("message_not_in_streaming_state", "stopped_by_user")
# A finished stream Slack would take nothing of (stop, update, post all refused): the caller keeps
# the reply on its work item and the worker delivers it again over the streamed message.
UNDELIVERED = "undelivered"


def slack_error(exc: BaseException) -> str:
    """The short reason of a failed call (`not_in_channel`, `ratelimited`, …), never the token."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or exc.response.status_code)
    return type(exc).__name__


@dataclass(frozen=True)
class Target:
    """Where an answer goes and how to reach the asker."""

    channel: str
    user: str
    thread_ts: str | None = None  # answer in this thread; None: at the channel (or DM) root
    assistant_thread: bool = False  # a DM assistant thread: progress via assistant.threads.setStatus
    asked: str | None = None  # mrkdwn line heading the answer when the question is not above it
    respond: Callable[..., Any] | None = None  # the payload's response_url (commands, shortcuts, clicks)
    notes_via_respond: bool = False  # slash commands: ephemeral notes via response_url first
    label: str | None = None  # one line under the answer (the built-in model's label)


class Progress:
    """Shows that work is under way, but only once it is slow.

    In assistant threads the status line is set at once (it costs the user nothing). Elsewhere a
    placeholder message appears after `delay` seconds, so fast outcomes (refusals, duplicates,
    quick answers) never flash a placeholder; a slow answer replaces it via chat.update.
    """

    def __init__(self, client: WebClient, target: Target, delay: float, stop_key: str | None = None) -> None:
        self.client = client
        self.target = target
        self.delay = delay
        self.stop_key = stop_key  # the placeholder offers a Stop button for this running answer
        self.placeholder_ts: str | None = None  # preset: a placeholder left by a replica that died
        self.on_placeholder: Callable[[str | None], None] | None = None  # durable work notes it
        self._status_set = False
        self._done = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        if self.placeholder_ts is not None:  # already on screen: the answer replaces it
            return
        if self.target.assistant_thread and self.target.thread_ts and self._set_status(ASSISTANT_STATUS):
            self._status_set = True
            return
        self._timer = threading.Timer(self.delay, self._show)
        self._timer.daemon = True
        self._timer.start()

    def finish(self) -> str | None:
        """Stop showing progress; returns the placeholder's ts when one is on screen."""
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:  # waits for a placeholder post already in flight
            self._done = True
            return self.placeholder_ts

    def withdraw(self) -> None:
        """Nothing will be posted: remove the placeholder, clear the status."""
        ts = self.finish()
        if ts is not None:
            try:
                self.client.chat_delete(channel=self.target.channel, ts=ts)
            except SLACK_FAILURES as exc:
                log.warning(
                    "could not delete placeholder %s in %s: %s", ts, self.target.channel, slack_error(exc)
                )
        if self._status_set:
            self._set_status("")

    def queued(self, ahead: int) -> None:
        """Waiting for the model: show the queue position at once (0: our turn has come)."""
        if self._status_set:
            self._set_status(f"is waiting: {position_text(ahead)}" if ahead else ASSISTANT_STATUS)
            return
        if self._timer is not None:
            self._timer.cancel()
        status = position_text(ahead) if ahead else None
        with self._lock:
            if self._done:
                return
            if self.placeholder_ts is None:
                self._post_placeholder(status)
                return
            message = progress_message(self.target.asked, status, self.stop_key)
            try:
                self.client.chat_update(
                    channel=self.target.channel,
                    ts=self.placeholder_ts,
                    text=message.text,
                    blocks=message.blocks,
                )
            except SLACK_FAILURES as exc:
                log.info("queue position not shown in %s: %s", self.target.channel, slack_error(exc))

    def _show(self) -> None:
        with self._lock:
            if self._done or self.placeholder_ts is not None:
                return
            self._post_placeholder(None)

    def _post_placeholder(self, status: str | None) -> None:
        """Post the placeholder (the caller holds the lock)."""
        message = progress_message(self.target.asked, status, self.stop_key)
        try:
            response = self.client.chat_postMessage(
                channel=self.target.channel,
                thread_ts=self.target.thread_ts,
                text=message.text,
                blocks=message.blocks,
            )
        except SLACK_FAILURES as exc:  # the answer will still be posted (or fall back) later
            log.info("no placeholder in %s: %s", self.target.channel, slack_error(exc))
            return
        self.placeholder_ts = response.get("ts")
        if self.on_placeholder is not None:
            self.on_placeholder(self.placeholder_ts)

    def _set_status(self, status: str) -> bool:
        try:
            self.client.assistant_threads_setStatus(
                channel_id=self.target.channel, thread_ts=self.target.thread_ts or "", status=status
            )
        except SLACK_FAILURES as exc:  # not an assistant thread after all: use a placeholder
            log.debug("assistant status unavailable in %s: %s", self.target.channel, slack_error(exc))
            return False
        return True


class Courier:
    """Posts replies and notes; remembers every answer message in the ledger."""

    def __init__(self, client: WebClient, ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger

    @tracing.traced("slack.deliver", lambda posted, self, reply, *_: {"slack.messages": len(posted)})
    def deliver(self, reply: Reply, target: Target, progress: Progress) -> list[str]:
        """Show `reply` to the user; returns the ts of the messages posted."""
        if reply.status == "duplicate":  # a redelivered event: it was (or is being) answered once
            progress.withdraw()
            return []
        if reply.status in ("refused", "rejected"):
            progress.withdraw()
            self.notify(target, reply.text)
            return []
        placeholder = progress.finish()
        messages = reply_messages(reply, asked=target.asked, label=target.label)
        posted: list[str] = []
        thread = target.thread_ts
        for index, message in enumerate(messages):
            if index == 0 and placeholder:
                ts = self._replace(target.channel, placeholder, message, thread, reply.request_id)
            else:
                ts = self._post(target.channel, thread, message, reply.request_id)
            if ts is None:
                if index == 0 and target.respond is not None:
                    self._respond_instead(target, messages, reply.request_id)
                break
            thread = thread or ts  # later parts of a long answer go in the first part's thread
            posted.append(ts)
            self._remember(target.channel, ts, reply.request_id, thread)
        return posted

    def notify(self, target: Target, text: str) -> None:
        """A short ephemeral note to the asker (refusals, usage hints, confirmations)."""
        routes = [self._ephemeral_by_api, self._ephemeral_by_response_url]
        if target.notes_via_respond:
            routes.reverse()
        for route in routes:
            if route(target, text):
                return
        log.warning("could not tell %s in %s: %s", target.user, target.channel, text[:200])

    # Posting -----------------------------------------------------------------------------------

    def _post(self, channel: str, thread: str | None, message: Message, request_id: str | None) -> str | None:
        try:
            response = self.client.chat_postMessage(
                channel=channel,
                thread_ts=thread,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SLACK_FAILURES as exc:
            log.error(
                "could not post the answer to request %s in %s: %s (the ledger row is kept)",
                request_id,
                channel,
                slack_error(exc),
            )
            return None
        return response.get("ts")

    def _replace(
        self, channel: str, ts: str, message: Message, thread: str | None, request_id: str | None
    ) -> str | None:
        """Turn the placeholder into the answer; if it cannot be updated, post anew and drop it."""
        for attempt in range(2):
            try:
                self.client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)
                return ts
            except SLACK_FAILURES as exc:
                if (
                    attempt == 0
                    and slack_error(exc) == STREAMING_CONFLICT
                    and self._stop_stale_stream(channel, ts)
                ):
                    continue  # a stream left open by a replica that died: stopped now, so editable
                log.warning(
                    "could not update placeholder %s for request %s: %s", ts, request_id, slack_error(exc)
                )
                break
        posted = self._post(channel, thread, message, request_id)
        if posted is None:  # kept for the next try: it may be a half-streamed answer, not just a note
            return None
        try:
            self.client.chat_delete(channel=channel, ts=ts)
        except SLACK_FAILURES as exc:
            log.info("placeholder %s left in %s: %s", ts, channel, slack_error(exc))
        return posted

    def _stop_stale_stream(self, channel: str, ts: str) -> bool:
        """Close a stream whose writer is gone (chat.update refuses a message still streaming).
        Slack's documented errors for a stream no longer open mean there is nothing left to stop."""
        try:
            self.client.chat_stopStream(channel=channel, ts=ts)
        except SLACK_FAILURES as exc:
            if slack_error(exc) not in STREAM_CLOSED:
                log.warning("could not stop stale stream %s in %s: %s", ts, channel, slack_error(exc))
                return False
        log.info("stopped stale stream %s in %s", ts, channel)
        return True

    def _respond_instead(self, target: Target, messages: list[Message], request_id: str | None) -> None:
        """The bot cannot post here (not a member, a DM between people): answer via response_url."""
        assert target.respond is not None
        for message in messages:
            try:
                target.respond(
                    text=message.text,
                    blocks=message.blocks,
                    response_type="in_channel",
                    replace_original=False,
                )
            except SLACK_FAILURES as exc:
                log.error("could not respond with the answer to request %s: %s", request_id, slack_error(exc))
                return

    def remember(self, channel: str, ts: str, request_id: str | None, thread: str | None) -> None:
        """Note that message `ts` answers `request_id` (reactions, follow-ups, feedback)."""
        self._remember(channel, ts, request_id, thread)

    def _remember(self, channel: str, ts: str, request_id: str | None, thread: str | None) -> None:
        if not request_id:
            return
        try:
            self.ledger.remember_message(channel, ts, request_id, thread_ts=thread)
        except Exception:  # the answer is out; losing the mapping only costs reactions/follow-ups
            log.exception("could not remember message %s/%s for request %s", channel, ts, request_id)

    # Ephemeral notes ---------------------------------------------------------------------------

    def _ephemeral_by_api(self, target: Target, text: str) -> bool:
        try:
            self.client.chat_postEphemeral(
                channel=target.channel, user=target.user, text=text, thread_ts=target.thread_ts
            )
        except SLACK_FAILURES as exc:
            log.info("no ephemeral note in %s: %s", target.channel, slack_error(exc))
            return False
        return True

    def _ephemeral_by_response_url(self, target: Target, text: str) -> bool:
        if target.respond is None:
            return False
        try:
            response = target.respond(text=text, response_type="ephemeral", replace_original=False)
        except SLACK_FAILURES as exc:
            log.info("no response_url note: %s", slack_error(exc))
            return False
        return getattr(response, "status_code", 200) == 200
