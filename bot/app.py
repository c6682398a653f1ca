"""The composition root: builds Tierwise's services from settings. Nothing else constructs them.

Adapters (CLI, Slack, the shell), benchmarks and tests ask this module for an engine; the engine's
stages and the economics services receive what they use, never a service locator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.ledger.store import Ledger
    from bot.models.llm import LLM
    from bot.pipeline.engine import Engine


def build_engine(
    settings: Settings,
    llm: LLM | None = None,
    ledger: Ledger | None = None,
    with_economics: bool = True,
) -> Engine:
    """Skills (built-in, plugin, folders), their packs, the ledger, the model edge and, unless told
    otherwise, budgets and shadow sampling."""
    from bot.context.packs import builtin_packs_dir, load_packs
    from bot.core.skills import discover_skills, load_registry, plugin_pack_dirs
    from bot.ledger import privacy
    from bot.ledger.store import Ledger
    from bot.models.llm import LLM
    from bot.pipeline.engine import Engine

    discovered = discover_skills(settings.skill_dirs)
    pack_dirs = [builtin_packs_dir(), *settings.pack_dirs, *plugin_pack_dirs(discovered[0])]
    packs, _ = load_packs(pack_dirs)
    registry = load_registry(settings.tier_names, packs, discovered=discovered)
    ledger = ledger or Ledger(settings.effective_database_url)
    privacy.install(ledger, settings)  # what text this ledger may store (redaction, metadata-only)
    engine = Engine(settings, registry, packs, ledger, llm or LLM(settings.tiers))
    if with_economics:
        from bot.economics.budgets import Budgets
        from bot.economics.context import EconomicsContext
        from bot.economics.shadow import Shadow

        engine.budget = Budgets(settings, ledger)
        engine.shadow = Shadow(EconomicsContext(settings, ledger, registry, packs), caller=engine)
        engine.after_reply.append(engine.shadow)
    return engine
