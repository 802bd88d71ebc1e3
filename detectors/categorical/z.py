"""Two-proportion z-test for binary columns (Evidently's default for two categories)."""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

from detectors.categorical.counts import aligned_counts
from detectors.profile import CategoricalProfile, NumericProfile


def z_test(reference: CategoricalProfile | NumericProfile, current: Any) -> tuple[float, float]:
    """Z statistic and two-sided p-value of the share of the first category.

    Examples:
        >>> profile = CategoricalProfile.fit(["a"] * 50 + ["b"] * 50)
        >>> z_test(profile, ["a"] * 50 + ["b"] * 50)
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
