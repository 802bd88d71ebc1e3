"""Counts of reference and current aligned on the union of their categories (or values)."""

from __future__ import annotations

import numpy as np

from detectors.columns import CategoricalWindow, FloatArray, IntArray, NumericWindow, Window
from detectors.profile import ColumnProfile, NumericProfile


def _numeric_levels(reference: NumericProfile) -> tuple[FloatArray, IntArray]:
    if reference.levels.size or reference.n == 0:
        return reference.levels, reference.level_counts
    return NumericWindow(reference.values).levels()


def aligned_counts(
    reference: ColumnProfile, current: Window
) -> tuple[list[str], IntArray, IntArray]:
    """(keys, reference counts, current counts) over the sorted union of categories.

    Numeric columns are counted per distinct value (as Evidently does for columns
    with few values); their keys are the values' text.

    Examples:
        >>> from detectors.columns import CategoricalWindow
        >>> from detectors.profile import CategoricalProfile
        >>> profile = CategoricalProfile.fit(["a", "b", "b"])
        >>> aligned_counts(profile, CategoricalWindow.of(["b", "c"]))
        (['a', 'b', 'c'], array([1, 2, 0]), array([0, 1, 1]))
    """
    if isinstance(reference, NumericProfile):
        values = current.sorted if isinstance(current, NumericWindow) else np.zeros(0)
        ref_levels, ref_counts = _numeric_levels(reference)
        cur_levels, cur_counts = NumericWindow(values).levels()
        keys = np.union1d(ref_levels, cur_levels)
        ref = np.zeros(keys.size, np.int64)
        cur = np.zeros(keys.size, np.int64)
        ref[np.searchsorted(keys, ref_levels)] = ref_counts
        cur[np.searchsorted(keys, cur_levels)] = cur_counts
        return [repr(float(k)) for k in keys], ref, cur
    empty = CategoricalWindow((), np.zeros(0, np.int64))
    window = current if isinstance(current, CategoricalWindow) else empty
    if window.categories == reference.categories:
        return list(reference.categories), np.asarray(reference.counts), window.counts
    ref_map = reference.count_map()
    cur_map = dict(zip(window.categories, window.counts.tolist(), strict=True))
    names = sorted(set(ref_map) | set(cur_map))
    ref = np.array([ref_map.get(k, 0) for k in names], dtype=np.int64)
    cur = np.array([cur_map.get(k, 0) for k in names], dtype=np.int64)
    return names, ref, cur


def proportions(counts: IntArray) -> FloatArray:
    """Counts as shares of their total (zeros when empty)."""
    total = counts.sum()
    shares: FloatArray = counts / total if total else np.zeros(len(counts))
    return shares


def _sturges_edges(reference: NumericProfile, current: NumericWindow) -> FloatArray:
    # numpy's histogram_bin_edges(concatenate([ref, cur]), "sturges") without the
    # concatenation: the edges depend only on the combined size, minimum and maximum.
    low, high = reference.values[0], reference.values[-1]
    if current.n:
        low, high = min(low, float(current.values.min())), max(high, float(current.values.max()))
    return sturges_edges(low, high, reference.n + current.n)


def sturges_edges(low: float, high: float, size: int) -> FloatArray:
    """Sturges edges for `size` values spanning [low, high], as numpy computes them.

    Also when high - low overflows (values near the float maximum), where numpy fails.

    Examples:
        >>> sturges_edges(0.0, 1.0, 4).tolist()
        [0.0, 0.3333333333333333, 0.6666666666666666, 1.0]
        >>> bool(np.isfinite(sturges_edges(-1e308, 1e308, 10)).all())
        True
    """
    spread = high - low
    if not np.isfinite(spread):
        n_bins = int(np.ceil(np.log2(size) + 1.0))
        steps = np.linspace(0.0, 1.0, n_bins + 1)
        wide: FloatArray = 2.0 * ((1.0 - steps) * (low / 2.0) + steps * (high / 2.0))
        return wide
    width = spread / (np.log2(size) + 1.0)
    n_bins = int(np.ceil(spread / width)) if width else 1
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges: FloatArray = np.linspace(low, high, n_bins + 1, endpoint=True)
    return edges


def binned_counts(reference: ColumnProfile, current: Window) -> tuple[IntArray, IntArray]:
    """Counts per bin (numeric, more than 20 distinct reference values) or per category.

    Bins are Evidently's: Sturges' rule over reference and current together. The
    reference is counted by binary search in its sorted values.

    Examples:
        >>> profile = NumericProfile.fit(np.arange(100.0))
        >>> ref, cur = binned_counts(profile, NumericWindow.of(np.arange(50.0)))
        >>> int(ref.sum()), int(cur.sum()), ref.size
        (100, 50, 9)
    """
    if isinstance(reference, NumericProfile) and reference.n_unique > 20:
        window = current if isinstance(current, NumericWindow) else NumericWindow(np.zeros(0))
        edges = _sturges_edges(reference, window)
        # np.histogram's bins are [e_i, e_i+1) except the last, which is closed.
        below = np.searchsorted(reference.values, edges, side="left")
        below[-1] = reference.n
        ref_counts = np.diff(below).astype(np.int64)
        cur_counts = np.histogram(window.values, edges)[0].astype(np.int64)
        return ref_counts, cur_counts
    _keys, ref, cur = aligned_counts(reference, current)
    return ref, cur
