"""Calendar windows: ISO weeks (the digest's periods), months (budgets), days, and "the last N days".

One module so every report, budget and review cuts time the same way. Pure and standard-library only.
A week label is "YYYY-Www" (ISO 8601); week bounds are computed in the team's zone and returned in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

_PERIOD = re.compile(r"(\d{4})-W(\d{2})")


def iso_week(dt: date | datetime) -> str:
    """ISO week label of a date or datetime as given (convert to the team's zone first): "2026-W47"."""
    year, week, _ = dt.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(period: str) -> date:
    """The Monday of an ISO week label; ValueError says what is wrong with a bad label."""
    match = _PERIOD.fullmatch(period.strip()) if isinstance(period, str) else None
    if match is None:
        raise ValueError(f"bad week {period!r}: expected YYYY-Www, e.g. 2026-W47")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        return date.fromisocalendar(year, week, 1)
    except ValueError:
        # e.g. W00, W60, or W53 in a year with 52 ISO weeks
        raise ValueError(f"bad week {period!r}: {year} has no ISO week {week}") from None


def week_bounds(period: str, tz: str | tzinfo = "UTC") -> tuple[datetime, datetime]:
    """[start, end) of an ISO week: Monday 00:00 in `tz` to the next Monday 00:00, as aware UTC.

    Computed per endpoint in local time, so a week containing a DST change is 167 or 169 hours long.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    monday = parse_week(period)
    start = datetime.combine(monday, time(0), tzinfo=zone)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def previous_week(period: str) -> str:
    """The ISO week before `period` ("2027-W01" → "2026-W53")."""
    return iso_week(parse_week(period) - timedelta(days=7))


def last_complete_week(now: datetime, tz: str) -> str:
    """The week a digest sent at `now` reports on: the last complete ISO week in that zone."""
    return previous_week(iso_week(now.astimezone(ZoneInfo(tz))))


def week_start(now: datetime) -> datetime:
    """Monday 00:00 of `now`'s week, in `now`'s own zone (no conversion)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def day_start(now: datetime) -> datetime:
    """00:00 UTC of `now`'s UTC day."""
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_bounds(now: datetime) -> tuple[datetime, datetime, str]:
    """[start, end) of `now`'s UTC calendar month, and its label "YYYY-MM"."""
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)  # day 32 is always in the next month
    return start, end, f"{start:%Y-%m}"


def days_before(moment: datetime, days: float) -> datetime:
    """The start of the window "the last `days` days" ending at `moment`."""
    return moment - timedelta(days=days)
