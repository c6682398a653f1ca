"""bot.core.stats: exact values for the small statistics the review and the digest rely on."""

from __future__ import annotations

import math

import pytest

from bot.core.stats import median, monthly_projection, percentile, rate, wilson

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
