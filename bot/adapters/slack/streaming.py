"""Native streaming of an answer into Slack: chat.startStream → appendStream… → stopStream.

The model thread hands text to `AnswerStream.feed`; a sender thread of the stream posts it, so a slow
Slack call never holds up the model. The first text goes out at once (chat.startStream carries it);
later text is batched so that one answer makes at most one chat.appendStream call per
`APPEND_INTERVAL` (the method is Tier 4: 100+ calls a minute). Footer and feedback buttons are attached
by chat.stopStream. A streamed message is rolled over into a new one in the same thread before it
reaches Slack's ~12,000-character cap.

Steps of our own (a structured skill at work, an escalation to a stronger tier) are `task_update`
chunks, which Slack renders as task cards in the answer's timeline: each step is `in_progress` until
the next one starts (then `complete`) or the answer ends (`complete`, or `error` when it failed). Text
and steps go out in their order, in the same batched calls; without a step a call carries plain
`markdown_text`, as the SDK's own helper does.

When Slack refuses the stream at the start (Slack Connect users, `user_not_found`, old workspaces) the
caller posts the answer instead; when it breaks later, `finish` turns what was streamed into the full
answer with chat.update (or posts it anew and removes the partial one). Either way the answer arrives
once, and the ledger is told which path delivered it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.adapters.slack.blocks import neutralise, reply_messages, stream_final_blocks
from bot.adapters.slack.delivery import SLACK_FAILURES, UNDELIVERED, Target, slack_error
from bot.models.queue import position_text

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.core.types import Reply

log = logging.getLogger(__name__)

APPEND_INTERVAL = 0.65  # s between appendStream calls of one answer: ~92 a minute, under Tier 4 (100+)
CALL_TEXT_MAX = 12_000  # markdown_text per start/append/stop call (documented)
MESSAGE_TEXT_MAX = 11_000  # per streamed message: below the observed ~12,000 cumulative cap
PING_LOOKBACK = 24  # a `<!channel>` or `<@U…>` split across deltas is held back this far
LOADING_MESSAGES = ["Reading your question…", "Choosing the context…", "Asking the model…"]
THINKING = "is thinking…"

IDLE, STREAMING, REFUSED, BROKEN, STOPPED, DONE = "idle", "streaming", "refused", "broken", "stopped", "done"
_OPEN_PING = re.compile(r"[<@][^>\s]*$")


class PingGuard:
    """Neutralises pings in streamed text, holding back a tail that may be the start of one."""

    def __init__(self) -> None:
        self.tail = ""

    def push(self, text: str) -> str:
        self.tail += text
        match = _OPEN_PING.search(self.tail[-PING_LOOKBACK:])
        cut = len(self.tail) - (len(match.group(0)) if match else 0)
        out, self.tail = self.tail[:cut], self.tail[cut:]
        return neutralise(out)

    def flush(self) -> str:
        out, self.tail = self.tail, ""
        return neutralise(out)


def _pieces(text: str, limit: int) -> list[str]:
    return [text[i : i + limit] for i in range(0, len(text), limit)] or [""]


class AnswerStream:
    """One answer streamed into one thread. `feed`/`step` from the model thread, `finish` at the end."""

    def __init__(
        self,
        client: WebClient,
        target: Target,
        team_id: str | None,
        received: float,
        stop: threading.Event | None = None,
        interval: float = APPEND_INTERVAL,
    ) -> None:
        assert target.thread_ts, "Slack streams only into threads"
        self.client = client
        self.target = target
        self.team_id = team_id
        self.received = received  # time.monotonic() when the request reached the bot
        self.stop = stop or threading.Event()
        self.interval = interval
        self.state = IDLE
        self.ts: list[str] = []  # the streamed messages (more than one after a rollover)
        self.on_start: Callable[[str], None] | None = None  # durable work notes the stream's message
        self.first_visible: float | None = None
        self.appends = 0
        self.error: str | None = None
        self._sent = 0  # characters in the current streamed message
        self._pending = ""  # text not sent yet (after the chunks in `_queued`)
        self._queued: list[dict[str, Any]] = []  # chunks not sent yet, in order: text and steps
        self._step: dict[str, Any] | None = None  # the step in progress (a task_update chunk)
        self._steps = 0
        self._guard = PingGuard()
        self._last_call = float("-inf")
        self._closing = False
        self._idle = False  # the sender waits for text (not for the append interval)
        self._starting = False  # the model thread is sending the first text
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="tierwise-stream", daemon=True)
        self._thread.start()

    # Model side ---------------------------------------------------------------------------------

    def loading(self) -> None:
        """Rotating loading messages under the thread while context is chosen and the model starts."""
        try:
            self.client.assistant_threads_setStatus(
                channel_id=self.target.channel,
                thread_ts=self.target.thread_ts or "",
                status=THINKING,
                loading_messages=LOADING_MESSAGES,
            )
        except SLACK_FAILURES as exc:  # cosmetic: the stream itself shows progress soon enough
            log.debug("no loading status in %s: %s", self.target.channel, slack_error(exc))

    def queued(self, ahead: int) -> None:
        """Waiting for the built-in model: the queue position as the thread's status (0: our turn)."""
        try:
            self.client.assistant_threads_setStatus(
                channel_id=self.target.channel,
                thread_ts=self.target.thread_ts or "",
                status=f"is waiting: {position_text(ahead)}" if ahead else THINKING,
            )
        except SLACK_FAILURES as exc:
            log.debug("queue position not shown in %s: %s", self.target.channel, slack_error(exc))

    def clear_loading(self) -> None:
        """Nothing will be streamed (a refusal, a duplicate): take the loading status down."""
        try:
            self.client.assistant_threads_setStatus(
                channel_id=self.target.channel, thread_ts=self.target.thread_ts or "", status=""
            )
        except SLACK_FAILURES as exc:
            log.debug("loading status in %s not cleared: %s", self.target.channel, slack_error(exc))

    def feed(self, text: str) -> None:
        with self._cond:
            self._pending += self._guard.push(text)
            first = (
                not self.ts
                and self.state == IDLE
                and not self._starting
                and not self._queued
                and bool(self._pending)
            )
            if first:
                self._starting = True
                text, self._pending = self._pending, ""
            elif self._idle:  # a sender waiting out the append interval needs no wake-up per token
                self._cond.notify()
        if first:  # the first text goes out from this thread: no hand-off before the user sees it
            self._send(text)
            with self._cond:
                self._starting = False
                self._cond.notify()

    def step(self, text: str) -> None:
        """A step of our own (not model output): an escalation, a structured skill at work."""
        with self._cond:
            self._end_step("complete")
            self._steps += 1
            self._step = {"type": "task_update", "id": f"step-{self._steps}", "title": text[:200]}
            self._queue_chunk({**self._step, "status": "in_progress"})
            self._cond.notify()

    def _queue_chunk(self, chunk: dict[str, Any]) -> None:
        """Under `_cond`: the chunk goes after the text waiting so far."""
        text, self._pending = self._pending + self._guard.flush(), ""
        if text:
            self._queued.append({"type": "markdown_text", "text": text})
        self._queued.append(chunk)

    def _end_step(self, status: str) -> None:
        if self._step is not None:
            self._queue_chunk({**self._step, "status": status})
            self._step = None

    def _take(self) -> tuple[str, list[dict[str, Any]]]:
        """Under `_cond`: what waits to be sent, as plain text or (when there are steps) chunks."""
        if not self._queued:
            text, self._pending = self._pending, ""
            return text, []
        chunks, self._queued = self._queued, []
        text, self._pending = self._pending, ""
        if text:
            chunks.append({"type": "markdown_text", "text": text})
        return "", chunks

    # Sender thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closing or self.state in (REFUSED, BROKEN, STOPPED):
                        return  # finish() deals with what is left
                    if (self._pending or self._queued) and not self._starting:
                        wait = 0.0 if not self.ts else self._last_call + self.interval - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._idle = True
                        self._cond.wait()
                        self._idle = False
                text, chunks = self._take()
            self._send(text, chunks)

    def _send(self, text: str, chunks: list[dict[str, Any]] | None = None) -> None:
        if chunks:
            self._send_piece(chunks=chunks)  # steps with a batch's text: far below the per-call cap
            return
        for piece in _pieces(text, min(CALL_TEXT_MAX, MESSAGE_TEXT_MAX)):
            if not self._send_piece(piece):
                return

    def _send_piece(self, text: str = "", chunks: list[dict[str, Any]] | None = None) -> bool:
        size = len(text) + sum(len(c.get("text") or "") for c in chunks or [])
        content: dict[str, Any] = {"chunks": chunks} if chunks else {"markdown_text": text}
        try:
            if not self.ts:
                self._start(content, size)
            elif self._sent + size > MESSAGE_TEXT_MAX:
                self.client.chat_stopStream(channel=self.target.channel, ts=self.ts[-1])
                self._start(content, size)
            else:
                self.client.chat_appendStream(channel=self.target.channel, ts=self.ts[-1], **content)
                self.appends += 1
                self._sent += size
        except SLACK_FAILURES as exc:
            self.error = slack_error(exc)
            if not self.ts:
                self.state = REFUSED
            elif self.error == "stopped_by_user":
                self.state = STOPPED
                self.stop.set()  # stop the model too: nobody reads the rest
            else:
                self.state = BROKEN
            log.info("stream in %s %s: %s", self.target.channel, self.state, self.error)
            return False
        finally:
            self._last_call = time.monotonic()
        return True

    def _start(self, content: dict[str, Any], size: int) -> None:
        args: dict[str, Any] = {"channel": self.target.channel, "thread_ts": self.target.thread_ts}
        if not self.target.channel.startswith("D"):  # channel streams name their reader
            args.update(recipient_team_id=self.team_id, recipient_user_id=self.target.user)
        response = self.client.chat_startStream(**args, **content)
        self.ts.append(str(response["ts"]))
        if self.on_start is not None:  # durable work: a take-over replaces this message
            self.on_start(self.ts[-1])
        self._sent = size
        self.state = STREAMING
        if self.first_visible is None:
            self.first_visible = time.monotonic()

    # The end ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the sender (after its call in flight); pending text stays for `finish`."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()

    def finish(self, reply: Reply, label: str | None = None) -> str | None:
        """Finalise the streamed answer; returns the delivery (stream | update | post), UNDELIVERED
        when Slack refused every way to finish it, or None when nothing was streamed and the caller
        must deliver `reply` the ordinary way."""
        self.close()
        with self._cond:
            self._end_step("complete" if reply.status in ("ok", "stopped") else "error")
            self._pending += self._guard.flush()
            rest, chunks = self._take()
        if self.state == IDLE and (rest.strip() or chunks) and reply.status in ("ok", "stopped"):
            self._send(rest, chunks)  # an answer shorter than one batch: start and stop right away
            rest, chunks = "", []
        if self.state in (IDLE, REFUSED):
            return None
        streamed_body = reply.structured is None and reply.status in ("ok", "stopped")
        blocks = stream_final_blocks(reply, streamed_body, label)
        if self.state == STREAMING:
            if rest and self._sent + len(rest) > min(MESSAGE_TEXT_MAX, CALL_TEXT_MAX):
                self._send(rest)
                rest = ""
            if self.state == STREAMING:
                content: dict[str, Any] = {"chunks": chunks} if chunks else {"markdown_text": rest or None}
                try:
                    self.client.chat_stopStream(
                        channel=self.target.channel, ts=self.ts[-1], blocks=blocks, **content
                    )
                    self.state = DONE
                    return "stream"
                except SLACK_FAILURES as exc:
                    self.error = slack_error(exc)
                    self.state = BROKEN
                    log.warning("stream in %s not stopped: %s", self.target.channel, self.error)
        return self._repair(reply, label)

    def _repair(self, reply: Reply, label: str | None = None) -> str:
        """The stream broke (or the user stopped it): make the streamed messages the whole answer."""
        messages = reply_messages(reply, asked=self.target.asked, label=label)
        if self.state != STOPPED:  # stopped by the user: the message is already final on Slack's side
            for ts in self.ts:
                try:
                    self.client.chat_stopStream(channel=self.target.channel, ts=ts)
                except SLACK_FAILURES as exc:
                    log.debug("stream %s already closed: %s", ts, slack_error(exc))
        try:
            for ts, message in zip(self.ts, messages, strict=False):
                self.client.chat_update(
                    channel=self.target.channel, ts=ts, text=message.text, blocks=message.blocks
                )
        except SLACK_FAILURES as exc:
            log.warning(
                "streamed answer in %s not repaired: %s; posting anew", self.target.channel, slack_error(exc)
            )
            return self._replace_all(messages)
        self._post(messages[len(self.ts) :])
        for ts in self.ts[len(messages) :]:
            self._delete(ts)
        # A user stop leaves the streamed text as the answer; the update only adds footer and feedback.
        return "stream" if self.state == STOPPED else "update"

    def _replace_all(self, messages: list[Any]) -> str:
        posted = self._post(messages)
        if not posted:  # Slack took nothing: the partial answer stays for a later try
            return UNDELIVERED
        for ts in self.ts:  # the partial answer goes only once the whole one is there
            self._delete(ts)
        self.ts = posted
        return "post"

    def _post(self, messages: list[Any]) -> list[str]:
        posted: list[str] = []
        for message in messages:
            try:
                response = self.client.chat_postMessage(
                    channel=self.target.channel,
                    thread_ts=self.target.thread_ts,
                    text=message.text,
                    blocks=message.blocks,
                )
            except SLACK_FAILURES as exc:  # Slack itself is failing: the ledger row is kept
                log.error("answer part not posted in %s: %s", self.target.channel, slack_error(exc))
                break
            posted.append(str(response.get("ts")))
        return posted

    def _delete(self, ts: str) -> None:
        try:
            self.client.chat_delete(channel=self.target.channel, ts=ts)
        except SLACK_FAILURES as exc:
            log.info("partial answer %s left in %s: %s", ts, self.target.channel, slack_error(exc))

    @property
    def visible_ttft_ms(self) -> int | None:
        return None if self.first_visible is None else round((self.first_visible - self.received) * 1000)
