"""Wasserstein-1 distance normed by the reference's standard deviation (as Evidently).

W1 is the area between the two CDFs. The current CDF is constant between two of
its distinct values, and the reference CDF crosses that constant at most once (it
is monotone), at a reference quantile. The area of |F - G| over each stretch is
closed arithmetic on the counts and sums of the reference values inside it: one
binary search of the current values in the sorted reference, and the sums read from
the reference's prefix sums (`NumericProfile.centred_sums`, made once per profile),
instead of re-sorting reference and current together as scipy.stats.wasserstein_distance
does; the result equals scipy's to ~1e-12.
"""

from __future__ import annotations

import numpy as np

from detectors.columns import NumericWindow
from detectors.profile import NumericProfile


def wasserstein_distance(reference: NumericProfile, current: NumericWindow) -> float:
    """Unnormed W1 between the reference and the current values.

    Examples:
        >>> profile = NumericProfile.fit([0.0, 1.0, 2.0, 3.0])
        >>> wasserstein_distance(profile, NumericWindow.of([1.0, 2.0, 3.0, 4.0]))
        1.0
    """
    ref, n, centre = reference.values, reference.n, reference.center
    sums = reference.centred_sums()  # sums[k]: the first k centred reference values
    levels, counts = current.levels()
    m, size = current.n, levels.size
    k_at = np.searchsorted(ref, levels, side="right")  # reference values <= each level
    # G = 0 below the first value, 1 above the last: the reference values outside.
    first, last = levels[0] - centre, levels[-1] - centre
    k_first, k_last = int(k_at[0]), int(k_at[-1])
    total = (k_first * first - float(sums[k_first])
             + float(sums[n] - sums[k_last]) - (n - k_last) * last)
    if size > 1:
        a, b = levels[:-1], levels[1:]
        g_count = np.cumsum(counts)[:-1]
        # On [a, b) the current CDF is g, and the reference CDF reaches g exactly from its
        # value of rank ceil(g * n) on (integer arithmetic): where |F - g| changes sign.
        rank = (g_count * n + m - 1) // m
        crossing = np.clip(ref[np.minimum(rank, n) - 1], a, b)
        k_a, k_b = k_at[:-1], k_at[1:]
        if reference.n_unique == n:
            # No ties: a crossing strictly inside (a, b) is the reference value of that rank.
            k_cross = np.where(crossing == a, k_a, np.where(crossing == b, k_b, rank))
        else:
            k_cross = np.searchsorted(ref, crossing, side="right")
        # n times the area over each stretch [a, b), with c the crossing:
        # (nG - k_a)(c - a) - sum over the reference values in [a, c) of (c - x), below it;
        # (k_c - nG)(b - c) + sum over those in [c, b) of (b - x), above it. The reference
        # sums are centred (x - centre), read as differences of the prefix sums.
        scaled = g_count * (n / m)  # n * G on each stretch
        below = (scaled - k_a) * (crossing - a) - (k_cross - k_a) * (crossing - centre)
        above = (k_cross - scaled) * (b - crossing) + (k_b - k_cross) * (b - centre)
        at_level, at_cross = sums[k_at], sums[k_cross]
        inside = (at_cross - at_level[:-1]) - (at_level[1:] - at_cross)
        total += float(np.sum(below) + np.sum(above) + np.sum(inside))
    return max(float(total) / n, 0.0)


def wasserstein(reference: NumericProfile, current: NumericWindow) -> tuple[float, None]:
    """Distance / max(std of reference with ddof=0, 0.001); no p-value.

    Examples:
        >>> profile = NumericProfile.fit(np.array([0.0, 1.0, 2.0, 3.0]))
        >>> round(wasserstein(profile, NumericWindow.of([1.0, 2.0, 3.0, 4.0]))[0], 6)
        0.894427
    """
    norm = max(reference.std, 0.001)
    return wasserstein_distance(reference, current) / norm, None
