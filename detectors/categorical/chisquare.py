"""Chi-square and G goodness-of-fit of current counts to the reference's shares.

As Evidently defines chi-square: over the union of categories, expected counts are
the reference counts scaled to the current window's size, and p comes from
scipy.stats.chisquare. A category the reference never saw has an expected count
of 0, where the statistic is infinite (Evidently returns NaN or 0 there); driftline
gives it a floor of half an observation scaled to the window (the usual continuity
floor) and rescales the expected counts to the window's total, so an unseen
category counts as strong evidence of drift without yielding inf or NaN.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from detectors.categorical.counts import aligned_counts
from detectors.columns import FloatArray, IntArray, Window
from detectors.profile import ColumnProfile


def expected_counts(ref: IntArray, cur: IntArray) -> FloatArray:
    """Reference counts scaled to the current total; unseen categories floored (see module)."""
    n_ref, n_cur = int(ref.sum()), int(cur.sum())
    expected = ref * (n_cur / n_ref)
    if np.any(expected == 0):
        expected = np.where(expected == 0, 0.5 * n_cur / n_ref, expected)
        expected = expected * (n_cur / expected.sum())
    scaled: FloatArray = expected.astype(np.float64)
    return scaled


def chisquare(reference: ColumnProfile, current: Window) -> tuple[float, float]:
    """Pearson's chi-square statistic and p-value (k - 1 degrees of freedom).

    Examples:
        >>> from detectors.columns import CategoricalWindow
        >>> from detectors.profile import CategoricalProfile
        >>> profile = CategoricalProfile.fit(["a"] * 50 + ["b"] * 50)
        >>> chisquare(profile, CategoricalWindow.of(["a"] * 50 + ["b"] * 50))
        (0.0, 1.0)
    """
    _keys, ref, cur = aligned_counts(reference, current)
    if len(ref) < 2 or ref.sum() == 0 or cur.sum() == 0:
        return 0.0, 1.0  # one category on both sides: nothing can differ
    result = stats.chisquare(cur, expected_counts(ref, cur))
    return float(result.statistic), float(result.pvalue)


def g_test(reference: ColumnProfile, current: Window) -> tuple[float, float]:
    """G-test (log-likelihood ratio) of the current counts against the expected ones.

    Evidently passes the unscaled reference counts as expected frequencies, which
    scipy rejects when the two totals differ; driftline scales them to the window as
    chi-square does (identical to Evidently when both windows have the same size).

    Examples:
        >>> from detectors.columns import CategoricalWindow
        >>> from detectors.profile import CategoricalProfile
        >>> profile = CategoricalProfile.fit(["a"] * 50 + ["b"] * 50)
        >>> g_test(profile, CategoricalWindow.of(["a"] * 50 + ["b"] * 50))
        (0.0, 1.0)
    """
    _keys, ref, cur = aligned_counts(reference, current)
    if len(ref) < 2 or ref.sum() == 0 or cur.sum() == 0:
        return 0.0, 1.0
    result = stats.power_divergence(cur, expected_counts(ref, cur), lambda_="log-likelihood")
    return float(result.statistic), float(result.pvalue)
