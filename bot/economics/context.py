"""The services the economics layer reads (settings, ledger, skills, packs), passed instead of the engine.

The tier review, digest, tier changes, skill values, scheduler jobs and shadow sampling only read
configuration and the ledger; they never handle a request, so they do not receive the `Engine`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.pipeline.engine import TierRules

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.context.packs import Pack
    from bot.core.skills import Registry
    from bot.ledger.store import Ledger
    from bot.pipeline.engine import Engine


@dataclass(frozen=True)
class EconomicsContext(TierRules):
    settings: Settings
    ledger: Ledger
    registry: Registry
    packs: Mapping[str, Pack]  # a skill is sensitive when one of its packs is

    @classmethod
    def of(cls, engine: Engine) -> EconomicsContext:
        """The same services the engine was built with (adapters and tests hold an engine)."""
        return cls(engine.settings, engine.ledger, engine.registry, engine.packs)
