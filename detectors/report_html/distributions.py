"""What the report's plots show: shares per bin or per category, reference against current.

Both sides are shares of their own non-missing values, so a 1,000-row window and a
1,000,000-row reference compare on one scale. Numeric bins are shared by the two
sides; categorical plots keep the most frequent categories and sum the rest into one
"other" bar, which the page names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from detectors.columns import FloatArray, IntArray

N_BINS = 30
TOP_CATEGORIES = 10
# When the central 99% of the values spans less than this share of the full range,
# a few outliers would squeeze every other bar into one: the axis is cut instead.
_OUTLIER_SPAN = 0.5
_CUT_QUANTILES = (0.005, 0.995)


@dataclass(frozen=True, slots=True)
class Histogram:
    """Shares of values per bin on bins shared by reference and current.

    `current` is None when the window's side is not drawn (column missing or of another
    type). `clipped` counts the reference and current values beyond the axis, which are
    counted in the end bins. `unit_bins`: one bin per integer value.
    """

    edges: FloatArray
    reference: FloatArray
    current: FloatArray | None
    clipped: tuple[int, int]
    unit_bins: bool


@dataclass(frozen=True, slots=True)
class CategoryBars:
    """Shares of the most frequent categories, the rest summed in a last "other" bar.

    `n_other` is the number of categories in the "other" bar (0: there is none);
    `new` marks categories the reference never saw.
    """

    labels: tuple[str, ...]
    reference: FloatArray
    current: FloatArray | None
    n_other: int
    new: tuple[bool, ...]

    @property
    def n_categories(self) -> int:
        """Number of distinct categories on either side."""
        return len(self.labels) + self.n_other


def _shares(counts: FloatArray | IntArray, total: int) -> FloatArray:
    return np.asarray(counts, dtype=np.float64) / max(total, 1)


def _edges(lo: float, hi: float, unit_bins: bool, n_bins: int) -> FloatArray:
    if unit_bins:
        # Small integer ranges: one bin per value, centred on it.
        return np.arange(math.floor(lo) - 0.5, math.ceil(hi) + 1.0, 1.0)
    if hi == lo:
        half = max(abs(lo) * 0.05, 0.5)
        lo, hi = lo - half, hi + half
    return np.linspace(lo, hi, n_bins + 1)


def numeric_histogram(
    reference: FloatArray, current: FloatArray | None, *, n_bins: int = N_BINS
) -> Histogram | None:
    """Bins over both sides' values and each side's share per bin.

    Args:
        reference: Finite reference values.
        current: Finite window values, or None when the window's side is not drawn.
        n_bins: Number of bins (fewer for small integer ranges: one bin per value).

    Returns:
        The histogram, or None when there is nothing to draw or the values span more
        than a float can hold.

    Examples:
        >>> hist = numeric_histogram(np.array([0.0, 1.0, 2.0, 3.0]), np.array([3.0, 3.0]))
        >>> hist.edges.tolist(), hist.current.tolist()
        ([-0.5, 0.5, 1.5, 2.5, 3.5], [0.0, 0.0, 0.0, 1.0])
    """
    both = reference if current is None else np.concatenate([reference, current])
    if both.size == 0:
        return None
    lo, hi = float(both.min()), float(both.max())
    with np.errstate(all="ignore"):
        if not math.isfinite(hi - lo):
            return None
        if hi > lo:
            q_lo, q_hi = (float(q) for q in np.quantile(both, _CUT_QUANTILES))
            if q_hi - q_lo < _OUTLIER_SPAN * (hi - lo):
                lo, hi = q_lo, q_hi
        unit_bins = hi - lo < n_bins and bool(np.all(both == np.round(both)))
        edges = _edges(lo, hi, unit_bins, n_bins)
        if not np.all(np.isfinite(edges)):
            return None

    def count(values: FloatArray) -> tuple[FloatArray, int]:
        beyond = int(np.count_nonzero((values < edges[0]) | (values > edges[-1])))
        counts = np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0]
        return _shares(counts, values.size), beyond

    ref, ref_beyond = count(reference)
    if current is None:
        return Histogram(edges, ref, None, (ref_beyond, 0), unit_bins)
    cur, cur_beyond = count(current)
    return Histogram(edges, ref, cur, (ref_beyond, cur_beyond), unit_bins)


def category_bars(
    reference: tuple[tuple[str, ...], IntArray],
    current: tuple[tuple[str, ...], IntArray] | None,
    *,
    top: int = TOP_CATEGORIES,
) -> CategoryBars:
    """The `top` categories by share on either side, and the rest summed as "other".

    Categories are ranked by the larger of their two shares, so a category that
    appears only in the window ranks like one that vanished from it. When only one
    category would be left over, it is shown rather than summed.

    Examples:
        >>> ref = (("a", "b", "c"), np.array([6, 3, 1]))
        >>> bars = category_bars(ref, (("a", "d"), np.array([1, 1])), top=2)
        >>> bars.labels, bars.n_other, bars.reference.tolist(), bars.current.tolist()
        (('a', 'd'), 2, [0.6, 0.0, 0.4], [0.5, 0.5, 0.0])
    """
    ref_names, ref_counts = reference
    ref_map = dict(zip(ref_names, ref_counts.tolist(), strict=True))
    ref_total = int(ref_counts.sum())
    cur_map: dict[str, int] = {}
    cur_total = 0
    if current is not None:
        cur_map = dict(zip(current[0], current[1].tolist(), strict=True))
        cur_total = int(current[1].sum())
    names = sorted(set(ref_map) | set(cur_map))
    ref_all = _shares(np.array([ref_map.get(n, 0) for n in names]), ref_total)
    cur_all = _shares(np.array([cur_map.get(n, 0) for n in names]), cur_total)
    # Stable sort on names already in order: ties keep alphabetical order.
    order = np.argsort(-np.maximum(ref_all, cur_all), kind="stable")
    shown = order if len(names) <= top + 1 else order[:top]
    rest = order[len(shown):]
    labels = tuple(names[i] for i in shown)
    new = tuple(ref_map.get(names[i], 0) == 0 for i in shown)
    ref_shares = ref_all[shown]
    cur_shares = cur_all[shown]
    if rest.size:
        ref_shares = np.append(ref_shares, ref_all[rest].sum())
        cur_shares = np.append(cur_shares, cur_all[rest].sum())
    return CategoryBars(labels, ref_shares, cur_shares if current is not None else None,
                        int(rest.size), new)
