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

from detectors.columns import FloatArray, IntArray, NumericWindow
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
    at_level = sums[k_at]
    # G = 0 below the first value, 1 above the last: the reference values outside.
    first, last = levels[0] - centre, levels[-1] - centre
    k_first, k_last = int(k_at[0]), int(k_at[-1])
    total = (k_first * first - float(at_level[0])
             + float(sums[n] - at_level[-1]) - (n - k_last) * last)
    if size > 1:
        a, b = levels[:-1], levels[1:]
        k_a, k_b = k_at[:-1], k_at[1:]
        g_count = np.cumsum(counts)[:-1]
        # n times the signed area of F - G over each stretch [a, b), where G = g / m:
        # (k_a - nG)(b - a) + the sum of (b - x) over the reference values x in [a, b), read
        # from the prefix sums of the centred values. Where F - G keeps its sign on the
        # stretch, the area is its absolute value.
        scaled = g_count * (n / m)  # n * G on each stretch
        signed = ((k_a - scaled) * (b - a) + (k_b - k_a) * (b - centre)
                  - (at_level[1:] - at_level[:-1]))
        total += float(np.sum(np.abs(signed)))
        # F crosses G inside [a, b) only where k_a < nG <= k_b (integer arithmetic): the
        # stretches where both CDFs meet, few but for windows close to the reference.
        g_n = g_count * n
        crossed = np.flatnonzero((k_a * m < g_n) & (g_n <= k_b * m))
        if crossed.size:
            total += _crossed(reference, sums, a[crossed], b[crossed], k_a[crossed],
                              k_b[crossed], g_count[crossed], m, signed[crossed])
    return max(float(total) / n, 0.0)


def _crossed(reference: NumericProfile, sums: FloatArray, a: FloatArray, b: FloatArray,
             k_a: IntArray, k_b: IntArray, g_count: IntArray, m: int,
             signed: FloatArray) -> float:
    """What the areas of stretches where F may cross G add to their |signed area|."""
    ref, n, centre = reference.values, reference.n, reference.center
    # The reference CDF reaches g exactly from its value of rank ceil(g * n) on.
    rank = (g_count * n + m - 1) // m
    crossing = np.clip(ref[np.minimum(rank, n) - 1], a, b)
    if reference.n_unique == n:
        # No ties: a crossing strictly inside (a, b) is the reference value of that rank.
        k_cross = np.where(crossing == a, k_a, np.where(crossing == b, k_b, rank))
    else:
        k_cross = np.searchsorted(ref, crossing, side="right")
    # n times the area with c the crossing: (nG - k_a)(c - a) - sum over the reference
    # values in [a, c) of (c - x), below it; (k_c - nG)(b - c) + sum over those in [c, b)
    # of (b - x), above it.
    scaled = g_count * (n / m)
    at_a, at_cross, at_b = sums[k_a], sums[k_cross], sums[k_b]
    below = ((scaled - k_a) * (crossing - a) - (k_cross - k_a) * (crossing - centre)
             + (at_cross - at_a))
    above = ((k_cross - scaled) * (b - crossing) + (k_b - k_cross) * (b - centre)
             - (at_b - at_cross))
    return float(np.sum(below + above - np.abs(signed)))


def wasserstein(reference: NumericProfile, current: NumericWindow) -> tuple[float, None]:
    """Distance / max(std of reference with ddof=0, 0.001); no p-value.

    Examples:
        >>> profile = NumericProfile.fit(np.array([0.0, 1.0, 2.0, 3.0]))
        >>> round(wasserstein(profile, NumericWindow.of([1.0, 2.0, 3.0, 4.0]))[0], 6)
        0.894427
    """
    norm = max(reference.std, 0.001)
    return wasserstein_distance(reference, current) / norm, None
