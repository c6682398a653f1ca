"""The one tier ladder: tier order, neighbours and the data boundary.

Every question of the form "which tier next?" is answered here, so that the engine, budgets,
shadow sampling, the tier review, evals and the CLI cannot disagree about it. The rule that
carries the product's privacy promise lives here too: work on sensitive data stays on tiers whose
data boundary is `local`.

Pure: built from tier names (cheapest first) and their boundaries; no settings object, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

Boundary = Literal["local", "external"]
Direction = Literal["up", "down"]


class UnknownTierError(ValueError):
    """A tier name that is not on the ladder."""


@dataclass(frozen=True)
class Placement:
    """Where a request may run: the tier (None when no tier may take it) and why it moved, if it did."""

    tier: str | None
    note: str | None = None

    @property
    def moved(self) -> bool:
        return self.note is not None and self.tier is not None


@dataclass(frozen=True)
class Ladder:
    tiers: tuple[str, ...]  # cheapest first
    boundaries: Mapping[str, Boundary] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a ladder needs at least one tier")
        if len(set(self.tiers)) != len(self.tiers):
            raise ValueError(f"duplicate tier names in {list(self.tiers)}")

    @classmethod
    def of(cls, tiers: Iterable[tuple[str, Boundary]]) -> Ladder:
        pairs = list(tiers)
        return cls(tuple(name for name, _ in pairs), {name: b for name, b in pairs})

    # Order ------------------------------------------------------------------------------

    def __contains__(self, tier: object) -> bool:
        return tier in self.tiers

    def __iter__(self) -> Iterator[str]:
        return iter(self.tiers)

    def __len__(self) -> int:
        return len(self.tiers)

    def index(self, tier: str) -> int:
        try:
            return self.tiers.index(tier)
        except ValueError:
            raise UnknownTierError(f"unknown tier {tier!r}. Valid tiers: {', '.join(self.tiers)}") from None

    def boundary(self, tier: str) -> Boundary:
        self.index(tier)
        return self.boundaries.get(tier, "external")

    def is_stronger(self, tier: str, than: str) -> bool:
        return self.index(tier) > self.index(than)

    def steps(self, frm: str, to: str) -> int:
        """Signed rungs from `frm` to `to` (positive = up the ladder)."""
        return self.index(to) - self.index(frm)

    # The data boundary ------------------------------------------------------------------

    def allows(self, tier: str, sensitive: bool) -> bool:
        """Sensitive work never leaves the local boundary."""
        return not sensitive or self.boundary(tier) == "local"

    def allowed(self, sensitive: bool) -> list[str]:
        """Every tier this work may use, cheapest first."""
        return [t for t in self.tiers if self.allows(t, sensitive)]

    def place(self, tier: str, sensitive: bool, who: str = "this skill") -> Placement:
        """The tier a request asked for, or the nearest allowed one (cheaper first, then stronger)."""
        if self.allows(tier, sensitive):
            return Placement(tier)
        i = self.index(tier)
        below = [t for t in reversed(self.tiers[:i]) if self.allows(t, sensitive)]
        above = [t for t in self.tiers[i + 1 :] if self.allows(t, sensitive)]
        choice = next(iter(below or above), None)
        if choice is None:
            return Placement(None, f"{who} handles sensitive data and no local tier is configured")
        return Placement(choice, f"sensitive: moved from external tier {tier} to local tier {choice}")

    # Neighbours -------------------------------------------------------------------------

    def above(self, tier: str, sensitive: bool = False) -> list[str]:
        """Allowed tiers stronger than `tier`, nearest first."""
        return [t for t in self.tiers[self.index(tier) + 1 :] if self.allows(t, sensitive)]

    def below(self, tier: str, sensitive: bool = False) -> list[str]:
        """Allowed tiers cheaper than `tier`, nearest first."""
        return [t for t in reversed(self.tiers[: self.index(tier)]) if self.allows(t, sensitive)]

    def stronger(self, tier: str, sensitive: bool = False) -> str | None:
        """The nearest allowed stronger tier (an escalation's target), or None at the top."""
        return next(iter(self.above(tier, sensitive)), None)

    def cheaper(self, tier: str, sensitive: bool = False) -> str | None:
        """The nearest allowed cheaper tier (a budget step-down's target), or None at the bottom."""
        return next(iter(self.below(tier, sensitive)), None)

    def neighbour(self, tier: str, direction: Direction, sensitive: bool = False) -> str | None:
        return self.stronger(tier, sensitive) if direction == "up" else self.cheaper(tier, sensitive)

    def cheapest(self, sensitive: bool = False) -> str | None:
        allowed = self.allowed(sensitive)
        return allowed[0] if allowed else None

    def strongest(self, sensitive: bool = False) -> str | None:
        allowed = self.allowed(sensitive)
        return allowed[-1] if allowed else None

    def others(self, tier: str, sensitive: bool = False) -> list[str]:
        """Every other allowed tier, nearest first (ties: the cheaper one first)."""
        i = self.index(tier)
        rest = [t for t in self.tiers if t != tier and self.allows(t, sensitive)]
        return sorted(rest, key=lambda t: (abs(self.index(t) - i), self.index(t)))
