"""Small, pure statistics for the tier review and the digest (standard library only).

Everything here is deterministic and side-effect free so it can be tested with exact values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

_PERIOD = re.compile(r"(\d{4})-W(\d{2})")


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Why Wilson: at the sample sizes we see (tens of ratings, ~50 shadow pairs) the normal
    approximation collapses to zero width at 0 % and 100 %; Wilson stays honest there.
    n = 0 means we know nothing: (0, 1).
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"wilson needs 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile, p in [0, 1]: the smallest value whose 1-based rank is >= p·n.

    The same definition as the ledger's SQL (`rn >= n * p`), so Python and SQL figures agree.
    """
    if not 0 <= p <= 1:
        raise ValueError(f"percentile p must be within [0, 1], got {p}")
    if not values:
        return 0.0
    ordered = sorted(values)
    n = len(ordered)
    rank = max(1, math.ceil(n * p))  # ranks are integers, so rank >= n·p  <=>  rank >= ceil(n·p)
    return float(ordered[rank - 1])


def median(values: Sequence[float]) -> float:
    """Nearest-rank median (the lower middle value for even n), consistent with the ledger's p50."""
    return percentile(values, 0.5)


def rate(a: float, b: float) -> float:
    """a / b, or 0.0 when b is 0 (no traffic is not an error)."""
    return a / b if b else 0.0


def iso_week(dt: date | datetime) -> str:
    """ISO week label of a date or datetime as given (convert to the team's zone first): "2026-W47"."""
    year, week, _ = dt.isocalendar()
    return f"{year}-W{week:02d}"


def _monday(period: str) -> date:
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
    monday = _monday(period)
    start = datetime.combine(monday, time(0), tzinfo=zone)
    end = datetime.combine(monday + timedelta(days=7), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def previous_week(period: str) -> str:
    """The ISO week before `period` ("2027-W01" → "2026-W53")."""
    return iso_week(_monday(period) - timedelta(days=7))


def monthly_projection(amount_in_window: float, window_days: float) -> float:
    """Scale an amount observed over `window_days` to a 30-day month (0.0 for an empty window)."""
    return rate(amount_in_window * 30, window_days) if window_days > 0 else 0.0
