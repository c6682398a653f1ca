"""bot.core.periods: the calendar windows every report, budget and review cuts time with."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.periods import (
    day_start,
    days_before,
    iso_week,
    last_complete_week,
    month_bounds,
    parse_week,
    previous_week,
    week_bounds,
    week_start,
)

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


def test_parse_week_is_the_monday() -> None:
    assert parse_week("2026-W47") == date(2026, 11, 16)
    assert parse_week(" 2026-W53 ") == date(2026, 12, 28)
    with pytest.raises(ValueError, match="expected YYYY-Www"):
        parse_week("2026-11-16")


def test_last_complete_week_is_the_week_before_now_in_the_zone() -> None:
    monday_morning = datetime(2026, 11, 16, 9, tzinfo=UTC)
    assert last_complete_week(monday_morning, "UTC") == "2026-W46"
    # 00:30 UTC Monday is still Sunday afternoon in Los Angeles: W46 is not complete there yet.
    assert last_complete_week(datetime(2026, 11, 16, 0, 30, tzinfo=UTC), "America/Los_Angeles") == "2026-W45"


def test_week_start_keeps_the_zone_it_was_given() -> None:
    lisbon = ZoneInfo("Europe/Lisbon")
    assert week_start(datetime(2026, 11, 19, 15, 42, 7, 5, tzinfo=UTC)) == datetime(2026, 11, 16, tzinfo=UTC)
    assert week_start(datetime(2026, 11, 16, 0, 0, tzinfo=lisbon)) == datetime(2026, 11, 16, tzinfo=lisbon)
    assert week_start(datetime(2026, 11, 22, 23, 59, tzinfo=UTC)) == datetime(2026, 11, 16, tzinfo=UTC)


def test_day_start_is_midnight_utc() -> None:
    assert day_start(datetime(2026, 11, 19, 15, 42, tzinfo=UTC)) == datetime(2026, 11, 19, tzinfo=UTC)
    # 01:30 in Berlin (UTC+1) is still the previous day in UTC.
    berlin = datetime(2026, 11, 19, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert day_start(berlin) == datetime(2026, 11, 18, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "start", "end", "label"),
    [
        (datetime(2026, 11, 19, 15, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), "2026-11"),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC), "2026-12"),
        (datetime(2028, 2, 29, tzinfo=UTC), datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC), "2028-02"),
        (datetime(2026, 1, 31, 12, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), "2026-01"),
    ],
)  # fmt: skip
def test_month_bounds(now: datetime, start: datetime, end: datetime, label: str) -> None:
    assert month_bounds(now) == (start, end, label)


def test_days_before() -> None:
    now = datetime(2026, 11, 19, 15, tzinfo=UTC)
    assert days_before(now, 7) == datetime(2026, 11, 12, 15, tzinfo=UTC)
    assert days_before(now, 0.5) == datetime(2026, 11, 19, 3, tzinfo=UTC)
    assert days_before(now, 0) == now
