"""Verified-pass rates per skill and tier, from `requests.verify_status`.

Verifier outcomes exist on every checked answer (not a sample), so they are the densest evidence the
ledger has about a tier. The rate is passed / (passed + failed): a check that did not run says
nothing either way and is reported beside it, not counted against the tier.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlmodel import col

from bot.core.stats import wilson
from bot.ledger.models import RequestRow, utcnow


@dataclass(frozen=True)
class VerifiedRate:
    skill: str
    tier: str
    passed: int
    failed: int
    not_run: int

    @property
    def checked(self) -> int:
        """Answers whose checks reached a verdict."""
        return self.passed + self.failed

    @property
    def rate(self) -> float | None:
        return self.passed / self.checked if self.checked else None

    @property
    def interval(self) -> tuple[float, float]:
        """95 % Wilson interval of the pass rate ((0, 1) when nothing was checked)."""
        return wilson(self.passed, self.checked)

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {**asdict(self), "checked": self.checked, "rate": self.rate, "interval": [low, high]}


def verified_rates(ledger: Any, since: datetime, until: datetime | None = None) -> list[VerifiedRate]:
    """Per (skill, tier) over user traffic in the window: verifier outcomes, in one grouped query.

    Every attempt counts, escalated-from ones included: a tier whose answers fail their checks and
    get escalated is exactly what the rate should show.
    """
    until = until or utcnow() + timedelta(seconds=1)
    window = and_(
        col(RequestRow.created_at) >= since,
        col(RequestRow.created_at) < until,
        col(RequestRow.purpose) == "user",
        col(RequestRow.verify_status).is_not(None),
        col(RequestRow.tier).is_not(None),
    )
    stmt = (
        select(
            col(RequestRow.skill),
            col(RequestRow.tier),
            func.count().filter(col(RequestRow.verify_status) == "passed"),
            func.count().filter(col(RequestRow.verify_status) == "failed"),
            func.count().filter(col(RequestRow.verify_status) == "not_run"),
        )
        .where(window)
        .group_by(col(RequestRow.skill), col(RequestRow.tier))
        .order_by(col(RequestRow.skill), col(RequestRow.tier))
    )
    with ledger.session() as s:
        return [
            VerifiedRate(str(skill), str(tier), int(p), int(f), int(n))
            for skill, tier, p, f, n in s.execute(stmt)
        ]
