"""Wasserstein-1 distance normed by the reference's standard deviation (as Evidently).

Two exact ways, both without re-sorting reference and current together as
scipy.stats.wasserstein_distance does, chosen by the sizes:

- windows of a fiftieth of the reference or more: W1 is also the area between the two
  quantile functions, which are step functions on the fixed grids i/n and j/m. Their
  breakpoints merge by integer arithmetic alone, so W1 is a weighted sum of
  |x_i - y_j| over the sorted values, no search at all: O(n + m), and as precise as a
  sum of non-negative terms (equal to scipy's to ~1e-15);
- smaller windows: W1 as the area between the CDFs. The current CDF is constant
  between two of its distinct values, and the reference CDF crosses that constant at
  most once (it is monotone), at a reference quantile; the area of |F - G| over each
  stretch is closed arithmetic on the counts and sums of the reference values inside
  it, found by binary search of the current values in the sorted reference and read
  from its prefix sums (`NumericProfile.centred_sums`, made on first use): O(m log n)
  per window, equal to scipy's to ~1e-11.
"""

from __future__ import annotations

import numpy as np

from detectors.columns import FloatArray, IntArray, NumericWindow
from detectors.profile import NumericProfile

# Below this share of the reference's size, binary searches of the window's values cost
# less than a pass over the reference (at 1M reference values both take 1.5 ms near 15k
# window values; at 100k the passes take 3 ms, the searches 8 ms).
_MIN_QUANTILE_SHARE = 1 / 50
# Values of the larger sample handled per step of the quantile sum.
_BLOCK = 1 << 15


def wasserstein_distance(reference: NumericProfile, current: NumericWindow) -> float:
    """Unnormed W1 between the reference and the current values.

    Examples:
        >>> profile = NumericProfile.fit([0.0, 1.0, 2.0, 3.0])
        >>> wasserstein_distance(profile, NumericWindow.of([1.0, 2.0, 3.0, 4.0]))
        1.0
    """
    if current.n >= reference.n * _MIN_QUANTILE_SHARE:
        return _by_quantiles(reference.values, current.sorted)
    return _by_search(reference, current)


def _by_quantiles(first: FloatArray, second: FloatArray) -> float:
    """W1 as the area between the quantile functions of two sorted samples.

    With x the larger sample (N values) and y the smaller (M), in units of 1/(N M) the
    quantile function of x is x_i on (i M, (i + 1) M] and that of y is y_j on
    (j N, (j + 1) N]. Each x step starts inside the y step J(i) = floor(i M / N), and
    holds at most one y breakpoint j N (M <= N): then from j N to (i + 1) M it faces
    y_j, not y_(j-1). The x steps facing each y_j are consecutive, counted by
    ceil((j + 1) N / M) - ceil(j N / M).

    Examples:
        >>> _by_quantiles(np.array([0.0, 1.0, 2.0]), np.array([0.0, 10.0]))  # 26 / 6
        4.333333333333333
    """
    x, y = (first, second) if first.size >= second.size else (second, first)
    big, small = x.size, y.size
    base = 0.0
    correction = 0.0
    # Block by block of y, so that every temporary stays small, cached and reused: full-size
    # ones per column cost fresh pages from the kernel (in worker threads above all), more
    # than the arithmetic.
    step = max(1, _BLOCK * small // big)
    for low in range(0, small, step):
        high = min(low + step, small)
        j = np.arange(low, high + 1, dtype=np.int64)
        starts = (j * big + small - 1) // small  # ceil(j N / M): first x step facing y_j
        facing = np.repeat(y[low:high], np.diff(starts))  # y_J(i) for these i
        np.subtract(x[starts[0]:starts[-1]], facing, out=facing)
        np.abs(facing, out=facing)
        base += float(np.sum(facing))
        # The y breakpoints j N (j >= 1) inside the x step i = starts[j] - 1, for the length
        # starts[j] M - j N (0 where the breakpoint is an x breakpoint too).
        inner = slice(1 if low == 0 else 0, high - low)
        first_j = j[inner]
        lengths = starts[inner] * small - first_j * big
        x_i = x[starts[inner] - 1]
        correction += float(np.sum(lengths * (np.abs(x_i - y[first_j])
                                              - np.abs(x_i - y[first_j - 1]))))
    total = small * base + correction
    return max(total / (float(big) * small), 0.0)


def _by_search(reference: NumericProfile, current: NumericWindow) -> float:
    """W1 as the area between the CDFs, by binary search in the sorted reference."""
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
