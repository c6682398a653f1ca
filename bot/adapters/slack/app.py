"""The bolt app: thin listeners that acknowledge at once, lazy listeners that do the work.

Ack functions make no Web API call; the ones for work that must be answered (mentions, answerable
messages, skill commands, shortcuts) write one row first: the durable work item with its dedupe
claim (bot.pipeline.worker, bot.ledger.work), so what Slack saw acknowledged survives a crash. The app runs
with `process_before_response=True`: the ack is computed on the request thread itself, so acks
never queue behind model calls in the worker pool, which only runs the lazy listeners. A
redelivery finds its key taken and its listener does nothing; deliveries without a work key still
rely on the engine's event claim (`status="duplicate"` posts nothing).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App, BoltContext, Respond

from bot.adapters.slack import commands
from bot.adapters.slack.blocks import Message, asked_line, parse_feedback_value
from bot.adapters.slack.blocks import context as context_block
from bot.adapters.slack.blocks import feedback_modal as build_feedback_modal
from bot.adapters.slack.client import make_client
from bot.adapters.slack.delivery import SLACK_FAILURES, UNDELIVERED, Courier, Progress, Target, slack_error
from bot.adapters.slack.home import RecommendationCard, SkillAdminRow, SkillCard, home_view
from bot.adapters.slack.ids import (
    COMMENT_ACTION,
    COMMENT_BLOCK,
    FEEDBACK_DOWN,
    FEEDBACK_MODAL,
    FEEDBACK_NATIVE,
    FEEDBACK_UP,
    REC_APPLY,
    REC_DISMISS,
    STOP_ACTION,
)
from bot.adapters.slack.manifest import shortcut_callback_id, skill_commands, suggested_prompts
from bot.adapters.slack.streaming import AnswerStream
from bot.adapters.slack.threads import (
    display_name,
    history_from_replies,
    mentioned_users,
    message_route,
    plain_text,
    reaction_score,
    strip_mention,
    transcript,
)
from bot.context import grounding
from bot.core.periods import days_before
from bot.core.rec_format import tier_move
from bot.core.types import Reply, Request
from bot.ledger.store import UnknownRequest
from bot.ledger.work import WorkQueue
from bot.models import queue as model_queue
from bot.observability import tracing
from bot.pipeline.worker import APOLOGY, LATE_NOTE, Job, Undelivered, Worker, reply_from, retry_db

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from bot.core.skills import Skill
    from bot.pipeline.engine import Engine

log = logging.getLogger(__name__)

WORKERS = 48  # lazy listeners: 20+ concurrent model calls, plus feedback, App Home, history fetches
PROGRESS_DELAY = 0.8  # seconds before a placeholder appears (fast outcomes never flash one)
THREAD_MESSAGES_MAX = 1000  # messages kept per thread (history, transcripts): the newest
THREAD_PAGE_SIZE = 200  # messages per conversations.replies call
THREAD_PAGES_MAX = 10  # pages read at most per thread
CACHE_SECONDS = 600
HOME_DAYS = 7
SOURCE = "slack"


class TTLCache:
    """A small thread-safe cache for channel names and user names (saves Web API calls)."""

    def __init__(self, seconds: float, size: int = 2048) -> None:
        self.seconds = seconds
        self.size = size
        self._items: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        value = load()
        with self._lock:
            if len(self._items) >= self.size:
                self._items.clear()
            self._items[key] = (now + self.seconds, value)
        return value


class SlackBot:
    """The listeners. Methods named `ack_*` run on the request thread; the others run lazily."""

    def __init__(
        self,
        engine: Engine,
        client: WebClient,
        progress_delay: float = PROGRESS_DELAY,
        executor: Executor | None = None,
    ) -> None:
        from bot.economics.context import EconomicsContext

        self.engine = engine  # handles requests and ratings
        self.economics = EconomicsContext.of(engine)  # the review, digest, tier and value commands
        self.settings = engine.settings
        self.ledger = engine.ledger
        self.client = client
        self.progress_delay = progress_delay
        self.courier = Courier(client, engine.ledger)
        self.commands = {s.slash: s for s in skill_commands(engine.registry)}
        self.shortcuts = {shortcut_callback_id(s): s for s in engine.registry if s.shortcut}
        # Channel names are looked up only when some skill is restricted to named channels.
        self.restricted = any(engine.channels_for(s) for s in engine.registry)
        self._channels = TTLCache(CACHE_SECONDS)
        self._users = TTLCache(CACHE_SECONDS)
        # Answers in progress in this process, by the key their Stop button carries.
        self.running: dict[str, threading.Event] = {}
        self._labelled: set[tuple[str, str]] = set()
        settings = engine.settings
        queue = WorkQueue(engine.ledger, lease_s=settings.work_lease_s, ttl_hours=settings.event_ttl_hours)
        self.work = Worker(
            queue,
            sweep_s=settings.work_sweep_s,
            max_age_s=settings.work_max_age_s,
            delivery_tries=settings.work_delivery_tries,
            delivery_backoff_s=settings.work_delivery_backoff_s,
            executor=executor,
            resume=self.resume,
        )

    def register(self, app: App) -> None:
        """Listeners for exactly what the manifest subscribes to (bot.adapters.slack.manifest)."""
        app.event("app_mention")(ack=self.ack_work, lazy=[self.answer_mention])
        app.event("message", matchers=[self.is_answerable])(ack=self.ack_work, lazy=[self.answer_message])
        app.event("message")(self.ack)  # every other message: acknowledged, ignored
        app.event("reaction_added", matchers=[self.is_thumb])(ack=self.ack, lazy=[self.rate_by_reaction])
        app.event("reaction_added")(self.ack)
        app.event("app_home_opened")(ack=self.ack, lazy=[self.publish_home])
        app.event("assistant_thread_started")(ack=self.ack, lazy=[self.prompt_assistant_thread])
        for command in self.commands:
            app.command(command)(ack=self.ack_skill_command, lazy=[self.run_skill_command])
        app.command(commands.COMMAND)(ack=self.ack_tierwise, lazy=[self.run_tierwise])
        for callback_id in self.shortcuts:
            app.message_shortcut(callback_id)(ack=self.ack_work, lazy=[self.run_shortcut])
        app.action(FEEDBACK_UP)(ack=self.ack, lazy=[self.rate_up])
        app.action(FEEDBACK_DOWN)(ack=self.ack, lazy=[self.rate_down])
        app.action(FEEDBACK_NATIVE)(ack=self.ack, lazy=[self.rate_native])
        app.action(STOP_ACTION)(ack=self.ack, lazy=[self.stop_answer])
        app.view(FEEDBACK_MODAL)(ack=self.ack, lazy=[self.save_comment])
        app.action(REC_APPLY)(ack=self.ack, lazy=[self.decide_recommendation])
        app.action(REC_DISMISS)(ack=self.ack, lazy=[self.decide_recommendation])

    # Acks and matchers (request thread: pure, fast) -------------------------------------------

    def ack(self, ack: Ack) -> None:
        ack()

    def ack_work(self, ack: Ack, body: dict[str, Any], context: BoltContext) -> None:
        """Work that must be answered is in the database before Slack hears the ack."""
        self.accept(body, context)
        ack()

    def accept(self, body: dict[str, Any], context: BoltContext) -> None:
        found = work_key(body)
        if found is None:
            return
        key, kind = found
        raw_event = body.get("event")
        event: dict[str, Any] = raw_event if isinstance(raw_event, dict) else {}
        channel = event.get("channel") or body.get("channel_id") or (body.get("channel") or {}).get("id")
        payload = {"body": body, "bot_user_id": context.bot_user_id, "bot_id": context.bot_id}
        self.work.accept(
            key,
            kind,
            payload,
            event_id=body.get("event_id") if kind in ("mention", "message") else None,
            channel=channel if isinstance(channel, str) else None,
            thread_ts=event.get("thread_ts") or event.get("ts"),
        )

    def resume(self, item: Any) -> None:
        """Run taken-over work again through its own listener (bot.pipeline.worker.Worker.resume)."""
        from slack_bolt.context.respond import Respond as RespondTo

        data = json.loads(item.payload)
        body = data["body"]
        context = BoltContext({"bot_user_id": data.get("bot_user_id"), "bot_id": data.get("bot_id")})
        response_url = body.get("response_url")
        respond = RespondTo(response_url=response_url, proxy=None, ssl=None) if response_url else None
        if item.kind == "mention":
            self.answer_mention(body, body["event"], context)
        elif item.kind == "message":
            self.answer_message(body, body["event"], context)
        elif item.kind == "command":
            self.run_skill_command(body, respond)  # type: ignore[arg-type]
        elif item.kind == "shortcut":
            self.run_shortcut(body, respond, context)  # type: ignore[arg-type]

    def is_answerable(self, event: dict[str, Any], context: BoltContext) -> bool:
        return message_route(event, context.bot_user_id, context.bot_id) is not None

    def is_thumb(self, event: dict[str, Any]) -> bool:
        return (
            reaction_score(event.get("reaction") or "") is not None
            and (event.get("item") or {}).get("type") == "message"
        )

    def ack_skill_command(self, ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        skill = self.commands.get(command.get("command", ""))
        if skill is not None and skill.uses_thread and not (command.get("text") or "").strip():
            ack(text=thread_hint(skill))
            return
        if skill is not None:
            self.accept(command, context)
        ack()

    def ack_tierwise(self, ack: Ack, command: dict[str, Any]) -> None:
        """Answers that need no I/O go back in the ack itself (an ephemeral message)."""
        action = commands.parse(command.get("text") or "")
        admin = self.settings.is_admin(command.get("user_id"))
        if isinstance(action, commands.ADMIN_ACTIONS) and not admin:
            ack(text="Only Tierwise admins can see or change tier assignments.")
        elif isinstance(action, commands.Help):
            ack(text=commands.help_text(list(self.engine.registry), admin))
        elif isinstance(action, commands.ListSkills):
            ack(text=commands.skills_text(list(self.engine.registry)))
        elif isinstance(action, commands.Invalid):
            ack(text=action.message)
        else:
            ack()

    # Conversations -------------------------------------------------------------------------------

    def answer_mention(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        """@Tierwise at a channel root → answer in a thread under it; inside a thread → in that thread."""
        with self.work.running(body.get("event_id")) as job:
            if job is not None:
                self._answer_mention(body, event, context)

    def _answer_mention(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        received = time.monotonic()
        channel, ts = event["channel"], event["ts"]
        root = event.get("thread_ts") or ts
        history = (
            self.thread_history(channel, event["thread_ts"], ts, context) if event.get("thread_ts") else []
        )
        request = Request(
            text=plain_text(strip_mention(event.get("text") or "", context.bot_user_id)),
            source=SOURCE,
            user=event.get("user") or "unknown",
            channel=channel,
            channel_name=self.channel_name(channel),
            thread=root,
            event_id=body.get("event_id"),
            history=history,
        )
        target = Target(channel=channel, user=request.user, thread_ts=root)
        self.converse(request, target, team=recipient_team(body, event, context), received=received)

    def answer_message(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        """DMs, and follow-ups in a thread the bot has already answered (no mention needed)."""
        with self.work.running(body.get("event_id")) as job:
            if job is not None:
                self._answer_message(body, event, context)

    def _answer_message(self, body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
        received = time.monotonic()
        route = message_route(event, context.bot_user_id, context.bot_id)
        channel, ts, thread = event["channel"], event["ts"], event.get("thread_ts")
        if route is None or (
            route == "thread" and not (thread and self.ledger.bot_answered_thread(channel, thread))
        ):
            return
        history = self.thread_history(channel, thread, ts, context) if thread else []
        request = Request(
            text=plain_text(strip_mention(event.get("text") or "", context.bot_user_id)),
            source=SOURCE,
            user=event["user"],
            channel=channel,
            channel_name=self.channel_name(channel),
            thread=thread or ts,
            event_id=body.get("event_id"),
            history=history,
        )
        target = Target(channel=channel, user=event["user"], thread_ts=thread, assistant_thread=route == "dm")
        # A stream is always a thread reply: a DM message at the root becomes the root of its answer's
        # thread (as in the agent messaging experience, where every user message is a thread root).
        self.converse(
            request, target, team=recipient_team(body, event, context), received=received, stream_root=ts
        )

    @tracing.traced("slack.event", lambda _, self, request, target, **kw: {"slack.channel": request.channel})
    def converse(
        self,
        request: Request,
        target: Target,
        *,
        team: str | None = None,
        received: float | None = None,
        stream_root: str | None = None,
    ) -> None:
        """Run the engine while showing progress (or streaming the answer), then deliver what it decided.
        Durable work (bot.pipeline.worker) notes the placeholder or stream and the reply, so a take-over replaces
        the one and delivers the other instead of asking the model again."""
        received = time.monotonic() if received is None else received
        job = self.work.current()
        request.claimed = job.tracked  # the event id was claimed with the work item
        if job.tracked:  # the reply is kept in the commit that records the request
            request.keep_reply = job.keep_reply
        stream: AnswerStream | None = None
        key = uuid.uuid4().hex
        request.stop = self.running[key] = threading.Event()
        progress = Progress(self.client, target, self.progress_delay, stop_key=key)
        progress.on_placeholder = job.placeholder
        progress.placeholder_ts = job.message_ts  # left on screen by a replica that died
        fresh = not job.expired and job.reply is None and job.message_ts is None
        if fresh and self.settings.slack_streaming and (target.thread_ts or stream_root):
            stream_target = replace(target, thread_ts=target.thread_ts or stream_root)
            stream = AnswerStream(self.client, stream_target, team, received, stop=request.stop)
            stream.on_start = job.placeholder
            request.on_delta, request.on_step, request.stop = stream.feed, stream.step, stream.stop
            stream.loading()
        else:
            progress.start()
        try:
            if job.expired:
                reply = Reply(text=APOLOGY, status="error")
            elif job.reply is not None:
                reply = reply_from(job.reply)
            else:
                try:
                    # Durable work holds its own claim, so it can simply run again if the database failed.
                    pauses = None if job.tracked else ()
                    # "2 questions ahead of yours": the thread's status when streaming, else the placeholder
                    with model_queue.watching(stream.queued if stream is not None else progress.queued):
                        reply = retry_db(
                            lambda: self.engine.handle(request), f"event {request.event_id}", pauses
                        )
                except Exception:  # a bug or the ledger down: one line for the user, the trace in the log
                    ref = uuid.uuid4().hex[:8]
                    log.exception(
                        "engine failed (ref %s, event %s, channel %s)", ref, request.event_id, request.channel
                    )
                    reply = Reply(text=f"Sorry: something went wrong on my side (ref {ref}).", status="error")
                if not job.replied(reply):  # another replica took this work over: it answers
                    if stream is not None:
                        stream.close()
                    progress.finish()
                    return
        finally:
            self.running.pop(key, None)
        if job.resumed and reply.status == "ok" and LATE_NOTE not in reply.notes:
            reply.notes.append(LATE_NOTE)
        log.info(
            "slack %s: request %s skill %s status %s",
            request.channel,
            reply.request_id,
            reply.skill,
            reply.status,
        )
        label = None
        if reply.ok and reply.embedded and self.first_embedded_answer(target, request):
            label = grounding.EMBEDDED_LABEL
            target = replace(target, label=label)
        delivery = stream.finish(reply, label=label) if stream is not None else None
        if stream is not None and delivery == UNDELIVERED:
            self._stream_undelivered(job, stream, reply)
            return
        if stream is not None and delivery is not None:
            for ts in stream.ts:
                self.courier.remember(target.channel, ts, reply.request_id, stream.target.thread_ts)
            self.note_delivery(reply, delivery, stream.visible_ttft_ms)
            return
        if stream is not None and stream.error:
            log.info("stream refused in %s (%s): posting the answer instead", target.channel, stream.error)
        elif stream is not None and reply.status in ("duplicate", "refused", "rejected"):
            stream.clear_loading()
        posted = self.courier.deliver(reply, target, progress)
        if posted:
            kind = "update" if progress.placeholder_ts in posted else "post"
            self.note_delivery(reply, kind, round((time.monotonic() - received) * 1000))
        elif target.respond is not None and reply.status not in ("duplicate", "refused", "rejected"):
            self.note_delivery(reply, "response_url", round((time.monotonic() - received) * 1000))
        elif job.tracked and reply.status not in ("duplicate", "refused", "rejected"):
            # Slack would not take the answer even after the client's retries: the worker keeps the
            # reply and posts it again later (no second model call).
            raise Undelivered(
                f"request {reply.request_id}: the answer could not be posted in {target.channel}"
            )

    def _stream_undelivered(self, job: Job, stream: AnswerStream, reply: Reply) -> None:
        """Slack refused every way to finish a streamed answer (after the client's retries). The reply
        is on the work item already; the worker posts it again later over the streamed message (the
        take-over path: a stale stream is stopped, then updated), so no second model call and no
        second message."""
        if not job.tracked:  # no durable work (the database was away): nothing kept to retry from
            log.error(
                "streamed answer to request %s not finished in %s", reply.request_id, stream.target.channel
            )
            return
        job.placeholder(stream.ts[0])  # the message a retry replaces (the stream's first)
        raise Undelivered(
            f"request {reply.request_id}: the streamed answer could not be finished in {stream.target.channel}"
        )

    def note_delivery(self, reply: Reply, delivery: str, visible_ms: int | None) -> None:
        """Which path delivered the answer, and when its first text became visible (ledger)."""
        if not reply.request_id or reply.status in ("duplicate", "refused", "rejected"):
            return
        try:
            self.ledger.note_delivery(reply.request_id, delivery, visible_ms)
        except Exception:  # the answer is out; the figure is not worth failing for
            log.exception("could not note the delivery of request %s", reply.request_id)

    def first_embedded_answer(self, target: Target, request: Request) -> bool:
        """The built-in model's label goes on the first answer of a thread (of a DM, per process)."""
        if target.thread_ts:
            return not self.ledger.bot_answered_thread(target.channel, target.thread_ts)
        key = (target.channel, request.user)
        first = key not in self._labelled
        self._labelled.add(key)
        return first

    def thread_history(
        self, channel: str, thread_ts: str, before_ts: str, context: BoltContext
    ) -> list[dict[str, str]]:
        """Earlier messages of the thread as user/assistant turns (the engine trims to its budget)."""
        try:
            messages = self.fetch_thread(channel, thread_ts)
        except SLACK_FAILURES as exc:  # history helps but is not required: answer without it
            log.warning("no history for thread %s in %s: %s", thread_ts, channel, slack_error(exc))
            return []
        return history_from_replies(
            messages, before_ts=before_ts, bot_user_id=context.bot_user_id, bot_id=context.bot_id
        )

    def fetch_thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The thread, oldest first; of a very long one the root and the newest messages."""
        messages: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(THREAD_PAGES_MAX):
            page = self.client.conversations_replies(
                channel=channel, ts=thread_ts, limit=THREAD_PAGE_SIZE, cursor=cursor
            )
            messages.extend(page.get("messages") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
        if len(messages) > THREAD_MESSAGES_MAX:  # replies come oldest first; the root says what it is about
            messages = [messages[0], *messages[-(THREAD_MESSAGES_MAX - 1) :]]
        return messages

    def channel_name(self, channel: str) -> str | None:
        """For channel allow-lists by name; DMs have none, and without restricted skills no lookup."""
        if not self.restricted or channel.startswith("D"):
            return None

        def load() -> str | None:
            try:
                return (self.client.conversations_info(channel=channel).get("channel") or {}).get("name")
            except SLACK_FAILURES as exc:
                log.info("no name for channel %s: %s", channel, slack_error(exc))
                return None

        return self._channels.get(channel, load)

    def user_names(self, users: Iterable[str]) -> dict[str, str]:
        def loader(user: str) -> Callable[[], str | None]:
            def load() -> str | None:
                try:
                    return display_name(self.client.users_info(user=user).get("user") or {})
                except SLACK_FAILURES as exc:
                    log.info("no name for user %s: %s", user, slack_error(exc))
                    return None

            return load

        names = {user: self._users.get(user, loader(user)) for user in set(users)}
        return {user: name for user, name in names.items() if name}

    # Commands and shortcuts ----------------------------------------------------------------------

    def run_skill_command(self, command: dict[str, Any], respond: Respond) -> None:
        received = time.monotonic()
        skill = self.commands.get(command.get("command", ""))
        text = (command.get("text") or "").strip()
        if skill is None or (skill.uses_thread and not text):
            return  # answered in the ack
        with self.work.running(work_key_of(command)) as job:
            if job is not None:
                self._run_skill_command(skill, text, command, respond, received)

    def _run_skill_command(
        self, skill: Skill, text: str, command: dict[str, Any], respond: Respond, received: float
    ) -> None:
        user, channel = command["user_id"], command["channel_id"]
        request = Request(
            text=plain_text(text),
            source=SOURCE,
            user=user,
            channel=channel,
            channel_name=command.get("channel_name"),
            skill=skill.name,
            explicit_via="slash command",
        )
        target = Target(
            channel=channel,
            user=user,
            asked=asked_line(user, skill.slash, text),
            respond=respond,
            notes_via_respond=True,
        )
        root = self.post_question(target) if self.settings.slack_streaming else None
        if root is not None:  # streams are thread replies: the question is the thread's root
            target = replace(target, thread_ts=root, asked=None)
        self.converse(request, target, team=command.get("team_id"), received=received)

    def post_question(self, target: Target) -> str | None:
        """A slash command's question as a message of its own, so the answer can stream under it;
        None where the bot cannot post (the answer then goes by response_url, unstreamed)."""
        message = Message(target.asked or "", [context_block([target.asked or ""], markdown=True)])
        try:
            response = self.client.chat_postMessage(
                channel=target.channel, text=message.text, blocks=message.blocks
            )
        except SLACK_FAILURES as exc:
            log.info("cannot post in %s (%s): answering by response_url", target.channel, slack_error(exc))
            return None
        return str(response.get("ts"))

    def run_shortcut(self, shortcut: dict[str, Any], respond: Respond, context: BoltContext) -> None:
        """A skill's message shortcut: the thread the message belongs to is the input."""
        skill = self.shortcuts.get(shortcut.get("callback_id", ""))
        if skill is None:
            return
        with self.work.running(work_key_of(shortcut)) as job:
            if job is not None:
                self._run_shortcut(skill, shortcut, respond, context)

    def _run_shortcut(
        self, skill: Skill, shortcut: dict[str, Any], respond: Respond, context: BoltContext
    ) -> None:
        channel = shortcut["channel"]["id"]
        user = shortcut["user"]["id"]
        message = shortcut.get("message") or {}
        root = message.get("thread_ts") or message.get("ts") or shortcut["message_ts"]  # always sent
        target = Target(
            channel=channel,
            user=user,
            thread_ts=root,
            asked=asked_line(user, skill.shortcut or skill.name),
            respond=respond,
        )
        try:
            messages = self.fetch_thread(channel, root) or [message]
        except SLACK_FAILURES as exc:
            log.info("shortcut %s cannot read %s/%s: %s", skill.name, channel, root, slack_error(exc))
            self.courier.notify(
                target, "I can't read this conversation. Invite me first: `/invite @Tierwise`."
            )
            return
        authors = [m["user"] for m in messages if m.get("user")]
        names = self.user_names(
            [*authors, *(u for m in messages for u in mentioned_users(m.get("text") or ""))]
        )
        if context.bot_user_id:
            names[context.bot_user_id] = "Tierwise"
        text = transcript(messages, names, bot_user_id=context.bot_user_id, tz=self.settings.timezone)
        request = Request(
            text=text,
            source=SOURCE,
            user=user,
            channel=channel,
            channel_name=(shortcut.get("channel") or {}).get("name"),
            thread=root,
            skill=skill.name,
            explicit_via="message shortcut",
        )
        self.converse(request, target)

    def run_tierwise(self, command: dict[str, Any], respond: Respond) -> None:
        """The `/tierwise` actions that read or write the ledger (the others were answered in the ack)."""
        action = commands.parse(command.get("text") or "")
        user = command.get("user_id")
        if isinstance(action, commands.ADMIN_ACTIONS) and not self.settings.is_admin(user):
            return
        try:
            text = self.tierwise_text(action, user or "unknown")
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("/tierwise %s failed (ref %s)", type(action).__name__, ref)
            text = f"Sorry: that failed on my side (ref {ref})."
        if text is not None:
            try:
                respond(text=text, response_type="ephemeral", replace_original=False)
            except SLACK_FAILURES as exc:
                log.warning("could not answer /tierwise for %s: %s", user, slack_error(exc))

    def tierwise_text(self, action: commands.Action, user: str) -> str | None:
        from bot.economics.tiers import TierChangeError, set_tier
        from bot.ledger.models import utcnow

        if isinstance(action, commands.Usage):
            rows = self.ledger.usage(days_before(utcnow(), action.days))
            return commands.usage_text(rows, action.days)
        if isinstance(action, commands.TierHistory):
            return commands.history_text(self.ledger.tier_history(action.skill, limit=31), action.skill)
        if isinstance(action, commands.Review):
            from bot.economics.tier_review import review

            return commands.review_text(review(self.economics))
        if isinstance(action, commands.DigestNow):
            return self.post_digest_now()
        if isinstance(action, commands.DataView):
            from bot.ledger.retention import data_summary, data_text

            return data_text(data_summary(self.ledger, self.settings))
        if isinstance(action, commands.ValueSet):
            from bot.adapters.slack.mrkdwn import escape
            from bot.economics import skill_values

            try:
                before, after = skill_values.set_value(
                    self.economics, action.skill, action.usd, by=user, source=SOURCE
                )
            except skill_values.ValueChangeError as exc:
                return f"Value not changed: {escape(str(exc))}. {commands.VALUE_USAGE}"
            return (
                f"*{action.skill}*: a good answer is worth {skill_values.describe(after)} "
                f"(was {skill_values.describe(before)}); the next review prices moves with it."
            )
        if isinstance(action, commands.TierSet):
            try:
                row = set_tier(
                    self.economics, action.skill, action.tier, by=user, reason=action.reason, source=SOURCE
                )
            except TierChangeError as exc:
                return f"Tier not changed: {exc}. {commands.TIER_SET_USAGE}"
            log.info("tier of %s set to %s by %s: %s", row.skill, row.tier, user, row.reason)
            return f"*{row.skill}*: {row.previous_tier or '-'} → *{row.tier}*, from the next request on."
        return None

    def post_digest_now(self) -> str:
        """Build last week's digest, keep its recommendations (for the buttons) and post it."""
        from bot.adapters.slack import digest as digest_blocks
        from bot.core.periods import last_complete_week
        from bot.economics.digest import publish_digest
        from bot.ledger.models import utcnow

        channel = self.settings.admin_channel
        if not channel:
            return "No admin channel is configured (TIERWISE_ADMIN_CHANNEL): nowhere to post the digest."
        period = last_complete_week(utcnow(), self.settings.timezone)
        publish_digest(self.economics, period, lambda d: digest_blocks.post_digest(self.client, channel, d))
        return f"Posted the {period} digest to <#{channel}>."

    # Feedback --------------------------------------------------------------------------------------

    def rate_up(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        created = self.rate_click(body, action, respond, 1)
        if created is not None:
            note = "Thanks for the 👍." if created else "Updated your rating to 👍."
            self.courier.notify(click_target(body, respond), note)

    def rate_down(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        """👎: open the comment modal first (its trigger_id expires in 3 s), then record the vote."""
        opened = self.open_modal(body.get("trigger_id"), action.get("value") or "")
        created = self.rate_click(body, action, respond, -1)
        if created is not None:
            note = "Noted your 👎." if created else "Updated your rating to 👎."
            if opened:
                note += " The form asks what was wrong (optional)."
            self.courier.notify(click_target(body, respond), note)

    def stop_answer(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        """The placeholder's Stop button: the model stops, the partial answer is delivered as stopped."""
        running = self.running.get(action.get("value") or "")
        if running is None:  # finished already, pressed twice, or another replica's answer
            self.courier.notify(click_target(body, respond), "That answer has already finished.")
            return
        running.set()

    def rate_native(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        """Slack's feedback_buttons: 👍 or 👎 (the value says which, and the request); 👎 asks why."""
        parsed = parse_feedback_value(action.get("value") or "")
        if parsed is None:
            log.warning("feedback click with an unreadable value %r", action.get("value"))
            return
        score, request_id = parsed
        clicked = {**action, "value": request_id}
        if score > 0:
            self.rate_up(body, clicked, respond)
        else:
            self.rate_down(body, clicked, respond)

    def open_modal(self, trigger_id: str | None, request_id: str) -> bool:
        if not trigger_id or not request_id:
            return False
        try:
            self.client.views_open(trigger_id=trigger_id, view=build_feedback_modal(request_id))
        except SLACK_FAILURES as exc:
            log.info("no feedback modal for request %s: %s", request_id, slack_error(exc))
            return False
        return True

    def rate_click(
        self, body: dict[str, Any], action: dict[str, Any], respond: Respond, score: int
    ) -> bool | None:
        """Record a button vote; True new, False updated, None when the request is unknown."""
        request_id = action.get("value") or ""
        try:
            return self.engine.rate(request_id, body["user"]["id"], score, source="slack-button")
        except UnknownRequest:
            self.courier.notify(click_target(body, respond), "I can't find that answer any more.")
            return None

    def save_comment(self, body: dict[str, Any], view: dict[str, Any]) -> None:
        """The 👎 modal: the vote again (in case the click was lost) plus the optional comment."""
        request_id = view.get("private_metadata") or ""
        values = (view.get("state") or {}).get("values") or {}
        comment = ((values.get(COMMENT_BLOCK) or {}).get(COMMENT_ACTION) or {}).get("value")
        try:
            self.engine.rate(
                request_id, body["user"]["id"], -1, (comment or "").strip() or None, "slack-modal"
            )
        except UnknownRequest:
            log.warning("feedback comment for unknown request %r", request_id)

    def rate_by_reaction(self, event: dict[str, Any]) -> None:
        """👍/👎 reactions on an answer count as feedback (reaction_removed is not subscribed)."""
        item = event.get("item") or {}
        score = reaction_score(event.get("reaction") or "")
        request_id = self.ledger.request_for_message(item.get("channel", ""), item.get("ts", ""))
        if score is None or request_id is None or not event.get("user"):
            return  # a thumb on someone else's message
        try:
            self.engine.rate(request_id, event["user"], score, source="slack-reaction")
        except UnknownRequest:
            log.warning("reaction on a message of unknown request %s", request_id)

    # Digest recommendations -------------------------------------------------------------------------

    def decide_recommendation(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        """Apply/Dismiss on a digest recommendation: admins only; the buttons become who decided what."""
        from bot.economics.tier_review import RecommendationError, apply, dismiss

        user = body["user"]["id"]
        target = click_target(body, respond)
        if not self.settings.is_admin(user):
            self.courier.notify(target, "Only Tierwise admins can apply or dismiss recommendations.")
            return
        applying = action.get("action_id") == REC_APPLY
        try:
            rec_id = int(action.get("value") or "")
            row = (
                apply(self.economics, rec_id, user, source=SOURCE)
                if applying
                else dismiss(self.economics, rec_id, user)
            )
        except ValueError as exc:  # RecommendationError is a ValueError: stale, decided, unknown
            self.courier.notify(
                target,
                f"Not done: {exc}." if isinstance(exc, RecommendationError) else "Not done: bad button.",
            )
            return
        verdict = (
            f"✅ Applied by <@{user}>: `{row.skill}` {tier_move(row)}"
            if applying
            else f"✖️ Dismissed by <@{user}>: `{row.skill}` stays on {row.current_tier}"
        )
        log.info("recommendation %s %s by %s", rec_id, "applied" if applying else "dismissed", user)
        self.mark_decided(body, action.get("block_id"), verdict, target)

    def mark_decided(self, body: dict[str, Any], block_id: str | None, verdict: str, target: Target) -> None:
        """Replace the clicked buttons in the digest message with the decision (or say it ephemerally)."""
        message = body.get("message") or {}
        blocks = [
            context_block([verdict], markdown=True) if block.get("block_id") == block_id else block
            for block in message.get("blocks") or []
        ]
        container = body.get("container") or {}
        ts = container.get("message_ts") or message.get("ts")
        if not ts:  # no message to update: say it instead
            self.courier.notify(target, verdict)
            return
        try:
            self.client.chat_update(
                channel=target.channel,
                ts=ts,
                text=message.get("text") or verdict,
                blocks=blocks,
            )
        except SLACK_FAILURES as exc:
            log.info("digest message not updated: %s", slack_error(exc))
            self.courier.notify(target, verdict)

    # App Home ------------------------------------------------------------------------------------

    def prompt_assistant_thread(self, event: dict[str, Any]) -> None:
        """assistant_view installs: suggested prompts in each new assistant thread."""
        thread = event.get("assistant_thread") or {}
        if thread.get("channel_id") and thread.get("thread_ts"):
            self.set_prompts(thread["channel_id"], thread["thread_ts"])

    def set_prompts(self, channel: str, thread_ts: str | None = None) -> None:
        """Suggested prompts, one per skill (agent_view: at the top of the Messages tab, no thread)."""
        prompts = suggested_prompts(self.engine.registry)
        if not prompts:
            return
        try:
            self.client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, thread_ts=thread_ts, prompts=prompts, title="Try one of these:"
            )
        except SLACK_FAILURES as exc:
            log.info("no suggested prompts in %s: %s", channel, slack_error(exc))

    def publish_home(self, event: dict[str, Any]) -> None:
        if event.get("tab") == "messages" and event.get("channel"):
            self.set_prompts(event["channel"])  # agent_view: the DM with the app was opened
            return
        if event.get("tab") != "home" or not event.get("user"):
            return
        user = event["user"]
        admin = self.settings.is_admin(user)
        admin_rows = self.admin_rows() if admin else None
        view = home_view(
            skill_cards(self.engine.registry),
            admin_rows,
            days=HOME_DAYS,
            recommendations=self.recommendation_cards() if admin else (),
        )
        try:
            self.client.views_publish(user_id=user, view=view)
        except SLACK_FAILURES as exc:
            log.warning("could not publish App Home for %s: %s", user, slack_error(exc))

    def recommendation_cards(self) -> list[RecommendationCard]:
        from bot.economics.tier_review import latest

        return [
            RecommendationCard(r.skill, r.action, r.current_tier, r.target_tier, r.reason, r.period, r.status)
            for r in latest(self.economics)
        ]

    def admin_rows(self) -> list[SkillAdminRow]:
        from bot.ledger.models import utcnow

        usage = {row.skill: row for row in self.ledger.usage(days_before(utcnow(), HOME_DAYS))}
        rows = []
        for skill in self.engine.registry:
            tier, why = self.engine.configured_tier(skill)
            used = usage.get(skill.name)
            rows.append(
                SkillAdminRow(
                    skill=skill.name,
                    tier=tier,
                    tier_source=why,
                    requests=used.requests if used else 0,
                    cost_usd=used.cost_usd if used else 0.0,
                    unknown_cost=used.unknown_cost if used else 0,
                    thumbs_up=used.thumbs_up if used else 0,
                    thumbs_down=used.thumbs_down if used else 0,
                )
            )
        return rows


def work_key(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(key, kind) of a delivery that must be answered durably; None for everything else."""
    if body.get("type") == "event_callback":
        event = body.get("event") or {}
        event_id = body.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            return None
        return event_id, "mention" if event.get("type") == "app_mention" else "message"
    trigger = body.get("trigger_id")
    if not isinstance(trigger, str) or not trigger:
        return None
    if "command" in body:
        return f"command:{trigger}", "command"
    if body.get("type") == "message_action":
        return f"shortcut:{trigger}", "shortcut"
    return None


def work_key_of(body: Mapping[str, Any]) -> str | None:
    found = work_key(body)
    return found[0] if found else None


def thread_hint(skill: Skill) -> str:
    """Slash commands carry no thread: say how to give a thread skill its thread."""
    how = f"the message shortcut *{skill.shortcut}* on a message in the thread, or " if skill.shortcut else ""
    return f"`{skill.slash}` needs text to work on. For a whole thread, use {how}mention me in the thread."


def recipient_team(body: Mapping[str, Any], event: Mapping[str, Any], context: BoltContext) -> str | None:
    """The asker's team for a channel stream (a Slack Connect user's own team, when it says so)."""
    return event.get("user_team") or event.get("team") or context.team_id or body.get("team_id")


def click_target(body: Mapping[str, Any], respond: Respond | None) -> Target:
    """Where to confirm a button click: ephemerally, in the clicked message's channel and thread."""
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or ""
    thread = (body.get("message") or {}).get("thread_ts") or container.get("thread_ts")
    return Target(channel=channel, user=body["user"]["id"], thread_ts=thread, respond=respond)


def skill_cards(skills: Iterable[Skill]) -> list[SkillCard]:
    return [SkillCard(s.name, s.slash, s.description, s.examples, s.shortcut) for s in skills]


def build_app(
    engine: Engine,
    client: WebClient | None = None,
    *,
    signing_secret: str | None = None,
    executor: Executor | None = None,
    progress_delay: float = PROGRESS_DELAY,
    token_verification_enabled: bool = True,
) -> App:
    """The bolt App for `engine`. `client` defaults to one built from settings (SLACK_API_URL,
    SLACK_BOT_TOKEN, retry handlers); `executor` runs the lazy listeners."""
    settings = engine.settings
    client = client or make_client(settings)
    if signing_secret is None and settings.slack_signing_secret is not None:
        signing_secret = settings.slack_signing_secret.get_secret_value()
    executor = executor or ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="tierwise-slack")
    app = App(
        name="tierwise",
        client=client,
        signing_secret=signing_secret or "",
        process_before_response=True,
        listener_executor=executor,
        token_verification_enabled=token_verification_enabled,
        logger=logging.getLogger("bot.adapters.slack.bolt"),
    )
    bot = SlackBot(engine, client, progress_delay, executor=executor)
    bot.register(app)
    app.tierwise = bot  # type: ignore[attr-defined]  # serve() starts its work sweeps
    return app
