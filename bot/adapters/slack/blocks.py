"""Block Kit for answers, progress placeholders and the feedback modal. Pure: data in, JSON-ready dicts out.

Answer bodies go in `markdown` blocks (Slack renders standard Markdown; at most 12,000 characters of
them per payload), with mentions and `<!channel>`-style pings from model output neutralised. mrkdwn
stays where a surface needs it: section fields of structured answers, our own notes and footers.

Blocks are built with `slack_sdk.models` classes, whose `to_dict()` validates Slack's documented limits,
so a payload that Slack would reject fails here, in tests, instead of in a user's channel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.adapters.slack.ids import (
    COMMENT_ACTION,
    COMMENT_BLOCK,
    FEEDBACK_BLOCK,
    FEEDBACK_MODAL,
    FEEDBACK_NATIVE,
    STOP_ACTION,
    STOP_BLOCK,
)
from bot.adapters.slack.mrkdwn import escape, to_mrkdwn
from bot.context.grounding import source_lines

if TYPE_CHECKING:
    from bot.core.types import Reply

# Documented limits (tests/fixtures/slack/limits.json).
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_PER_SECTION = 10
MESSAGE_BLOCKS_MAX = 50
CONTEXT_ELEMENTS_MAX = 10
UPDATE_TEXT_MAX = 4000  # chat.update answers `msg_too_long` above this
# Our own choices, below Slack's limits.
FALLBACK_TEXT_MAX = 3000  # notification/fallback text; stays under chat.update's 4,000
MESSAGE_CHARS = 12_000  # past this Slack collapses a message anyway; more readable as a thread of parts
FIELD_INLINE_MAX = 300  # longer structured values read better as their own section than as a column
CONTEXT_TEXT_MAX = 300

MARKDOWN_PAYLOAD_MAX = 12_000  # markdown blocks: cumulative characters per payload
PROGRESS_TEXT = "Working on it…"  # also marks placeholders, so thread history can skip them


@dataclass(frozen=True)
class Message:
    """One Slack message: plain-text fallback (notifications, screen readers) plus blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


# Text ------------------------------------------------------------------------------------------


# `<@U…>`, `<!channel>`, `<!subteam^…>` and bare `@here`-style words: a zero-width space after `<`
# (or `@`) keeps the text readable but makes it text, not a ping.
_PING = re.compile(r"<(?=[@!])|(?<![\w<])@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
ZWSP = "\u200b"


def neutralise(text: str) -> str:
    """Model output must not ping anyone: mentions and broadcasts become plain text."""
    return _PING.sub(lambda m: m.group(0) + ZWSP, text)


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    return text if len(text) <= limit else text[: max(0, limit - len(ellipsis))].rstrip() + ellipsis


def split_text(text: str, limit: int = SECTION_TEXT_MAX) -> list[str]:
    """Cut mrkdwn into chunks of at most `limit` characters.

    Cuts prefer a paragraph break, then a line break, then a space; never inside a `<link>` or an
    `&entity;`. A code block cut in two is closed at the end of one chunk and reopened in the next.
    """
    text = text.strip("\n")
    if len(text) <= limit:
        return [text] if text.strip() else []
    budget = limit - 8  # room for "```\n" + "\n```" around a chunk cut inside a code block
    lines = [piece for line in text.split("\n") for piece in _wrap(line, budget)]
    chunks: list[str] = []
    in_code = False
    start = 0
    while start < len(lines):
        end, size = start, -1
        while end < len(lines) and size + 1 + len(lines[end]) <= budget:
            size += 1 + len(lines[end])
            end += 1
        if end < len(lines):  # a paragraph break in the second half of the chunk is a better cut
            blank = max((i for i in range(start + 1, end) if not lines[i].strip()), default=None)
            if blank is not None and blank - start >= (end - start) // 2:
                end = blank
        body = lines[start:end]
        opened = in_code
        in_code ^= sum(1 for line in body if _is_fence(line)) % 2 == 1
        chunk = "\n".join(body).strip("\n")
        if opened:
            chunk = "```\n" + chunk
        if in_code:
            chunk += "\n```"
        if chunk.replace("```", "").strip():
            chunks.append(chunk)
        start = end
        while start < len(lines) and not lines[start].strip():
            start += 1
    return chunks


def _is_fence(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("```") and stripped.count("```") == 1


def _wrap(line: str, width: int) -> list[str]:
    """Split one over-long line at spaces (or hard), keeping links and entities whole."""
    out: list[str] = []
    while len(line) > width:
        cut = line.rfind(" ", 0, width + 1)
        if cut <= width // 2:
            cut = width
        opening, closing = line.rfind("<", 0, cut), line.rfind(">", 0, cut)
        if opening > closing and opening > 0:
            cut = opening
        amp = line.rfind("&", 0, cut)
        if amp > 0 and cut - amp < 6 and ";" not in line[amp:cut]:
            cut = amp
        out.append(line[:cut].rstrip())
        line = line[cut:].lstrip()
    out.append(line)
    return out


# Blocks ----------------------------------------------------------------------------------------


def section(text: str) -> dict[str, Any]:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_TEXT_MAX))).to_dict()


def context(texts: Iterable[str], *, markdown: bool = False) -> dict[str, Any]:
    """A context line; plain text by default so model names like `a_b_c` are not read as italics."""
    kind = MarkdownTextObject if markdown else PlainTextObject
    elements = [kind(text=truncate(t, CONTEXT_TEXT_MAX)) for t in texts if t][:CONTEXT_ELEMENTS_MAX]
    return ContextBlock(elements=elements).to_dict()


def markdown(text: str) -> dict[str, Any]:
    """A markdown block (standard Markdown, rendered by Slack); pings neutralised, within the limit."""
    return {"type": "markdown", "text": truncate(neutralise(text), MARKDOWN_PAYLOAD_MAX)}


def feedback_block(request_id: str) -> dict[str, Any]:
    """Slack's native 👍/👎 (feedback_buttons in context_actions); each value carries the request id."""
    return {
        "type": "context_actions",
        "block_id": FEEDBACK_BLOCK,
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_NATIVE,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "Helpful"},
                    "accessibility_label": "Mark this answer as helpful",
                    "value": f"up:{request_id}",
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "Not helpful"},
                    "accessibility_label": "Mark this answer as not helpful",
                    "value": f"down:{request_id}",
                },
            }
        ],
    }


def parse_feedback_value(value: str) -> tuple[int, str] | None:
    """(score, request id) of a feedback_buttons click; None for anything else."""
    kind, _, request_id = value.partition(":")
    score = {"up": 1, "down": -1}.get(kind)
    return (score, request_id) if score is not None and request_id else None


def footer_block(reply: Reply) -> dict[str, Any]:
    """skill · tier · model · $cost · seconds, then notes and sources (unless listed with links)."""
    texts = [reply.footer(), *reply.notes]
    if reply.status == "stopped":
        texts.append("Stopped before the end: the answer above is partial.")
    if reply.sources and not reply.citations:
        texts.append("Sources: " + " · ".join(reply.sources))
    return context(texts)


def sources_block(reply: Reply) -> dict[str, Any] | None:
    """The documents and sections the answer was given: title › section (path), a link when the
    pack declares a base URL."""
    if not reply.citations:
        return None
    items = []
    for line in source_lines(reply.citations):
        label, _, rest = line.partition(" — ")
        path, _, url = rest.partition(" <")
        shown = f"<{url.rstrip('>')}|{escape(label)}>" if url else escape(label)
        items.append(f"{shown} (`{escape(path)}`)")
    return context([truncate("*Sources:* " + " · ".join(items), 3000)], markdown=True)


def structured_blocks(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Structured output as `Label: value` section fields; long values get a section of their own."""
    fields: list[str] = []
    long: list[str] = []
    for key, value in data.items():
        label = escape(key.replace("_", " ").capitalize())
        rendered = value_text(value)
        if len(rendered) <= FIELD_INLINE_MAX:
            fields.append(f"*{label}*\n{rendered}")
        else:
            long.append(f"*{label}*\n{rendered}")
    blocks = [
        SectionBlock(
            fields=[
                MarkdownTextObject(text=truncate(f, FIELD_TEXT_MAX))
                for f in fields[i : i + FIELDS_PER_SECTION]
            ]
        ).to_dict()
        for i in range(0, len(fields), FIELDS_PER_SECTION)
    ]
    for text in long:
        blocks.extend(section(chunk) for chunk in split_text(text))
    return blocks


def value_text(value: Any) -> str:
    """One structured value as mrkdwn: lists joined, booleans as Yes/No, text converted."""
    if value is None or value == [] or value == "":
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        items = [value_text(v) for v in value]
        if sum(len(i) for i in items) < 80 and all("\n" not in i for i in items):
            return ", ".join(items)
        return "\n".join(f"• {i}" for i in items)
    if isinstance(value, dict):
        return "\n".join(f"{escape(str(k))}: {value_text(v)}" for k, v in value.items())
    return to_mrkdwn(str(value))


# Messages --------------------------------------------------------------------------------------


def reply_messages(
    reply: Reply,
    *,
    asked: str | None = None,
    max_blocks: int = MESSAGE_BLOCKS_MAX,
    max_chars: int = MESSAGE_CHARS,
    label: str | None = None,
) -> list[Message]:
    """The answer as one or more messages: body sections, then the footer and 👍/👎 on the last one.

    `asked` (mrkdwn) heads the first message when the question is not visible above it
    (slash commands, shortcuts). `label` (the built-in model's one line) goes under the answer.
    """
    if reply.status == "ok" and reply.structured:
        body = structured_blocks(reply.structured)
    elif reply.status in ("ok", "stopped") and reply.text.strip():
        body = [markdown(chunk) for chunk in split_text(reply.text, MARKDOWN_PAYLOAD_MAX)]
    elif reply.status in ("ok", "stopped"):
        body = [section("_(the model returned an empty answer)_")]
    else:  # error / invalid: one short line with the request id, details are in the ledger
        body = [section(escape(reply.text))]
    head = [context([asked], markdown=True)] if asked else []
    sources = sources_block(reply) if reply.status in ("ok", "stopped") else None
    tail = [sources] if sources else []
    if label:
        tail.append(context([f"ⓘ {label}"]))
    tail += [footer_block(reply)] if reply.tier else []
    if reply.status in ("ok", "stopped") and reply.request_id:
        tail.append(feedback_block(reply.request_id))
    return [
        Message(fallback_text(blocks), blocks) for blocks in _pack(head, body, tail, max_blocks, max_chars)
    ]


def stream_final_blocks(reply: Reply, streamed_body: bool, label: str | None = None) -> list[dict[str, Any]]:
    """Blocks that finish a streamed answer (chat.stopStream `blocks`, rendered under the text).

    The text itself was streamed when `streamed_body`; otherwise (structured fields, an error after a
    progress line) the body comes here. Footer and feedback always do.
    """
    full = reply_messages(reply, max_chars=10**9)[0].blocks if not streamed_body else []
    sources = sources_block(reply) if reply.status in ("ok", "stopped") else None
    tail = [sources] if sources else []
    if label:
        tail.append(context([f"ⓘ {label}"]))
    tail += [footer_block(reply)] if reply.tier else []
    if reply.status in ("ok", "stopped") and reply.request_id:
        tail.append(feedback_block(reply.request_id))
    body = [b for b in full if b.get("block_id") != FEEDBACK_BLOCK and b.get("type") != "context"]
    return [*body[: MESSAGE_BLOCKS_MAX - len(tail)], *tail]


def _pack(
    head: list[dict[str, Any]],
    body: list[dict[str, Any]],
    tail: list[dict[str, Any]],
    max_blocks: int,
    max_chars: int,
) -> list[list[dict[str, Any]]]:
    messages: list[list[dict[str, Any]]] = []
    current = list(head)
    chars = 0
    for block in body:
        size = len(block_text(block))
        if len(current) > len(head if not messages else []) and (
            len(current) + 1 > max_blocks or chars + size > max_chars
        ):
            messages.append(current)
            current, chars = [], 0
        current.append(block)
        chars += size
    if len(current) + len(tail) > max_blocks:
        messages.append(current)
        current = []
    messages.append(current + tail)
    return messages


def block_text(block: dict[str, Any]) -> str:
    """The readable text of a block (section text and fields, context elements)."""
    parts: list[str] = []
    if block.get("type") == "markdown":
        parts.append(block.get("text", ""))
    if isinstance(block.get("text"), dict):
        parts.append(block["text"].get("text", ""))
    parts.extend(f.get("text", "") for f in block.get("fields") or [])
    if block.get("type") == "context":
        parts.extend(e.get("text", "") for e in block.get("elements") or [] if isinstance(e, dict))
    return "\n".join(p for p in parts if p)


def fallback_text(blocks: Sequence[dict[str, Any]]) -> str:
    """The message's `text`: what notifications show and what thread history reads back."""
    sections = [block_text(b) for b in blocks if b.get("type") in ("section", "markdown")]
    text = "\n".join(t for t in sections if t) or "\n".join(block_text(b) for b in blocks)
    return truncate(text, FALLBACK_TEXT_MAX) or "Tierwise"


def progress_message(
    asked: str | None = None, status: str | None = None, stop_key: str | None = None
) -> Message:
    """The placeholder shown while the model works; replaced by the answer via chat.update.
    `status` says more (a queue position); the text still ends with PROGRESS_TEXT, which marks it.
    With `stop_key`, a Stop button ends the answer where it is."""
    blocks = [context([asked], markdown=True)] if asked else []
    line = f"{status}. {PROGRESS_TEXT}" if status else PROGRESS_TEXT
    blocks.append(context([f"⏳ {line}"]))
    if stop_key:
        stop = ButtonElement(text=PlainTextObject(text="Stop"), action_id=STOP_ACTION, value=stop_key)
        blocks.append(ActionsBlock(block_id=STOP_BLOCK, elements=[stop]).to_dict())
    return Message(line, blocks)


def asked_line(user: str, what: str, text: str = "") -> str:
    """`<@U…> asked /ask: question` — the question above an answer to a command or shortcut."""
    question = f": {escape(truncate(' '.join(text.split()), 200))}" if text.strip() else ""
    return f"<@{user}> used `{escape(what)}`{question}"


def feedback_modal(request_id: str) -> dict[str, Any]:
    """The 👎 follow-up: what was wrong (optional). private_metadata carries the request id."""
    return View(
        type="modal",
        callback_id=FEEDBACK_MODAL,
        title=PlainTextObject(text="What was wrong?"),
        submit=PlainTextObject(text="Send"),
        close=PlainTextObject(text="Skip"),
        private_metadata=request_id,
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text="Your 👎 is recorded. A few words on what was wrong help us fix it."
                )
            ),
            InputBlock(
                block_id=COMMENT_BLOCK,
                label=PlainTextObject(text="What was wrong? (optional)"),
                element=PlainTextInputElement(action_id=COMMENT_ACTION, multiline=True, max_length=2000),
                optional=True,
            ),
        ],
    ).to_dict()
