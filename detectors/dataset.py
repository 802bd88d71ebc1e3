"""The dataset verdict and multiple-testing corrections over p-value tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Correction = Literal["bonferroni", "holm", "bh"]


def adjust_p_values(p_values: Sequence[float], correction: Correction | None) -> list[float]:
    """Adjusted p-values (compare them with the unadjusted threshold).

    Examples:
        >>> adjust_p_values([0.01, 0.04, 0.03], "bonferroni")
        [0.03, 0.12, 0.09]
        >>> [round(p, 4) for p in adjust_p_values([0.01, 0.04, 0.03], "holm")]
        [0.03, 0.06, 0.06]
        >>> [round(p, 4) for p in adjust_p_values([0.01, 0.04, 0.03], "bh")]
        [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if correction is None or m == 0:
        return [float(v) for v in p]
    if correction == "bonferroni":
        return [float(v) for v in np.minimum(p * m, 1.0)]
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if correction == "holm":
        adjusted = np.maximum.accumulate(ranked * (m - np.arange(m)))
    elif correction == "bh":
        adjusted = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {correction!r}; use bonferroni, holm or bh")
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(v) for v in out]


def dataset_drifted(n_drifted: int, n_features: int, drift_share: float) -> bool:
    """Drift when at least `drift_share` of the features drifted (Evidently's rule).

    Compared as Evidently does, share against share: 3 of 10 reaches 0.3, although
    10 * 0.3 is 3.0000000000000004 in floating point.

    Examples:
        >>> dataset_drifted(3, 6, 0.5), dataset_drifted(2, 6, 0.5), dataset_drifted(0, 0, 0.5)
        (True, False, False)
        >>> dataset_drifted(3, 10, 0.3)
        True
    """
    return n_features > 0 and n_drifted / n_features >= drift_share
