"""The services the economics layer reads (settings, ledger, skills, packs), passed instead of the engine.

The tier review, digest, tier changes, skill values, scheduler jobs and shadow sampling only read
configuration and the ledger; they never handle a request, so they do not receive the `Engine`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.pipeline.engine import configured_tier, is_sensitive, tier_ladder

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.context.packs import Pack
    from bot.core.ladder import Ladder
    from bot.core.skills import Registry, Skill
    from bot.ledger.store import Ledger
    from bot.pipeline.engine import Engine


@dataclass(frozen=True)
class EconomicsContext:
    settings: Settings
    ledger: Ledger
    registry: Registry
    packs: Mapping[str, Pack]  # a skill is sensitive when one of its packs is

    @classmethod
    def of(cls, engine: Engine) -> EconomicsContext:
        """The same services the engine was built with (adapters and tests hold an engine)."""
        return cls(engine.settings, engine.ledger, engine.registry, engine.packs)

    @property
    def tiers(self) -> list[str]:
        return self.settings.tier_names

    @property
    def ladder(self) -> Ladder:
        return tier_ladder(self.settings)

    def configured_tier(self, skill: Skill) -> tuple[str, str]:
        return configured_tier(self.settings, self.ledger, skill)

    def is_sensitive(self, skill: Skill) -> bool:
        return is_sensitive(self.settings, self.packs, skill)

    def allowed_tier(self, skill: Skill, tier: str) -> tuple[str | None, str | None]:
        """Sensitive work never leaves the local boundary (the engine's rule, via the Ladder)."""
        placed = self.ladder.place(tier, self.is_sensitive(skill), who=skill.name)
        return placed.tier, placed.note
