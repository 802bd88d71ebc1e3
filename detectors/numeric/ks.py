"""Two-sample Kolmogorov-Smirnov test, equal to scipy.stats.ks_2samp (two-sided, method auto).

The statistic is found from the current window alone: between two distinct current
values the current CDF is constant and the reference CDF only grows, so the largest
gap on that stretch lies at one of its ends. Two binary searches of the current
values in the sorted reference give it in O(m log n) rather than the O((n + m) log)
of sorting both samples again. The p-value is scipy's: exact below 10,000 values on
both sides, otherwise `kstwo.sf(d, round(n*m/(n+m)))`.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from detectors.columns import NumericWindow
from detectors.profile import NumericProfile

# scipy's ks_2samp computes exact p-values when both samples have at most this many values.
_MAX_EXACT = 10_000


def ks_statistic(reference: NumericProfile, current: NumericWindow) -> float:
    """The KS statistic sup |F_reference - F_current|, with scipy's floating-point steps.

    Examples:
        >>> ks_statistic(NumericProfile.fit([1.0, 2.0, 3.0, 4.0]), NumericWindow.of([3.0, 4.0]))
        0.5
    """
    ref = reference.values
    levels, counts = current.levels()
    n1, n2 = reference.n, current.n
    cdf2 = np.cumsum(counts) / n2
    # F_reference - F_current is largest just before each current value...
    below = np.searchsorted(ref, levels, side="left")
    previous = np.concatenate(([0.0], cdf2[:-1]))
    d_plus = float(np.max(below / n1 - previous))
    # ...and F_current - F_reference at each current value.
    if reference.n_unique == n1:
        # No ties in the reference: at most one reference value equals each level.
        inside = below < n1
        equal = np.zeros(levels.size, dtype=bool)
        equal[inside] = ref[below[inside]] == levels[inside]
        at = (below + equal) / n1
    else:
        at = np.searchsorted(ref, levels, side="right") / n1
    d_minus = float(np.max(cdf2 - at))
    return max(d_plus, d_minus, 0.0)


def ks(reference: NumericProfile, current: NumericWindow) -> tuple[float, float]:
    """KS statistic and p-value of `current` against the reference values.

    Examples:
        >>> profile = NumericProfile.fit(np.arange(100.0))
        >>> ks(profile, NumericWindow.of(np.arange(100.0)))
        (0.0, 1.0)
    """
    if max(reference.n, current.n) <= _MAX_EXACT:
        with warnings.catch_warnings():
            # On some tiny samples scipy's exact p-value fails and scipy itself falls back to
            # the asymptotic one with a RuntimeWarning: the documented `method="auto"` result.
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful",
                                    RuntimeWarning)
            result = stats.ks_2samp(reference.values, current.values)
        return float(result.statistic), float(result.pvalue)
    d = ks_statistic(reference, current)
    big, small = sorted([float(reference.n), float(current.n)], reverse=True)
    effective = np.round(big * small / (big + small))
    p_value = float(np.clip(stats.kstwo.sf(d, effective), 0.0, 1.0))
    return d, p_value
