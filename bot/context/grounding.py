"""What an answer stands on, said plainly: its sources, the pack not covering a question, and the
label on answers from the small built-in model. Pure: data in, text out (Slack renders its own blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.context.packs import Citation, TieredSelection

# A question the pack does not speak to: no section shares its words, or the best one holds little of
# the question's rarity-weighted terms. Calibrated on evals/ask.jsonl with the built-in handbook: every
# answerable case has coverage >= 0.23 (raw BM25 scores depend on the pack, so they are not used).
# Lexical evidence cannot tell "linux laptop" from "new laptop", so the gate is conservative: only
# plainly unrelated questions stop here; the prompt still tells the model to say when the context
# does not answer.
MIN_COVERAGE = 0.2

EMBEDDED_LABEL = (
    "This answer comes from the small built-in model (SmolLM2-135M, offline): for better answers, "
    "configure a real tier (see tierwise.example.toml)."
)


def covered(selection: TieredSelection) -> bool:
    """Does the pack speak to the question at all? (No section matched, or only in passing: no.)"""
    # Judged on the ranking, not on what fitted: a tight budget is not a pack that lacks the answer.
    return selection.best_score > 0 and selection.coverage >= MIN_COVERAGE


def pack_label(names: Sequence[str]) -> str:
    """`company-handbook` → "the company handbook"; several packs → "the context packs"."""
    if len(names) == 1:
        return "the " + names[0].replace("-", " ").replace("_", " ")
    return "the context packs"


def not_covered_text(pack_names: Sequence[str], closest: Sequence[Citation]) -> str:
    """The answer when nothing relevant was found: say so, and where a person might look next."""
    lines = [f"{pack_label(pack_names).capitalize()} doesn't cover this, so I won't guess."]
    if closest:
        lines.append("The closest documents are:")
        lines.extend(f"• {c.title} ({c.doc})" for c in closest)
    return "\n".join(lines)


def source_lines(citations: Sequence[Citation]) -> list[str]:
    """One line per document used, sections merged: `title › section — path <url>`."""
    merged: dict[str, tuple[Citation, list[str]]] = {}
    for c in citations:
        first, sections = merged.setdefault(c.doc, (c, []))
        if c.section and c.section not in sections and c.section != c.title:
            sections.append(c.section)
    lines = []
    for first, sections in merged.values():
        label = f"{first.title} › {' · '.join(sections)}" if sections else first.title
        url = first.url.split("#", 1)[0] if first.url and len(sections) != 1 else first.url
        lines.append(f"{label} — {first.doc}" + (f" <{url}>" if url else ""))
    return lines


def sources_text(citations: Sequence[Citation]) -> str:
    """The sources block under an answer in a terminal (CLI and shell)."""
    if not citations:
        return ""
    return "\n".join(["Sources:", *(f"  • {line}" for line in source_lines(citations))])
