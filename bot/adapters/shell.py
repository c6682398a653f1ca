"""`tierwise shell`: the console adapter. Free text is routed, `/skill text` picks a skill,
`+` / `-` rates the last answer (with an optional comment), `/usage` shows this week's figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.context.grounding import EMBEDDED_LABEL, sources_text
from bot.core.periods import days_before
from bot.core.types import Reply, Request
from bot.ledger.models import utcnow
from bot.models import queue
from bot.pipeline.engine import Engine

HELP = (
    "Type a question, or /<skill> <text> to pick a skill (e.g. /ask How do I get VPN access?).\n"
    "  + [comment]   rate the last answer good      - [comment]   rate it bad\n"
    "  /skills       list skills                    /usage        this week's figures\n"
    "  /help         this help                      /quit         leave"
)


@dataclass
class Shell:
    engine: Engine
    user: str = "shell"
    last: Reply | None = None
    history: list[dict[str, str]] = field(default_factory=list)
    history_turns: int = 3
    echo: Callable[[str], None] | None = None  # streams the answer's text as it comes (the console)
    notify: Callable[[str], None] | None = None  # shows the queue position while a question waits
    labelled: bool = False  # the built-in model's label: once per session

    def handle_line(self, line: str) -> str | None:
        """One console line in, the text to show out (None means: leave)."""
        line = line.strip()
        if not line:
            return ""
        if line in ("/quit", "/exit", "quit", "exit"):
            return None
        if line == "/help":
            return HELP
        if line == "/skills":
            return "\n".join(f"{s.slash:<14} {s.description}" for s in self.engine.registry)
        if line == "/usage":
            return self._usage()
        if line[0] in "+-" and (len(line) == 1 or line[1] == " "):
            return self._rate(1 if line[0] == "+" else -1, line[1:].strip() or None)
        skill = None
        text = line
        if line.startswith("/"):
            name, _, rest = line[1:].partition(" ")
            skill, text = name, rest
        shown: list[str] = []

        def show(delta: str) -> None:
            shown.append(delta)
            assert self.echo is not None
            self.echo(delta)

        with queue.watching(self._queued):
            reply = self.engine.handle(
                Request(
                    text=text,
                    source="shell",
                    user=self.user,
                    skill=skill,
                    explicit_via="shell command",
                    history=list(self.history),
                    on_delta=show if self.echo is not None else None,
                )
            )
        label = reply.ok and reply.embedded and not self.labelled
        self.labelled = self.labelled or label
        if reply.status == "ok":
            self.last = reply
            self.history.extend(
                [{"role": "user", "content": text}, {"role": "assistant", "content": reply.text}]
            )
            self.history = self.history[-2 * self.history_turns :]
        if shown and reply.structured is None and reply.status in ("ok", "stopped"):
            return "\n" + format_reply(reply, with_text=False, label=label)  # the text is on screen already
        return format_reply(reply, label=label)

    def _queued(self, ahead: int) -> None:
        if ahead and self.notify is not None:
            self.notify(f"({queue.position_text(ahead)}: waiting for the built-in model…)")

    def _rate(self, score: int, comment: str | None) -> str:
        if self.last is None or self.last.request_id is None:
            return "Nothing to rate yet: ask something first."
        created = self.engine.rate(self.last.request_id, self.user, score, comment, source="shell")
        verb = "Recorded" if created else "Updated"
        return f"{verb} {'👍' if score > 0 else '👎'} for request {self.last.request_id}."

    def _usage(self) -> str:
        rows = self.engine.ledger.usage(days_before(utcnow(), 7))
        if not rows:
            return "No requests in the last 7 days."
        lines = ["skill            requests   cost (USD)   👍  👎"]
        for r in rows:
            lines.append(
                f"{r.skill:<16} {r.requests:>8}   {r.cost_usd:>10.4f}  {r.thumbs_up:>3} {r.thumbs_down:>3}"
            )
        return "\n".join(lines)

    def run(self, read: Callable[[str], str] = input, write: Callable[[str], None] = print) -> None:
        self.notify = write
        write(HELP)
        while True:
            try:
                line = read("tierwise> ")
            except (EOFError, KeyboardInterrupt):
                write("")
                return
            out = self.handle_line(line)
            if out is None:
                return
            if out:
                write(out)


def format_reply(reply: Reply, with_text: bool = True, label: bool = False) -> str:
    if reply.status not in ("ok", "stopped"):
        return reply.text
    lines = [reply.text] if with_text else []
    if reply.citations:
        lines.append(sources_text(reply.citations))
    if label:
        lines.append(f"ⓘ {EMBEDDED_LABEL}")
    lines.extend(f"note: {n}" for n in reply.notes)
    lines.append(f"— {reply.footer()} · request {reply.request_id}")
    return "\n".join(lines)
