"""Category counts of reference and current aligned on the union of their categories."""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.profile import CategoricalProfile, FloatArray, IntArray, NumericProfile


def aligned_counts(
    reference: CategoricalProfile | NumericProfile, current: Any
) -> tuple[list[Any], IntArray, IntArray]:
    """(keys, reference counts, current counts) over the union of categories, sorted."""
    if isinstance(reference, NumericProfile):
        ref_keys, ref_counts = np.unique(reference.values, return_counts=True)
        ref_map: dict[Any, int] = {float(k): int(c) for k, c in zip(ref_keys, ref_counts,
                                                                   strict=True)}
        cur_keys, cur_counts = np.unique(np.asarray(current, dtype=np.float64),
                                         return_counts=True)
        cur_map: dict[Any, int] = {float(k): int(c) for k, c in zip(cur_keys, cur_counts,
                                                                   strict=True)}
    else:
        ref_map = reference.count_map()
        cur_keys, cur_counts = np.unique(np.asarray(current, dtype=np.str_), return_counts=True)
        cur_map = {str(k): int(c) for k, c in zip(cur_keys, cur_counts, strict=True)}
    keys = sorted(set(ref_map) | set(cur_map))
    ref = np.array([ref_map.get(k, 0) for k in keys], dtype=np.int64)
    cur = np.array([cur_map.get(k, 0) for k in keys], dtype=np.int64)
    return keys, ref, cur


def proportions(counts: IntArray) -> FloatArray:
    """Counts as shares of their total (zeros when empty)."""
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))
