"""bot.core.confseq: the betting confidence sequence against known values, and its coverage when the review
looks every week at growing evidence (seeded simulation)."""

from __future__ import annotations

import math
import random

import pytest

from bot.core import confseq
from bot.core.confseq import PairedSeq, interval, pairs_needed, rejects_above, rejects_below


def wealth_by_hand(ys: list[float], m: float, side: int) -> float:
    """K_t(m) straight from the definition: the average over the grid of prod (1 ± g/m' (y − m))."""
    cap = 1 / m if side > 0 else 1 / (1 - m)
    total = 0.0
    for g in confseq.GRID:
        w = 1.0
        for y in ys:
            w *= 1 + side * g * cap * (y - m)
        total += w
    return total / len(confseq.GRID)


def test_the_wealth_is_the_definition() -> None:
    ds = [1.0, 0.0, 0.0, 1.0, -1.0, 0.0, 1.0, 0.5]
    seq = PairedSeq().extend(ds)
    ys = [(d + 1) / 2 for d in ds]
    for m in (0.3, 0.5, 0.62):
        for side in (+1, -1):
            assert math.exp(confseq._log_wealth(seq, m, side)) == pytest.approx(wealth_by_hand(ys, m, side))


def test_known_values_three_wins() -> None:
    """Three +1s against "mean ≤ 0" (m = 1/2, stake cap 2): each bet multiplies by 1 + g, so
    K = mean over the grid of (1 + g)^3 = (1.02³ + 1.05³ + 1.1³ + … + 1.8³) / 10 = 28.434833 / 10."""
    seq = PairedSeq().extend([1.0, 1.0, 1.0])
    assert math.exp(confseq._log_wealth(seq, 0.5, +1)) == pytest.approx(2.8434833, abs=1e-7)
    assert rejects_below(seq, 0.0, 1 / 2.84) and not rejects_below(seq, 0.0, 1 / 2.85)


def test_no_pairs_know_nothing() -> None:
    assert interval(PairedSeq(), 0.05) == (-1.0, 1.0)
    assert not rejects_below(PairedSeq(), 0.0, 0.025) and not rejects_above(PairedSeq(), 0.0, 0.025)
    assert pairs_needed(PairedSeq(), 0.05, 0.05) is None


def test_the_interval_is_symmetric_for_symmetric_evidence_and_narrows() -> None:
    widths = []
    for n in (50, 200, 800):
        seq = PairedSeq().extend([1.0] * (n // 10) + [-1.0] * (n // 10) + [0.0] * (n - n // 5))
        lo, hi = interval(seq, 0.05)
        assert lo == pytest.approx(-hi, abs=1e-6) and lo < 0 < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]


def test_the_interval_ends_are_where_the_tests_reject() -> None:
    seq = PairedSeq().extend([1.0] * 30 + [0.0] * 160 + [-1.0] * 10)
    lo, hi = interval(seq, 0.05)
    assert lo < seq.mean < hi
    assert rejects_below(seq, lo - 1e-4, 0.025) and not rejects_below(seq, lo + 1e-4, 0.025)
    assert rejects_above(seq, hi + 1e-4, 0.025) and not rejects_above(seq, hi - 1e-4, 0.025)


def test_ties_are_evidence_against_a_margin() -> None:
    """238 ties and 2 losses: within 5 points, credibly (a loss-rate-only rule would ignore the ties)."""
    seq = PairedSeq().extend([0.0] * 238 + [1.0] * 2)
    assert rejects_above(seq, 0.05, 0.025)
    assert not rejects_above(PairedSeq().extend([0.0] * 58 + [1.0] * 2), 0.05, 0.025)


def test_differences_must_be_paired_scores() -> None:
    with pytest.raises(ValueError, match=r"within \[-1, 1\]"):
        PairedSeq().add(1.5)
    with pytest.raises(ValueError, match="alpha"):
        interval(PairedSeq().add(0.0), 1.0)


def test_pairs_needed_is_the_first_crossing_at_the_current_distribution() -> None:
    seq = PairedSeq().extend([0.0] * 90 + [1.0] * 5 + [-1.0] * 5)
    more = pairs_needed(seq, 0.05, 0.05)
    assert more is not None and more > 0
    assert rejects_above(seq.scaled(seq.n + more), 0.05, 0.025)
    assert not rejects_above(seq.scaled(seq.n + more - 1), 0.05, 0.025)
    assert pairs_needed(PairedSeq().extend([0.0, 1.0, -1.0, 0.0]), 0.0, 0.05) is None  # mean on the threshold


def _draw(rng: random.Random, loss: float, win: float) -> float:
    u = rng.random()
    return 1.0 if u < loss else -1.0 if u < loss + win else 0.0


@pytest.mark.parametrize(("loss", "win"), [(0.15, 0.05), (0.05, 0.05), (0.42, 0.01)])
def test_coverage_under_weekly_looks(loss: float, win: float) -> None:
    """12 weekly looks at 50 new pairs each: the CS misses the true mean at ANY look in at most alpha of
    the runs; a fixed 95% normal interval re-tested weekly misses more often (why a CS is needed)."""
    rng = random.Random(20261201)
    truth = loss - win
    runs, cs_miss, naive_miss = 400, 0, 0
    for _ in range(runs):
        seq, missed_cs, missed_naive = PairedSeq(), False, False
        for _week in range(12):
            seq = seq.extend(_draw(rng, loss, win) for _ in range(50))
            if rejects_below(seq, truth, 0.025) or rejects_above(seq, truth, 0.025):
                missed_cs = True
            var = sum(c * (d - seq.mean) ** 2 for d, c in seq.hist.items()) / seq.n
            if abs(seq.mean - truth) > 1.96 * math.sqrt(var / seq.n):
                missed_naive = True
        cs_miss += missed_cs
        naive_miss += missed_naive
    assert cs_miss / runs <= 0.05
    assert naive_miss > cs_miss
