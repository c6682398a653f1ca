"""Markdown (what models write) → Slack mrkdwn (what Slack renders). Pure functions, no Slack calls.

Slack's dialect differs from Markdown: `*bold*`, `_italic_`, `~strike~`, `<url|text>` links, no
headings, no tables; and `&`, `<`, `>` must be sent as entities. Escaping also means a model can
never produce a live `<!channel>` or `<@U…>` ping: only the links built here are real markup.
"""

from __future__ import annotations

import re

__all__ = ["escape", "to_mrkdwn", "unescape"]

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_QUOTE = re.compile(r"^\s{0,3}>\s?(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_ORDERED = re.compile(r"^(\s*)(\d{1,9})[.)]\s+(.*)$")
_TASK = re.compile(r"^\[([ xX])\]\s+")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_TOKEN = re.compile(r"\x00(\d+)\x00")

_BOLD_MARK = "\x01"  # stands for a Slack `*` while single-star italics are rewritten
_BULLETS = ("•", "◦", "▪")


def escape(text: str) -> str:
    """Entity-escape the three characters Slack treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo `escape` (Slack sends message text escaped the same way)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def to_mrkdwn(markdown: str) -> str:
    """Convert Markdown to Slack mrkdwn: emphasis, headings, links, lists, quotes, tables; code kept."""
    out: list[str] = []
    table: list[str] = []
    in_fence = False
    for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if _FENCE.match(line):
            out.extend(_flush_table(table))
            out.append("```")  # the language tag would show as text in Slack
            in_fence = not in_fence
            continue
        if in_fence:
            out.append(escape(line))
            continue
        if _TABLE_ROW.match(line):
            table.append(line)
            continue
        out.extend(_flush_table(table))
        out.append(_block_line(line))
    out.extend(_flush_table(table))
    if in_fence:
        out.append("```")  # a model that stopped mid-block must not swallow the footer
    return "\n".join(out).strip("\n")


def _block_line(line: str) -> str:
    """One line outside code blocks: headings, rules, quotes and list markers, then inline markup."""
    if match := _HEADING.match(line):
        title = _BOLD.sub(lambda m: m.group(1) or m.group(2), match.group(2))
        return f"*{_inline(title)}*" if title else ""
    if _RULE.match(line):
        return "──────────"
    if match := _QUOTE.match(line):
        return "> " + _block_line(match.group(1)).lstrip()
    if match := _BULLET.match(line):
        depth = _depth(match.group(1))
        body = _TASK.sub(lambda m: "☑ " if m.group(1).strip() else "☐ ", match.group(2))
        return f"{'    ' * depth}{_BULLETS[min(depth, len(_BULLETS) - 1)]} {_inline(body)}"
    if match := _ORDERED.match(line):
        return f"{'    ' * _depth(match.group(1))}{match.group(2)}. {_inline(match.group(3))}"
    return _inline(line)


def _depth(indent: str) -> int:
    return len(indent.replace("\t", "    ")) // 2


def _inline(text: str) -> str:
    """Inline markup of one line; code spans are kept verbatim (escaped only)."""
    parts: list[str] = []
    last = 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(_inline_text(text[last : match.start()]))
        parts.append(f"`{escape(match.group(2).strip() or match.group(2))}`")
        last = match.end()
    parts.append(_inline_text(text[last:]))
    return "".join(parts)


def _inline_text(text: str) -> str:
    if not text:
        return ""
    links: list[str] = []

    def keep(url: str, label: str) -> str:
        label = label.strip() or url
        links.append(f"<{escape(url)}|{escape(label)}>" if label != url else f"<{escape(url)}>")
        return f"\x00{len(links) - 1}\x00"

    text = _IMAGE.sub(lambda m: keep(m.group(2), m.group(1)), text)
    text = _LINK.sub(lambda m: keep(m.group(2), _plain_label(m.group(1))), text)
    text = _AUTOLINK.sub(lambda m: keep(m.group(1), m.group(1)), text)
    text = escape(text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(1) or m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = text.replace(_BOLD_MARK, "*")
    return _TOKEN.sub(lambda m: links[int(m.group(1))], text)


def _plain_label(label: str) -> str:
    """Link labels cannot carry emphasis in Slack: drop the Markdown markers."""
    return re.sub(r"(\*\*|__|\*|_|~~|`)", "", label)


def _flush_table(rows: list[str]) -> list[str]:
    """A Markdown table becomes an aligned code block (Slack has no tables); other `|` lines stay text."""
    if not rows:
        return []
    taken = list(rows)
    rows.clear()
    if len(taken) < 2 or not _TABLE_SEPARATOR.match(taken[1]):
        return [_block_line(row) for row in taken]
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in [taken[0], *taken[2:]]]
    width = max(len(r) for r in cells)
    cells = [r + [""] * (width - len(r)) for r in cells]
    sizes = [max(len(r[i]) for r in cells) for i in range(width)]
    lines = [" | ".join(c.ljust(sizes[i]) for i, c in enumerate(r)).rstrip() for r in cells]
    lines.insert(1, "-+-".join("-" * s for s in sizes))
    return ["```", *(escape(line) for line in lines), "```"]
