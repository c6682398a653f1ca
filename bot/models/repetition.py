"""Small models loop: the same sentence again, or the same few words over and over. Find where a
text starts repeating and cut it back to the last complete sentence before that. Pure functions.
"""

from __future__ import annotations

import re

MIN_SENTENCE_CHARS = 12  # "Yes." twice is not a loop; a repeated clause of a dozen characters is
MAX_PHRASE_WORDS = 8
PHRASE_REPEATS = 3  # the same 1-8 words three times in a row

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
_SENTENCE_END = re.compile(r"[.!?](?=[\s\"')\]*_]|$)|\n")
_WORD = re.compile(r"\S+")
_DANGLING_MARKER = re.compile(r"(?:^|\n)[ \t]*(?:[-*•]|\d+[.)])?[ \t]*$")
_NOISE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*|[^\w\s]")


def _normal(sentence: str) -> str:
    """A sentence compared without list markers, punctuation, case or spacing."""
    return " ".join(_NOISE.sub(" ", sentence.lower()).split())


def loop_start(text: str) -> int | None:
    """Where the text starts repeating itself (the offset of the first repeat), or None."""
    starts: list[int] = []
    seen: set[str] = set()
    for match in _SENTENCE.finditer(text):
        key = _normal(match.group())
        if len(key) < MIN_SENTENCE_CHARS:
            continue
        if key in seen:
            starts.append(match.start() + (len(match.group()) - len(match.group().lstrip())))
            break
        seen.add(key)
    words = [(m.start(), m.group().lower().strip(".,;:!?")) for m in _WORD.finditer(text)]
    tokens = [w for _, w in words]
    for i in range(len(tokens)):
        if starts and words[i][0] >= starts[0]:
            break
        found = False
        for n in range(1, MAX_PHRASE_WORDS + 1):
            end = i + n * PHRASE_REPEATS
            if end > len(tokens):
                break
            phrase = tokens[i : i + n]
            if all(tokens[i + k * n : i + (k + 1) * n] == phrase for k in range(1, PHRASE_REPEATS)):
                starts.append(words[i + n][0])
                found = True
                break
        if found:
            break
    return min(starts) if starts else None


def last_sentence_end(text: str) -> int:
    """The offset just after the last complete sentence (or line) in `text`; 0 when there is none."""
    end = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
    return end


def cut_repetition(text: str) -> tuple[str, bool]:
    """(the text up to its last complete sentence before it starts repeating, whether it was cut)."""
    start = loop_start(text)
    if start is None:
        return text, False
    head = _DANGLING_MARKER.sub("", text[:start])  # "2." left over from a repeated list item
    end = last_sentence_end(head)
    kept = head[:end] if end else head
    return kept.rstrip(), True


def cut_unfinished(text: str) -> str:
    """A reply that hit the token limit ends mid-sentence: drop the broken tail (if any sentence ends)."""
    stripped = text.rstrip()
    if not stripped or stripped[-1] in ".!?)\"'`*":
        return stripped
    end = last_sentence_end(stripped)
    return stripped[:end].rstrip() if end else stripped


def final_text(text: str, hit_limit: bool) -> str:
    """An answer as it is kept: cut where it starts repeating, else (at the token limit) where it broke off."""
    text, looped = cut_repetition(text)
    if not looped and hit_limit:
        text = cut_unfinished(text)
    return text.strip()


_LAST_GAP = re.compile(r"\s\S*$")


def settled(text: str, fresh: int) -> int:
    """How much of a text being generated survives `final_text` whatever comes next, given that the
    text before its last `fresh` characters has no loop (`loop_start` said so). A stream shows no more
    than this, so it never shows what the kept answer cuts.

    A loop then has to involve the fresh text: a repeated sentence starts no earlier than the sentence
    the fresh text began in, and a phrase's three repeats (whose middle one is the cut point) reach back
    at most 2 × MAX_PHRASE_WORDS words before the first word the fresh text touched (a word may still
    grow). The cut goes back to the last sentence end before that point, as in `cut_repetition`.
    """
    before = len(text) - fresh
    bound = 0
    for match in _SENTENCE.finditer(text):
        if match.start() > before:
            break
        bound = match.start()
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    touched = next((i for i, (_, end) in enumerate(words) if end >= before), len(words))
    first = touched - 2 * MAX_PHRASE_WORDS
    if first < len(words):
        bound = min(bound, words[max(0, first)][0])
    gap = _LAST_GAP.search(text[:bound])  # back to a word's start: a "." there ends a sentence in full
    bound = gap.start() + 1 if gap else 0
    return last_sentence_end(_DANGLING_MARKER.sub("", text[:bound]))
