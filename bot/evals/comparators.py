"""Deterministic comparators for structured skills: per-field exact or set matches.

A skill's comparator is part of its declaration, so golden-set evals and shadow evaluation
score outputs the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.skills import CaseScore, FieldScore

FieldCheck = Callable[[Any, Any], bool]


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def exact(expected: Any, actual: Any) -> bool:
    return _norm(expected) == _norm(actual)


def _as_set(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        value = [value]
    return {str(v).strip().upper() for v in value}


def set_equal(expected: Any, actual: Any) -> bool:
    return _as_set(expected) == _as_set(actual)


def set_contains(expected: Any, actual: Any) -> bool:
    """Every expected item is present (extra items are allowed)."""
    return _as_set(expected) <= _as_set(actual)


def technique_match(expected: Any, actual: Any) -> bool:
    """ATT&CK ids: each expected id is present, or its parent or a child of it is (T1566 ~ T1566.001);
    a sibling sub-technique (T1566.002 for T1566.001) is a different technique and does not count."""
    got = _as_set(actual)

    def found(want: str) -> bool:
        if want in got:
            return True
        if "." in want:
            return want.split(".")[0] in got
        return any(g.split(".")[0] == want for g in got)

    return all(found(e) for e in _as_set(expected))


@dataclass(frozen=True)
class FieldsComparator:
    """Scores the fields named in `expected` with a check per field (`exact` where none is given).

    Shadow evaluation compares two tiers' outputs on `fields` only: the ones the skill declared.
    """

    checks: Mapping[str, FieldCheck]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.checks)

    def __call__(self, expected: dict[str, Any], output: dict[str, Any]) -> CaseScore:
        scores = []
        for name, want in expected.items():
            check = self.checks.get(name, exact)
            got = output.get(name)
            scores.append(FieldScore(name, want, got, bool(check(want, got))))
        return summarize(scores)


def fields_comparator(checks: Mapping[str, FieldCheck]) -> FieldsComparator:
    """A comparator over the fields named in `expected` (fields it does not name are not scored)."""
    return FieldsComparator(dict(checks))


def summarize(scores: Iterable[FieldScore]) -> CaseScore:
    scores = tuple(scores)
    if not scores:
        return CaseScore(passed=False, score=0.0, detail="nothing to compare")
    passed = sum(s.passed for s in scores)
    misses = [f"{s.field}: expected {s.expected!r}, got {s.actual!r}" for s in scores if not s.passed]
    return CaseScore(
        passed=passed == len(scores),
        score=passed / len(scores),
        fields=scores,
        detail="; ".join(misses) or "all fields match",
    )
