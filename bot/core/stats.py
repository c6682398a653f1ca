"""Small, pure statistics for the tier review and the digest (standard library only).

Everything here is deterministic and side-effect free so it can be tested with exact values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


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


def monthly_projection(amount_in_window: float, window_days: float) -> float:
    """Scale an amount observed over `window_days` to a 30-day month (0.0 for an empty window)."""
    return rate(amount_in_window * 30, window_days) if window_days > 0 else 0.0
