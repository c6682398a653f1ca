"""bot.core.stats: exact values for the small statistics the review and the digest rely on."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.stats import (
    iso_week,
    median,
    monthly_projection,
    percentile,
    previous_week,
    rate,
    week_bounds,
    wilson,
)

# Wilson ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (81, 100, (0.7222, 0.8749)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (6, 120, (0.0231, 0.1048)),
        (1, 2, (0.0945, 0.9055)),
        (0, 0, (0.0, 1.0)),
    ],
)
def test_wilson_known_values(successes: int, n: int, expected: tuple[float, float]) -> None:
    lo, hi = wilson(successes, n)
    assert (round(lo, 4), round(hi, 4)) == expected


def test_wilson_bounds_solve_the_score_equation() -> None:
    # Independent of the closed form: each bound p satisfies |x/n − p| = z·sqrt(p(1−p)/n).
    x, n, z = 81, 100, 1.96
    for p in wilson(x, n, z):
        assert abs(x / n - p) == pytest.approx(z * math.sqrt(p * (1 - p) / n), abs=1e-12)


def test_wilson_wider_z_gives_wider_interval_and_clamps() -> None:
    assert wilson(81, 100, z=2.576) == pytest.approx((0.690964, 0.890454), abs=1e-6)
    lo, hi = wilson(0, 3)
    assert lo == 0.0 and 0 < hi < 1
    assert wilson(3, 3)[1] == 1.0


@pytest.mark.parametrize(("successes", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_wilson_rejects_impossible_counts(successes: int, n: int) -> None:
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        wilson(successes, n)


# Percentiles ----------------------------------------------------------------------------------


def test_percentile_nearest_rank() -> None:
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 0.05) == 15.0  # rank ceil(0.25) = 1
    assert percentile(values, 0.30) == 20.0  # ceil(1.5) = 2
    assert percentile(values, 0.40) == 20.0  # exactly rank 2: "rank >= p·n" includes equality
    assert percentile(values, 0.50) == 35.0
    assert percentile(values, 1.0) == 50.0
    assert percentile(values, 0.0) == 15.0  # rank clamps to 1


def test_percentile_edges() -> None:
    assert percentile([], 0.95) == 0.0
    assert percentile([7], 0.95) == 7.0
    assert percentile([3, 1, 2], 0.5) == 2.0  # sorts its input
    assert percentile(list(range(1, 21)), 0.95) == 19.0  # 0.95·20 = 19 → the 19th value, as in SQL
    assert percentile(list(range(1, 101)), 0.95) == 95.0
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        percentile([1, 2], 95)


def test_median_is_nearest_rank() -> None:
    assert median([5, 1, 3]) == 3.0
    assert median([4, 1, 3, 2]) == 2.0  # the lower middle, matching the ledger's p50
    assert median([]) == 0.0


def test_rate_and_monthly_projection() -> None:
    assert rate(3, 4) == 0.75
    assert rate(3, 0) == 0.0
    assert monthly_projection(7.0, 28) == 7.5
    assert monthly_projection(12.0, 7) == pytest.approx(51.428571, abs=1e-6)
    assert monthly_projection(5.0, 30) == 5.0
    assert monthly_projection(5.0, 0) == 0.0


# ISO weeks ------------------------------------------------------------------------------------


def test_iso_week_across_the_year_boundary() -> None:
    assert iso_week(date(2026, 12, 31)) == "2026-W53"
    assert iso_week(date(2027, 1, 1)) == "2026-W53"
    assert iso_week(date(2027, 1, 3)) == "2026-W53"
    assert iso_week(date(2027, 1, 4)) == "2027-W01"
    assert iso_week(datetime(2026, 11, 18, 23, 59, tzinfo=UTC)) == "2026-W47"
    assert iso_week(date(2026, 1, 5)) == "2026-W02"


def test_previous_week() -> None:
    assert previous_week("2027-W01") == "2026-W53"
    assert previous_week("2026-W01") == "2025-W52"
    assert previous_week("2026-W47") == "2026-W46"


def test_week_bounds_utc() -> None:
    assert week_bounds("2026-W47") == (datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))
    assert week_bounds("2026-W53", ZoneInfo("UTC")) == (
        datetime(2026, 12, 28, tzinfo=UTC),
        datetime(2027, 1, 4, tzinfo=UTC),
    )


def test_week_bounds_europe_lisbon() -> None:
    # Winter: Lisbon is UTC+0.
    assert week_bounds("2026-W47", "Europe/Lisbon") == (
        datetime(2026, 11, 16, tzinfo=UTC),
        datetime(2026, 11, 23, tzinfo=UTC),
    )
    # Summer (UTC+1): Monday 00:00 local is Sunday 23:00 UTC.
    assert week_bounds("2026-W27", "Europe/Lisbon") == (
        datetime(2026, 6, 28, 23, tzinfo=UTC),
        datetime(2026, 7, 5, 23, tzinfo=UTC),
    )
    # Clocks go forward on 29 March 2026: a 167-hour week.
    start, end = week_bounds("2026-W13", "Europe/Lisbon")
    assert (start, end) == (datetime(2026, 3, 23, tzinfo=UTC), datetime(2026, 3, 29, 23, tzinfo=UTC))
    assert end - start == timedelta(hours=167)
    # ... and back on 25 October 2026: a 169-hour week.
    start, end = week_bounds("2026-W43", "Europe/Lisbon")
    assert (start, end) == (datetime(2026, 10, 18, 23, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC))
    assert end - start == timedelta(hours=169)


def test_week_bounds_america_toronto() -> None:
    assert week_bounds("2026-W47", "America/Toronto") == (
        datetime(2026, 11, 16, 5, tzinfo=UTC),
        datetime(2026, 11, 23, 5, tzinfo=UTC),
    )
    # DST starts 8 March 2026 (EST −5 → EDT −4).
    assert week_bounds("2026-W10", "America/Toronto") == (
        datetime(2026, 3, 2, 5, tzinfo=UTC),
        datetime(2026, 3, 9, 4, tzinfo=UTC),
    )
    # DST ends 1 November 2026.
    assert week_bounds("2026-W44", "America/Toronto") == (
        datetime(2026, 10, 26, 4, tzinfo=UTC),
        datetime(2026, 11, 2, 5, tzinfo=UTC),
    )
    start, _ = week_bounds("2026-W47", "America/Toronto")
    assert start.tzinfo is UTC


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("2026-W60", "2026 has no ISO week 60"),
        ("2026-W00", "2026 has no ISO week 0"),
        ("2027-W53", "2027 has no ISO week 53"),  # 2027 has 52 ISO weeks; 2026 has 53
        ("bad", "expected YYYY-Www"),
        ("2026-w47", "expected YYYY-Www"),
        ("2026W47", "expected YYYY-Www"),
        ("2026-W7", "expected YYYY-Www"),
        ("", "expected YYYY-Www"),
    ],
)
def test_bad_periods(period: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        week_bounds(period)
    with pytest.raises(ValueError, match=message):
        previous_week(period)
