"""Two-proportion z-test (Evidently's default for two categories) and Fisher's exact test.

Both compare the share of the first category (in sorted order) against the rest;
for a binary column that is the whole story, for more categories it is a summary.
"""

from __future__ import annotations

import math

from scipy import stats

from detectors.categorical.counts import aligned_counts
from detectors.columns import Window
from detectors.profile import ColumnProfile


def z_test(reference: ColumnProfile, current: Window) -> tuple[float, float]:
    """Z statistic and two-sided p-value of the share of "not the first category".

    Examples:
        >>> from detectors.columns import CategoricalWindow
        >>> from detectors.profile import CategoricalProfile
        >>> profile = CategoricalProfile.fit(["a"] * 50 + ["b"] * 50)
        >>> z_test(profile, CategoricalWindow.of(["a"] * 50 + ["b"] * 50))
        (0.0, 1.0)
    """
    _keys, ref, cur = aligned_counts(reference, current)
    n1, n2 = int(ref.sum()), int(cur.sum())
    if len(ref) < 2 or n1 == 0 or n2 == 0:
        return 0.0, 1.0
    # The share of "not the first category", as Evidently codes it (0 for the first key).
    p1 = float(n1 - ref[0]) / n1
    p2 = float(n2 - cur[0]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    variance = pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0:
        return 0.0, 1.0
    z = (p1 - p2) / math.sqrt(variance)
    return float(z), float(2 * (1 - stats.norm.cdf(abs(z))))


def fisher_exact(reference: ColumnProfile, current: Window) -> tuple[float | None, float]:
    """Odds ratio and two-sided p-value of Fisher's exact test on the 2x2 table.

    Rows are current and reference, columns the first category and the rest
    (Evidently's table; it accepts only binary columns of equal length, driftline
    any sizes). The odds ratio is None when it is infinite.

    Examples:
        >>> from detectors.columns import CategoricalWindow
        >>> from detectors.profile import CategoricalProfile
        >>> profile = CategoricalProfile.fit(["a"] * 50 + ["b"] * 50)
        >>> fisher_exact(profile, CategoricalWindow.of(["a"] * 50 + ["b"] * 50))
        (1.0, 1.0)
    """
    _keys, ref, cur = aligned_counts(reference, current)
    n1, n2 = int(ref.sum()), int(cur.sum())
    if len(ref) < 2 or n1 == 0 or n2 == 0:
        return 1.0, 1.0
    table = [[int(cur[0]), n2 - int(cur[0])], [int(ref[0]), n1 - int(ref[0])]]
    result = stats.fisher_exact(table)
    odds = float(result.statistic)
    return (odds if math.isfinite(odds) else None), float(result.pvalue)
