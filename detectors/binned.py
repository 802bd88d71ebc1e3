"""Distances over binned shares (Evidently's binning): Jensen-Shannon and PSI.

Numeric columns with more than 20 distinct reference values are binned with
Sturges' rule over reference and current together; other columns use their
categories.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

from detectors.categorical.counts import aligned_counts, proportions
from detectors.profile import CategoricalProfile, FloatArray, NumericProfile


def binned_shares(
    reference: CategoricalProfile | NumericProfile, current: Any
) -> tuple[FloatArray, FloatArray]:
    """Shares of reference and current per bin (numeric) or per category."""
    if isinstance(reference, NumericProfile) and reference.n_unique > 20:
        values = np.asarray(current, dtype=np.float64)
        edges = np.histogram_bin_edges(np.concatenate([reference.values, values]), bins="sturges")
        ref_counts = np.histogram(reference.values, edges)[0]
        cur_counts = np.histogram(values, edges)[0]
        return ref_counts / reference.n, cur_counts / max(values.size, 1)
    _keys, ref, cur = aligned_counts(reference, current)
    return proportions(ref), proportions(cur)


def _fill_zeros(shares: FloatArray) -> FloatArray:
    positive = shares[shares > 0]
    if positive.size == 0:
        return np.full_like(shares, 1.0 / max(shares.size, 1))
    smallest = float(positive.min())
    floor = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return np.where(shares == 0, floor, shares)


def jensenshannon(
    reference: CategoricalProfile | NumericProfile, current: Any
) -> tuple[float, None]:
    """Jensen-Shannon distance (natural log) of the binned shares.

    Examples:
        >>> profile = CategoricalProfile.fit(["a", "b"])
        >>> jensenshannon(profile, ["a", "b"])
        (0.0, None)
    """
    ref, cur = binned_shares(reference, current)
    value = float(distance.jensenshannon(ref, cur))
    return (value if np.isfinite(value) else 0.0), None


def psi(reference: CategoricalProfile | NumericProfile, current: Any) -> tuple[float, None]:
    """Population Stability Index; empty bins floored as Evidently does.

    Examples:
        >>> profile = CategoricalProfile.fit(["a", "b"])
        >>> psi(profile, ["a", "b"])
        (0.0, None)
    """
    ref, cur = (_fill_zeros(s) for s in binned_shares(reference, current))
    return float(np.sum((ref - cur) * np.log(ref / cur))), None


def kl_div(reference: CategoricalProfile | NumericProfile, current: Any) -> tuple[float, None]:
    """Kullback-Leibler divergence of reference from current shares (zeros floored, as PSI).

    Examples:
        >>> kl_div(CategoricalProfile.fit(["a", "b"]), ["a", "b"])
        (0.0, None)
    """
    ref, cur = (_fill_zeros(s) for s in binned_shares(reference, current))
    return float(stats.entropy(ref, cur)), None


def hellinger(reference: CategoricalProfile | NumericProfile, current: Any) -> tuple[float, None]:
    """Hellinger distance, in [0, 1].

    Numeric columns use Sturges bins over the distinct values of both samples with density
    histograms, as Evidently does; categorical columns use category shares.

    Examples:
        >>> hellinger(CategoricalProfile.fit(["a", "b"]), ["a", "b"])
        (0.0, None)
    """
    if isinstance(reference, NumericProfile):
        values = np.asarray(current, dtype=np.float64)
        keys = np.unique(np.concatenate([reference.values, values]))
        edges = np.histogram_bin_edges(keys, bins="sturges")
        h1 = np.histogram(reference.values, bins=edges, density=True)[0]
        h2 = np.histogram(values, bins=edges, density=True)[0]
        width = (edges.max() - edges.min()) / (len(edges) - 1)
        overlap = float(np.sum(np.sqrt(h1 * h2)) * width)
    else:
        _keys, ref, cur = aligned_counts(reference, current)
        overlap = float(np.sum(np.sqrt(proportions(ref) * proportions(cur))))
    overlap = min(max(overlap, 0.0), 1.0)
    return float(np.sqrt(1.0 - overlap)), None


def tvd(reference: CategoricalProfile | NumericProfile, current: Any) -> tuple[float, None]:
    """Total variation distance of the category shares, in [0, 1].

    Examples:
        >>> tvd(CategoricalProfile.fit(["a", "a", "b", "b"]), ["a", "a", "a", "a"])
        (0.5, None)
    """
    _keys, ref, cur = aligned_counts(reference, current)
    return float(0.5 * np.sum(np.abs(proportions(ref) - proportions(cur)))), None
