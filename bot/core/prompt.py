"""Prompt assembly and structured-output parsing. Pure: no model, no Slack, no database.

The user's text only ever lands in `user` messages; the skill's instructions, the pack context
and the output contract live in the system message, so nothing a user types can change them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ValidationError

from bot.core.skills import Skill

CONTEXT_HEADER = (
    "Curated context follows. Use it as your source of truth; when it does not cover the question, say so "
    "plainly instead of guessing."
)


EXCERPT_LEAD = "Excerpt:"


@dataclass(frozen=True)
class PromptParts:
    instructions: str
    context: str = ""
    output_contract: str = ""
    history: tuple[dict[str, str], ...] = ()
    user_text: str = ""
    notes: tuple[str, ...] = field(default=())
    # A tiny model follows context right above the question far better than context in the system
    # message (issue 14): the excerpt then leads the user turn. Instructions stay in the system message.
    context_in_user: bool = False

    def messages(self) -> list[dict[str, str]]:
        system = [self.instructions.strip()]
        if self.context and self.context_in_user:
            out = [
                {
                    "role": "system",
                    "content": "\n\n".join(
                        [*system, self.output_contract] if self.output_contract else system
                    ),
                }
            ]
            out.extend(dict(m) for m in self.history)
            out.append(
                {"role": "user", "content": f"{EXCERPT_LEAD}\n{self.context}\n\nQuestion: {self.user_text}"}
            )
            return out
        if self.context:
            system.append(f"{CONTEXT_HEADER}\n\n<context>\n{self.context}\n</context>")
        if self.output_contract:
            system.append(self.output_contract)
        out = [{"role": "system", "content": "\n\n".join(system)}]
        out.extend(dict(m) for m in self.history)
        out.append({"role": "user", "content": self.user_text})
        return out


def output_contract(model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    return (
        "Reply with exactly one JSON object and nothing else (no prose, no code fences). "
        f"It must match this JSON schema:\n{json.dumps(schema, separators=(',', ':'))}"
    )


def citation_rule() -> str:
    return "End with a line 'Sources:' listing the context document paths you used, e.g. [it/vpn-access.md]."


def build_parts(
    skill: Skill,
    user_text: str,
    context: str,
    history: list[dict[str, str]] | None = None,
    notes: tuple[str, ...] = (),
    compact: bool = False,
) -> PromptParts:
    """`compact`: the tiny-model layout, context above the question and no citation rule (the
    sources are listed under the answer from the selection, not by the model)."""
    instructions = skill.instructions
    if skill.cite_sources and context and not compact:
        instructions = f"{instructions.rstrip()}\n{citation_rule()}"
    parts = PromptParts(
        instructions=instructions,
        context=context,
        output_contract=output_contract(skill.output) if skill.output else "",
        history=tuple(history or ()),
        user_text=user_text,
        notes=notes,
        context_in_user=compact,
    )
    if skill.build_prompt is not None:
        custom = skill.build_prompt(parts)
        # A hook may reshape the prompt but the skill's own instructions always lead.
        if not custom.instructions.startswith(skill.instructions.strip()[:40]):
            custom = replace(custom, instructions=f"{parts.instructions}\n\n{custom.instructions}")
        parts = custom
    return parts


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The first JSON object in a model reply (tolerates code fences and chatter around it)."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        start = candidate.find("{")
        while start != -1:
            try:
                obj, _ = decoder.raw_decode(candidate[start:])
            except json.JSONDecodeError:
                start = candidate.find("{", start + 1)
                continue
            if isinstance(obj, dict):
                return obj
            start = candidate.find("{", start + 1)
    raise ValueError("the reply contains no JSON object")


def parse_output(skill: Skill, text: str) -> BaseModel:
    """Validate a structured reply; raises ValueError with a short reason."""
    assert skill.output is not None
    obj = extract_json(text)
    try:
        parsed = skill.output.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "reply"
        raise ValueError(f"{where}: {first['msg']} ({exc.error_count()} problem(s))") from exc
    if skill.check_output is not None:
        skill.check_output(parsed)
    return parsed


def trim_text(text: str, budget: int, count: Callable[[str], int]) -> tuple[str, str | None]:
    """Trim user text to the token budget; returns (text, note or None)."""
    total = count(text)
    if total <= budget:
        return text, None
    lo, hi = 0, len(text)
    while lo < hi:  # binary search on characters: exact and fast enough for a few thousand tokens
        mid = (lo + hi + 1) // 2
        if count(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    note = f"Your message was {total:,} tokens; only the first {budget:,} were used."
    return text[:lo], note
