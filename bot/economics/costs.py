"""`tierwise cost recompute`: re-price ledger rows from their stored token buckets after prices change.

Prices are linear in each bucket (input, output, cache read, cache write), so each distinct
(tier, model) group is re-priced by one UPDATE with per-bucket unit prices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import col

from bot.config import Settings, TierConfig
from bot.ledger import rollups
from bot.ledger.models import RequestRow
from bot.ledger.store import Ledger
from bot.models.llm import price_tokens


@dataclass(frozen=True)
class RecomputeResult:
    groups: int
    rows: int
    unknown_rows: int
    before_usd: float
    after_usd: float


def _pricing_for(settings: Settings, tier: str, model_requested: str | None, model_used: str) -> TierConfig:
    """The tier's prices apply while the tier still calls the model the row asked for."""
    conf = settings.tiers.get(tier)
    if conf is not None and conf.model == model_requested:
        return conf
    return TierConfig(model=model_requested or model_used)


def recompute(settings: Settings, ledger: Ledger, since: datetime) -> RecomputeResult:
    from sqlalchemy import func

    groups_stmt = (
        select(
            col(RequestRow.tier),
            col(RequestRow.model_requested),
            col(RequestRow.model_used),
            func.count(),
            func.coalesce(func.sum(col(RequestRow.cost_usd)), 0.0),
        )
        .where(
            col(RequestRow.created_at) >= since,
            col(RequestRow.tier).is_not(None),
            col(RequestRow.model_used).is_not(None),
        )
        .group_by(col(RequestRow.tier), col(RequestRow.model_requested), col(RequestRow.model_used))
    )
    rows = unknown = 0
    before = 0.0
    with ledger.session() as s:
        groups = list(s.execute(groups_stmt))
        for tier, requested, used, count, cost in groups:
            conf = _pricing_for(settings, tier, requested, used)
            base, known, source = price_tokens(conf, used, 1, 0)
            unit_in = base
            unit_out = price_tokens(conf, used, 0, 1)[0]
            unit_cache_read = price_tokens(conf, used, 1, 0, cache_read=1)[0] - unit_in
            unit_cache_write = price_tokens(conf, used, 0, 0, cache_write=1)[0]
            s.execute(
                update(RequestRow)
                .where(
                    col(RequestRow.created_at) >= since,
                    col(RequestRow.tier) == tier,
                    col(RequestRow.model_requested) == requested,
                    col(RequestRow.model_used) == used,
                )
                .values(
                    cost_usd=col(RequestRow.prompt_tokens) * unit_in
                    + col(RequestRow.completion_tokens) * unit_out
                    + col(RequestRow.cached_tokens) * unit_cache_read
                    + col(RequestRow.cache_write_tokens) * unit_cache_write,
                    cost_known=known,
                    price_source=source,
                )
            )
            rows += int(count)
            before += float(cost)
            unknown += 0 if known else int(count)
        rollups.invalidate_since(s, since)  # the daily rollups hold the old costs
        s.commit()
        after = float(
            s.execute(
                select(func.coalesce(func.sum(col(RequestRow.cost_usd)), 0.0)).where(
                    col(RequestRow.created_at) >= since,
                    col(RequestRow.tier).is_not(None),
                    col(RequestRow.model_used).is_not(None),
                )
            ).scalar_one()
        )
    return RecomputeResult(len(groups), rows, unknown, before, after)
