"""Turn mixed frames into numeric matrices for the multivariate checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from detectors.columns import FloatArray
from detectors.report import ColumnKind


def encode(frame: pd.DataFrame, columns: Sequence[str], kinds: Mapping[str, ColumnKind],
           codes: Mapping[str, dict[str, int]]) -> FloatArray:
    """Numeric columns as floats (missing and infinite as NaN), categorical ones as codes.

    Categories unseen when `codes` were built get the code -1; missing values NaN.
    """
    out = np.full((len(frame), len(columns)), np.nan)
    for j, name in enumerate(columns):
        if name not in frame.columns:
            continue
        column = frame[name]
        if kinds[name] == "numeric":
            values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64,
                                                                      na_value=np.nan)
            out[:, j] = np.where(np.isfinite(values), values, np.nan)
        else:
            mapping = codes[name]
            present = column.notna().to_numpy()
            strings = column.astype(str).to_numpy()
            out[:, j] = [mapping.get(s, -1) if p else np.nan
                         for s, p in zip(strings, present, strict=True)]
    return out


def category_codes(frame: pd.DataFrame, columns: Sequence[str],
                   kinds: Mapping[str, ColumnKind]) -> dict[str, dict[str, int]]:
    """A code per reference category (sorted) of each categorical column."""
    codes: dict[str, dict[str, int]] = {}
    for name in columns:
        if kinds[name] == "categorical":
            seen = sorted({str(v) for v in frame[name].dropna().unique()})
            codes[name] = {value: i for i, value in enumerate(seen)}
    return codes


def infer_kinds(frame: pd.DataFrame, columns: Sequence[str]) -> dict[str, ColumnKind]:
    """Numeric dtypes (not booleans) numeric, the rest categorical."""
    kinds: dict[str, ColumnKind] = {}
    for name in columns:
        series = frame[name]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        kinds[name] = "numeric" if numeric else "categorical"
    return kinds


