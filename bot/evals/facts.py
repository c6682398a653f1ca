"""Deterministic offline quality for open answers: did the answer state the key facts, and did it
stand on the right handbook document? No judge model needed, so it works offline and never drifts.

A key fact is a short phrase; `a|b` accepts either wording ("ZPA|Zscaler Private Access"). Matching
ignores case, Markdown emphasis and spacing, and respects word edges ("20" is not found in "2026").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_MARKUP = re.compile(r"[*_`]")
_SPACE = re.compile(r"\s+")
_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "‐": "-", "‑": "-"})


def _normal(text: str) -> str:
    return _SPACE.sub(" ", _MARKUP.sub("", text.translate(_QUOTES).lower())).strip()


def has_fact(answer: str, fact: str) -> bool:
    """Whether the answer states the fact in one of its accepted wordings."""
    text = _normal(answer)
    for wording in fact.split("|"):
        phrase = _normal(wording)
        if not phrase:
            continue
        # Word edges only where the phrase itself starts/ends with a word character.
        left = r"(?<!\w)" if phrase[0].isalnum() else ""
        right = r"(?!\w)" if phrase[-1].isalnum() else ""
        if re.search(left + re.escape(phrase) + right, text):
            return True
    return False


def key_fact_recall(answer: str, facts: Sequence[str]) -> float | None:
    """The share of key facts the answer states; None when the case lists none."""
    if not facts:
        return None
    return sum(has_fact(answer, f) for f in facts) / len(facts)


def right_source(cited: Iterable[str], expected: Sequence[str]) -> bool:
    """The answer stood on an expected document; a case expecting none is right when nothing was cited
    (the pack does not cover the question and the answer said so)."""
    docs = set(cited)
    return bool(docs & set(expected)) if expected else not docs
