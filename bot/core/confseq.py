"""An anytime-valid confidence sequence for the mean of paired differences in [-1, 1].

Why a confidence sequence: the tier review looks at the same, growing evidence every week. A
fixed-level interval re-tested weekly is wrong far more often than its level says (over a few
months false moves pile up). A confidence sequence (CS) covers the true mean at *every* look
simultaneously with probability >= 1 - alpha, so the review may look weekly, forever, and act the
first time the evidence is enough.

Which one: testing by betting (Waudby-Smith & Ramdas 2023, "Estimating means of bounded random
variables by betting", JRSS-B; their "grid Kelly" capital process). A paired difference d in
[-1, 1] maps to Y = (d + 1) / 2 in [0, 1]. To test "the mean is at most m", a gambler bets a fixed
fraction g of the most she may stake, lambda = g / m, on every pair:

    K_t(m) = (1 / G) * sum over g in GRID of prod_i (1 + (g / m) * (Y_i - m)).

Each product is a non-negative martingale when the mean is m (a supermartingale when it is
smaller), so is their average; by Ville's inequality P(exists t: K_t(m) >= 1/a) <= a. "Credibly
above m" is K_t(m) >= 1/a; "credibly below m" mirrors it on 1 - Y. The CS at level 1 - alpha is
every m neither test rejects at a = alpha / 2.

Why this one: it is exact for bounded data at any sample size (no normal approximation at 20
pairs), and it is far tighter than a Hoeffding or empirical-Bernstein bound on shadow pairs, which
are mostly ties: a tie sits at Y = 1/2, so against a margin it is itself evidence, which a
variance-based bound wastes. With a fixed grid of bets the wealth does not depend on the order of
the pairs, so the sufficient statistic is the histogram of differences (three counts for
win/tie/loss verdicts): the ledger aggregates it, and the benchmark updates it cheaply.

Pure: standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

# Fractions of the largest safe bet. Uniform weights; a bold end for large effects seen early and
# a cautious end for small effects that need hundreds of pairs.
GRID: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
_LOG_W = -math.log(len(GRID))
_EPS = 1e-9


@dataclass(frozen=True)
class PairedSeq:
    """Paired differences d in [-1, 1] seen so far, as a histogram (d → count). Treat as immutable."""

    n: int = 0
    total: float = 0.0  # sum of d
    hist: dict[float, float] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        """Mean paired difference in [-1, 1] (0.0 with no pairs)."""
        return self.total / self.n if self.n else 0.0

    def add(self, d: float) -> PairedSeq:
        return self.extend((d,))

    def extend(self, ds: Iterable[float]) -> PairedSeq:
        hist = dict(self.hist)
        n, total = self.n, self.total
        for d in ds:
            d = float(d)
            if not -1.0 <= d <= 1.0:
                raise ValueError(f"a paired difference must be within [-1, 1], got {d}")
            hist[d] = hist.get(d, 0) + 1
            n, total = n + 1, total + d
        return PairedSeq(n, total, hist)

    def scaled(self, n: int) -> PairedSeq:
        """The same distribution of differences over n pairs (for "how many more pairs?")."""
        k = n / self.n
        return PairedSeq(n, self.total * k, {d: c * k for d, c in self.hist.items()})


def _log_wealth(seq: PairedSeq, m: float, side: int) -> float:
    """log K_t: side +1 bets the Y-mean is above m, side -1 that it is below."""
    return _log_wealth_of(tuple(sorted(seq.hist.items())), m, side)


@lru_cache(maxsize=65536)
def _log_wealth_of(hist: tuple[tuple[float, float], ...], m: float, side: int) -> float:
    # Cached: a decided skill's evidence is tested against the same margins week after week.
    m = min(max(m, _EPS), 1 - _EPS)
    cap = 1 / m if side > 0 else 1 / (1 - m)
    ys = [((d + 1) / 2 - m, c) for d, c in hist]
    terms = []
    for g in GRID:
        lam = side * g * cap
        terms.append(sum(c * math.log1p(lam * x) for x, c in ys))
    top = max(terms)
    return top + math.log(sum(math.exp(t - top) for t in terms)) + _LOG_W


def rejects_below(seq: PairedSeq, d: float, a: float) -> bool:
    """Is the mean paired difference credibly above d? (at one-sided level a)"""
    if seq.n == 0 or d <= -1:
        return seq.n > 0 and d < -1
    return _log_wealth(seq, (d + 1) / 2, +1) >= -math.log(a)


def rejects_above(seq: PairedSeq, d: float, a: float) -> bool:
    """Is the mean paired difference credibly below d?"""
    if seq.n == 0 or d >= 1:
        return seq.n > 0 and d > 1
    return _log_wealth(seq, (d + 1) / 2, -1) >= -math.log(a)


def _edge(seq: PairedSeq, a: float, side: int) -> float:
    """The CS's lower (side +1) or upper (side -1) end on the d scale, by bisection between the
    ladder's end and the sample mean (never rejected: the bets have mean zero there)."""
    test = rejects_below if side > 0 else rejects_above
    outer, inner = (-1.0, seq.mean) if side > 0 else (1.0, seq.mean)
    if not test(seq, outer + side * 1e-6, a):
        return outer
    for _ in range(24):  # 2 / 2^24: far below the 0.1 points we print
        mid = (outer + inner) / 2
        if test(seq, mid, a):
            outer = mid
        else:
            inner = mid
    return outer


def interval(seq: PairedSeq, alpha: float) -> tuple[float, float]:
    """The (1 - alpha) confidence sequence for the mean paired difference, in [-1, 1]."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be within (0, 1), got {alpha}")
    if seq.n == 0:
        return -1.0, 1.0
    return _interval(tuple(sorted(seq.hist.items())), alpha)


@lru_cache(maxsize=4096)
def _interval(hist: tuple[tuple[float, float], ...], alpha: float) -> tuple[float, float]:
    # Cached: a decided skill shows the same evidence week after week (and the benchmark replays it).
    seq = PairedSeq(int(sum(c for _, c in hist)), sum(d * c for d, c in hist), dict(hist))
    return _edge(seq, alpha / 2, +1), _edge(seq, alpha / 2, -1)


def pairs_needed(seq: PairedSeq, threshold: float, alpha: float, limit: int = 100_000) -> int | None:
    """About how many more pairs, if they keep the current distribution, until the CS leaves
    `threshold` (None when the mean sits on it, or more than `limit` would be needed)."""
    if seq.n < 2 or abs(seq.mean - threshold) < 1e-9:
        return None
    a = alpha / 2
    check = rejects_below if seq.mean > threshold else rejects_above

    def crosses(k: int) -> bool:
        return check(seq.scaled(seq.n + k), threshold, a)

    if crosses(0):
        return 0
    if not crosses(limit):
        return None
    lo, hi = 0, limit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if crosses(mid) else (mid, hi)
    return hi
