"""Distances between binned or per-category shares, as Evidently defines them.

Jensen-Shannon, PSI, Kullback-Leibler and Hellinger.

Numeric columns with more than 20 distinct reference values are binned with
Sturges' rule over reference and current together; other columns use their
categories (or distinct values). PSI and KL floor empty bins as Evidently does
(a millionth of the smallest share, or 0.0001), so they stay finite.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.spatial import distance

from detectors.categorical.counts import (
    aligned_counts,
    binned_counts,
    proportions,
    sturges_edges,
)
from detectors.columns import FloatArray, NumericWindow, Window
from detectors.profile import ColumnProfile, NumericProfile


def _fill_zeros(shares: FloatArray) -> FloatArray:
    positive = shares[shares > 0]
    if positive.size == 0:
        return np.full_like(shares, 1.0 / max(shares.size, 1))
    smallest = float(positive.min())
    floor = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    filled: FloatArray = np.where(shares == 0, floor, shares)
    return filled


def _shares(reference: ColumnProfile, current: Window) -> tuple[FloatArray, FloatArray]:
    ref, cur = binned_counts(reference, current)
    return proportions(ref), proportions(cur)


def jensenshannon(reference: ColumnProfile, current: Window) -> tuple[float, None]:
    """Jensen-Shannon distance (natural log) of the binned shares.

    Examples:
        >>> from detectors.columns import CategoricalWindow
        >>> from detectors.profile import CategoricalProfile
        >>> jensenshannon(CategoricalProfile.fit(["a", "b"]), CategoricalWindow.of(["a", "b"]))
        (0.0, None)
    """
    ref, cur = _shares(reference, current)
    value = float(distance.jensenshannon(ref, cur))
    return (value if math.isfinite(value) else 0.0), None


def psi(reference: ColumnProfile, current: Window) -> tuple[float, None]:
    """Population Stability Index: sum((ref - cur) * ln(ref / cur)) over floored shares.

    Examples:
        >>> from detectors.columns import CategoricalWindow
        >>> from detectors.profile import CategoricalProfile
        >>> psi(CategoricalProfile.fit(["a", "b"]), CategoricalWindow.of(["a", "b"]))
        (0.0, None)
    """
    ref, cur = (_fill_zeros(s) for s in _shares(reference, current))
    return float(np.sum((ref - cur) * np.log(ref / cur))), None


def kl_div(reference: ColumnProfile, current: Window) -> tuple[float, None]:
    """Kullback-Leibler divergence KL(reference || current) over floored shares.

    Examples:
        >>> from detectors.columns import CategoricalWindow
        >>> from detectors.profile import CategoricalProfile
        >>> kl_div(CategoricalProfile.fit(["a", "b"]), CategoricalWindow.of(["a", "b"]))
        (0.0, None)
    """
    ref, cur = (_fill_zeros(s) for s in _shares(reference, current))
    return float(stats.entropy(ref, cur)), None


def _union_unique(reference: NumericProfile, current: NumericWindow) -> tuple[int, float, float]:
    levels, _counts = current.levels()
    ref = reference.values
    where = np.minimum(np.searchsorted(ref, levels), reference.n - 1)
    new = int(np.count_nonzero(ref[where] != levels))
    low, high = float(min(ref[0], levels[0])), float(max(ref[-1], levels[-1]))
    return reference.n_unique + new, low, high


def hellinger(reference: ColumnProfile, current: Window) -> tuple[float, None]:
    """Hellinger distance sqrt(1 - sum(sqrt(p * q))).

    Categorical columns use category shares. Numeric columns use Evidently's bins:
    Sturges' rule applied to the distinct values of reference and current together.

    Examples:
        >>> from detectors.columns import CategoricalWindow
        >>> from detectors.profile import CategoricalProfile
        >>> hellinger(CategoricalProfile.fit(["a", "b"]), CategoricalWindow.of(["a", "b"]))
        (0.0, None)
    """
    if isinstance(reference, NumericProfile) and isinstance(current, NumericWindow):
        size, low, high = _union_unique(reference, current)
        edges = sturges_edges(low, high, size)
        below = np.searchsorted(reference.values, edges, side="left")
        below[-1] = reference.n
        ref = proportions(np.diff(below))
        cur = proportions(np.histogram(current.values, edges)[0])
    else:
        _keys, ref_counts, cur_counts = aligned_counts(reference, current)
        ref, cur = proportions(ref_counts), proportions(cur_counts)
    coefficient = float(np.clip(np.sum(np.sqrt(ref * cur)), 0.0, 1.0))
    return math.sqrt(1.0 - coefficient), None
