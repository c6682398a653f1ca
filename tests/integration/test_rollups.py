"""Daily rollups: closed days are read from rollups, the edges raw, and the sum is the same as
reading every row; any write that touches a closed day drops its rollup."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.ledger import queries, rollups
from bot.ledger.models import DailyRollup, RollupDay
from tests.ledger_builder import LedgerBuilder, at

NOW = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)


def test_split_takes_whole_closed_days_and_leaves_the_edges_raw() -> None:
    days, raw = rollups.split(
        datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 5, 18, tzinfo=UTC), NOW
    )
    assert days == [date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)]
    assert raw == [
        (datetime(2026, 11, 1, 9, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)),
        (datetime(2026, 11, 5, tzinfo=UTC), datetime(2026, 11, 5, 18, tzinfo=UTC)),
    ]
    # today is never rolled up: it is still open
    days, raw = rollups.split(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC), NOW)
    assert days == [date(2026, 11, 21)]
    assert raw == [(datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))]
    assert rollups.split(NOW - timedelta(hours=2), NOW, NOW) == ([], [(NOW - timedelta(hours=2), NOW)])


def _seed(engine: Any) -> LedgerBuilder:
    b = LedgerBuilder(engine.ledger)
    for day in range(1, 8):
        rows = b.requests(
            5,
            at(2026, 11, day, 9),
            skill="ask",
            tier="small",
            cost=0.125,
            users=["U1", "U2"],
            latency_ms=100 * day,
        )
        b.feedback(rows[0], user="U9", score=1 if day % 2 else -1)
        b.request(at(2026, 11, day, 23, 59), skill="label-email", tier="medium", cost=0.5, status="error")
    b.escalation(at(2026, 11, 3, 10), skill="ask", from_tier="small", to_tier="large", first_cost=0.25,
                 second_cost=1.0, user="U3")  # fmt: skip
    return b


def _raw(engine: Any, since: datetime, until: datetime) -> dict[tuple, rollups.Figures]:
    with engine.ledger.session() as s:
        return rollups.raw_figures(s, since, until)


def test_rollups_plus_raw_edges_equal_reading_every_row(engine: Any) -> None:
    _seed(engine)
    since, until = at(2026, 11, 1, 8), at(2026, 11, 7, 20)
    with engine.ledger.session() as s:
        window = rollups.window(s, since, until, now=NOW)
        built = s.execute(select(func.count()).select_from(RollupDay)).scalar_one()
    assert built == 5  # Nov 2–6 are whole days inside the window; Nov 1 and 7 are partly outside
    raw = _raw(engine, since, until)
    assert window.by_tier == raw
    ask = window.by_tier["ask", "small"]
    assert (ask.requests, ask.cost_sum, ask.escalations, ask.errors) == (36, 35 * 0.125 + 0.25 + 1.0, 1, 1)
    assert (ask.feedback, ask.thumbs_up, ask.thumbs_down) == (7, 4, 3)
    assert window.by_tier["label-email", "medium"].requests == 6  # Nov 7 23:59 is after `until`


def test_tier_window_stats_come_out_the_same_from_rollups(engine: Any) -> None:
    _seed(engine)
    first = queries.tier_window_stats(engine.ledger, at(2026, 11, 1, 0), at(2026, 11, 8, 0))
    with engine.ledger.session() as s:
        assert s.execute(select(func.count()).select_from(DailyRollup)).scalar_one() > 0
    again = queries.tier_window_stats(engine.ledger, at(2026, 11, 1, 0), at(2026, 11, 8, 0))
    assert first == again
    assert first["ask", "small"].requests == 36
    assert first["ask", "small"].latency_p95_ms == 700.0  # percentiles from raw rows of the last week


def test_a_late_rating_drops_the_rollup_of_its_day(engine: Any) -> None:
    b = _seed(engine)
    since, until = at(2026, 11, 1, 0), at(2026, 11, 8, 0)
    before = queries.tier_window_stats(engine.ledger, since, until)["ask", "small"]
    [late] = b.requests(1, at(2026, 11, 4, 9, 30), skill="ask", tier="small", cost=0.125)
    engine.ledger.add_feedback(late.id, "U7", -1, "wrong")
    with engine.ledger.session() as s:
        assert s.get(RollupDay, "2026-11-04") is None  # dropped by the writes, rebuilt on next read
    after = queries.tier_window_stats(engine.ledger, since, until)["ask", "small"]
    assert (after.requests, after.feedback, after.thumbs_up) == (
        before.requests + 1,
        before.feedback + 1,
        before.thumbs_up,
    )
    assert after == queries.tier_window_stats(engine.ledger, since, until)["ask", "small"]


def test_cost_recompute_drops_rollups_from_its_start(engine: Any) -> None:
    from bot.economics.costs import recompute

    _seed(engine)
    queries.tier_window_stats(engine.ledger, at(2026, 11, 1, 0), at(2026, 11, 8, 0))
    recompute(engine.settings, engine.ledger, at(2026, 11, 5, 0))
    with engine.ledger.session() as s:
        days = sorted(s.execute(select(RollupDay.day)).scalars())
    assert days == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]


def test_rolling_up_twice_is_harmless(engine: Any) -> None:
    _seed(engine)
    days = [date(2026, 11, 2), date(2026, 11, 3)]
    with engine.ledger.session() as s:
        rollups.ensure(s, days)
        rollups.ensure(s, days)
        assert s.execute(select(func.count()).select_from(RollupDay)).scalar_one() == 2
