"""Chi-square goodness of fit of current category counts to the reference's shares.

As Evidently defines it: over the union of categories, expected counts are the
reference counts scaled to the current window's size. A category that the
reference never saw has an expected count of 0, where the statistic is infinite;
we give it a floor of half an observation (scaled) instead, so that an unseen
category counts as strong evidence of drift without yielding inf or NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from detectors.categorical.counts import aligned_counts
from detectors.profile import CategoricalProfile, NumericProfile


def chisquare(reference: CategoricalProfile | NumericProfile, current: Any) -> tuple[float, float]:
    """Chi-square statistic and p-value.

    Examples:
        >>> profile = CategoricalProfile.fit(["a"] * 50 + ["b"] * 50)
        >>> chisquare(profile, ["a"] * 50 + ["b"] * 50)
        (0.0, 1.0)
    """
    _keys, ref, cur = aligned_counts(reference, current)
    n_ref, n_cur = ref.sum(), cur.sum()
    if len(ref) < 2:
        return 0.0, 1.0  # one category on both sides: nothing can differ
    expected = ref * (n_cur / n_ref)
    if np.any(expected == 0):
        expected = np.where(expected == 0, 0.5 * n_cur / n_ref, expected)
        expected = expected * (n_cur / expected.sum())
    result = stats.chisquare(cur, expected)
    return float(result.statistic), float(result.pvalue)


def g_test(reference: CategoricalProfile | NumericProfile, current: Any) -> tuple[float, float]:
    """G-test (log-likelihood ratio) of current counts against the reference's shares.

    Expected counts are scaled to the current window as for `chisquare` (Evidently passes raw
    reference counts, which scipy refuses when the sample sizes differ).

    Examples:
        >>> g_test(CategoricalProfile.fit(["a"] * 50 + ["b"] * 50), ["a"] * 50 + ["b"] * 50)
        (0.0, 1.0)
    """
    _keys, ref, cur = aligned_counts(reference, current)
    n_ref, n_cur = ref.sum(), cur.sum()
    if len(ref) < 2:
        return 0.0, 1.0
    expected = ref * (n_cur / n_ref)
    if np.any(expected == 0):
        expected = np.where(expected == 0, 0.5 * n_cur / n_ref, expected)
        expected = expected * (n_cur / expected.sum())
    result = stats.power_divergence(cur, expected, lambda_="log-likelihood")
    return float(result.statistic), float(result.pvalue)
