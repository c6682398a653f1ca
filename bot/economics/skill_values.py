"""What a good answer is worth, per skill: `value_per_good_answer_usd`.

The configured value (`[skills.<name>] value_per_good_answer_usd`, else `review.value_per_good_answer_usd`)
is the default; an admin overrides it from the CLI (`tierwise value SKILL USD`) or Slack
(`/tierwise value SKILL USD`), kept as history in the ledger (the newest row wins; `default` goes back
to the configured value). The tier review prices quality differences with it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import col

from bot.ledger.models import SkillValue

if TYPE_CHECKING:
    from bot.economics.context import EconomicsContext
    from bot.ledger.store import Ledger

USAGE = "value_per_good_answer_usd must be a non-negative number of USD (e.g. 0.40), or `default`"


class ValueChangeError(ValueError):
    pass


def parse_value(text: str) -> float | None:
    """ "0.40", "$0.40" → 0.4; "default" → None (back to the configured value)."""
    word = text.strip()
    if word.lower() == "default":
        return None
    try:
        value = float(word.removeprefix("$").replace(",", ""))
    except ValueError:
        raise ValueChangeError(f"{word!r} is not a number: {USAGE}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueChangeError(f"{word!r}: {USAGE}")
    return value


def overrides(ledger: Ledger) -> dict[str, float | None]:
    """The newest admin setting per skill (None: back to the configured default)."""
    with ledger.session() as s:
        rows = s.execute(
            select(SkillValue).order_by(col(SkillValue.created_at), col(SkillValue.id))
        ).scalars()
        return {row.skill: row.value_usd for row in rows}


def effective(
    ctx: EconomicsContext, skill: str, ledger_values: dict[str, float | None] | None = None
) -> float | None:
    """The value the review uses: the admin's, else the skill's configured one, else the global default."""
    values = overrides(ctx.ledger) if ledger_values is None else ledger_values
    if values.get(skill) is not None:
        return values[skill]
    conf = ctx.settings.skill_settings(skill).value_per_good_answer_usd
    return conf if conf is not None else ctx.settings.review.value_per_good_answer_usd


def set_value(
    ctx: EconomicsContext, skill: str, text: str, by: str, source: str
) -> tuple[float | None, float | None]:
    """Record an admin's value for a skill; returns (before, after) effective values."""
    found = ctx.registry.get(skill)
    if found is None:
        raise ValueChangeError(f"unknown skill {skill!r}. Valid skills: {', '.join(ctx.registry.names())}")
    value = parse_value(text)
    before = effective(ctx, found.name)
    with ctx.ledger.session() as s:
        s.add(SkillValue(skill=found.name, value_usd=value, set_by=by[:64], source=source))
        s.commit()
    return before, effective(ctx, found.name)


def describe(value: float | None) -> str:
    return (
        "not declared (quality margins and the savings floor decide)" if value is None else f"${value:,.4g}"
    )
