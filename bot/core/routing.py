"""Routing: which skill answers a request. Deterministic, no model call.

An explicit skill (slash command, `--skill`, `/name` in the shell) wins. Otherwise free text goes
to the skill whose description and examples share the most informative words with it, provided
the match is strong enough; else the default skill (`ask`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.core.skills import Skill

_WORD = re.compile(r"[a-z0-9][a-z0-9\-\.]*[a-z0-9]|[a-z0-9]")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "at",
        "by",
        "from",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "this",
        "that",
        "these",
        "those",
        "i",
        "me",
        "my",
        "we",
        "our",
        "you",
        "your",
        "he",
        "she",
        "they",
        "them",
        "his",
        "her",
        "their",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "when",
        "where",
        "why",
        "can",
        "could",
        "would",
        "should",
        "will",
        "do",
        "does",
        "did",
        "please",
        "pls",
        "hey",
        "hi",
        "hello",
        "thanks",
        "thank",
        "just",
        "about",
        "into",
        "as",
        "so",
        "if",
        "not",
        "no",
        "yes",
        "get",
        "got",
        "need",
        "want",
        "like",
        "some",
        "any",
        "all",
        "me",
        "tierwise",
        "bot",
        "new",
        "our",
        "us",
        "mine",
        "instead",
    ]
)
MIN_SCORE = 1.5  # below this the default skill answers
MIN_WORDS = 2  # one shared word ("email", "new") is chance, not intent
QUESTION = re.compile(
    r"^\s*(how|what|when|where|who|why|can|could|do|does|is|are|should|may|am)\b|\?\s*$", re.I
)
PATTERN_SCORE = 10.0  # the input's shape (an email header, a JSON alert) outweighs word overlap


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


@dataclass(frozen=True)
class Route:
    skill: str
    reason: str
    score: float = 0.0


@dataclass(frozen=True)
class _Profile:
    name: str
    vocab: Counter[str]
    patterns: tuple[re.Pattern[str], ...] = ()
    detect: Callable[[str], bool] | None = None


class Router:
    """Scores free text against each skill's description and examples (IDF-weighted overlap)."""

    def __init__(self, skills: Iterable[Skill], default: str = "ask") -> None:
        self.default = default
        self.profiles: list[_Profile] = []
        doc_freq: Counter[str] = Counter()
        for skill in skills:
            text = " ".join([skill.name.replace("-", " "), skill.description, *skill.examples])
            vocab = Counter(words(text))
            patterns = tuple(re.compile(p, re.IGNORECASE | re.MULTILINE) for p in skill.input_patterns)
            self.profiles.append(_Profile(skill.name, vocab, patterns, skill.detect))
            doc_freq.update(set(vocab))
        n = max(len(self.profiles), 1)
        self.idf = {w: math.log(1 + n / df) for w, df in doc_freq.items()}

    def score(self, text: str) -> list[tuple[str, float, list[str]]]:
        query = set(words(text))
        is_question = bool(QUESTION.search(text))
        results = []
        for profile in self.profiles:
            shared = sorted(w for w in query if w in profile.vocab)
            score = sum(self.idf[w] * (1 + math.log(profile.vocab[w])) for w in shared)
            # A question ("how do I…?") is the default skill's unless another skill is named clearly.
            needed = MIN_WORDS + (1 if is_question else 0)
            if profile.name != self.default and len(shared) < needed:
                score = 0.0
            if any(p.search(text) for p in profile.patterns) or (profile.detect and profile.detect(text)):
                score += PATTERN_SCORE
                shared = ["<input shape>", *shared]
            results.append((profile.name, score, shared))
        results.sort(key=lambda r: (-r[1], r[0]))
        return results

    def route(self, text: str, explicit: str | None = None, explicit_via: str = "explicit") -> Route:
        if explicit:
            return Route(explicit, f"{explicit_via}: {explicit}", 0.0)
        ranked = self.score(text)
        if ranked and ranked[0][1] >= MIN_SCORE:
            name, score, shared = ranked[0]
            runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
            if name == self.default or score > runner_up:
                return Route(name, f"matched {', '.join(shared[:5])} (score {score:.2f})", score)
        best = f" (best {ranked[0][0]} {ranked[0][1]:.2f})" if ranked and ranked[0][1] > 0 else ""
        return Route(self.default, f"default skill: no strong match{best}", 0.0)
