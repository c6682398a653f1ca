"""Changing a skill's tier: the one place that validates and records it (CLI, Slack, auto-apply)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.economics.context import EconomicsContext
    from bot.ledger.models import TierAssignment


class TierChangeError(ValueError):
    pass


def set_tier(
    ctx: EconomicsContext,
    skill: str,
    tier: str,
    by: str,
    reason: str,
    source: str,
    expect_current: str | None = None,
) -> TierAssignment:
    """Validate and record a tier assignment; it takes effect on the next request.

    `expect_current` guards against stale decisions (a recommendation made for another tier).
    """
    found = ctx.registry.get(skill)
    if found is None:
        raise TierChangeError(f"unknown skill {skill!r}. Valid skills: {', '.join(ctx.registry.names())}")
    if tier not in ctx.settings.tiers:
        raise TierChangeError(f"unknown tier {tier!r}. Valid tiers: {', '.join(ctx.settings.tiers)}")
    if not reason.strip():
        raise TierChangeError("a reason is required (it is kept in the tier history)")
    current, _ = ctx.configured_tier(found)
    if expect_current is not None and current != expect_current:
        raise TierChangeError(
            f"{skill} is on {current} now, not {expect_current}: the recommendation is stale"
        )
    allowed, why = ctx.allowed_tier(found, tier)
    if allowed != tier:
        raise TierChangeError(f"{skill} handles sensitive data: tier {tier} is external ({why or 'refused'})")
    return ctx.ledger.assign_tier(
        found.name, tier, by=by, reason=reason.strip(), previous=current, source=source
    )
