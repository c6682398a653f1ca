"""Budgets, checked before the model call: a monthly USD budget per skill and a daily request
cap per user. At 80% of a skill's budget the admins are alerted once (a database row makes
"once" hold across processes); past 100% the skill steps down one tier or refuses, as configured."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.core.periods import day_start, month_bounds
from bot.core.skills import Skill
from bot.core.types import BudgetDecision, Request
from bot.ledger import queries
from bot.ledger.models import BudgetAlert, utcnow
from bot.ledger.store import Ledger

log = logging.getLogger(__name__)

ALERT_AT = 0.8
Notify = Callable[[str], None]


class Budgets:
    """The engine's `BudgetGuard`."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        notify: Notify | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.notify = notify or (lambda text: log.warning("budget alert: %s", text))
        self.clock = clock

    def check(self, skill: Skill, tier: str, request: Request, cheaper: str | None = None) -> BudgetDecision:
        """`cheaper` is the Ladder's next allowed cheaper tier for this skill (None: there is none)."""
        now = self.clock()
        cap = self.settings.user_daily_request_cap
        if cap is not None and request.user:
            used = queries.count_requests(
                self.ledger, day_start(now), now + timedelta(seconds=1), user=request.user
            )
            if used >= cap:
                return BudgetDecision(
                    tier, refuse=f"You have reached today's limit of {cap} requests; it resets at 00:00 UTC."
                )
        conf = self.settings.skill_settings(skill.name)
        if conf.monthly_budget_usd is None:
            return BudgetDecision(tier)
        start, end, period = month_bounds(now)
        spent = queries.skill_spend(self.ledger, skill.name, start, end, ("user",))
        budget = conf.monthly_budget_usd
        if spent >= ALERT_AT * budget:
            self._alert_once(skill.name, period, spent, budget)
        if spent < budget:
            return BudgetDecision(tier)
        if conf.on_budget_exceeded == "step_down" and cheaper is not None:
            return BudgetDecision(
                cheaper,
                note=f"monthly budget ${budget:,.2f} used (${spent:,.2f}): stepped down {tier} → {cheaper}",
            )
        return BudgetDecision(
            tier,
            refuse=(
                f"{skill.slash} has used its monthly budget (${spent:,.2f} of ${budget:,.2f}); "
                "it is paused until next month. Ask an admin if this is urgent."
            ),
        )

    def _alert_once(self, skill: str, period: str, spent: float, budget: float) -> None:
        with self.ledger.session() as s:
            s.add(BudgetAlert(skill=skill, period=period, threshold=ALERT_AT))
            try:
                s.commit()
            except IntegrityError:  # already alerted this month (maybe by another process)
                return
        self.notify(
            f":warning: {skill} has used ${spent:,.2f} of its ${budget:,.2f} monthly budget "
            f"({spent / budget:.0%}) for {period}."
        )
