"""The reference profile: what every later window needs, fitted once, never mutated."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from detectors.errors import ProfileFormatError
from detectors.report import ColumnKind

PROFILE_FORMAT = "driftline.profile"
PROFILE_VERSION = 1

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def numeric_values(values: Any) -> FloatArray:
    """Finite float64 values of a column; missing, non-numeric and infinite values dropped.

    Examples:
        >>> numeric_values(pd.Series([1, None, float("inf"), "2", "x"])).tolist()
        [1.0, 2.0]
    """
    series = pd.to_numeric(pd.Series(values), errors="coerce")
    array = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite: FloatArray = array[np.isfinite(array)]
    return finite


def categorical_values(values: Any) -> npt.NDArray[np.str_]:
    """Values of a column as strings, missing values dropped (1 and "1" are one category).

    Examples:
        >>> categorical_values(pd.Series(["a", None, 1, float("nan")])).tolist()
        ['a', '1']
    """
    series = pd.Series(values).dropna()
    strings: npt.NDArray[np.str_] = series.astype(str).to_numpy(dtype=np.str_)
    return strings


@dataclass(frozen=True, slots=True)
class NumericProfile:
    """A numeric reference column: sorted finite values and moments."""

    values: FloatArray
    mean: float
    std: float
    n_unique: int

    @classmethod
    def fit(cls, values: Any) -> NumericProfile:
        """Fit from raw column values."""
        array = np.sort(numeric_values(values))
        array.setflags(write=False)
        if array.size == 0:
            return cls(array, 0.0, 0.0, 0)
        n_unique = int(np.count_nonzero(np.diff(array))) + 1
        return cls(array, float(array.mean()), float(array.std()), n_unique)

    @property
    def n(self) -> int:
        """Number of usable reference values."""
        return int(self.values.size)


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    """A categorical reference column: categories (as strings) and their counts."""

    categories: tuple[str, ...]
    counts: IntArray

    @classmethod
    def fit(cls, values: Any) -> CategoricalProfile:
        """Fit from raw column values."""
        strings = categorical_values(values)
        categories, counts = np.unique(strings, return_counts=True)
        counts = counts.astype(np.int64)
        counts.setflags(write=False)
        return cls(tuple(str(c) for c in categories), counts)

    @property
    def n(self) -> int:
        """Number of non-missing reference values."""
        return int(self.counts.sum())

    def count_map(self) -> dict[str, int]:
        """Category to count."""
        return dict(zip(self.categories, (int(c) for c in self.counts), strict=True))


ColumnProfile = NumericProfile | CategoricalProfile


def infer_kind(series: pd.Series) -> ColumnKind:
    """Numeric dtypes (but not booleans) are numeric; everything else categorical."""
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    return "numeric" if pd.api.types.is_numeric_dtype(series) else "categorical"


@dataclass(frozen=True)
class ReferenceProfile:
    """Everything drift detection needs from the reference dataset.

    Examples:
        >>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
        >>> profile = ReferenceProfile.fit(frame)
        >>> profile.kinds
        {'x': 'numeric', 'c': 'categorical'}
        >>> ReferenceProfile.from_bytes(profile.to_bytes()).columns == profile.columns
        True
    """

    kinds: Mapping[str, ColumnKind]
    numeric: Mapping[str, NumericProfile]
    categorical: Mapping[str, CategoricalProfile]
    n_rows: int

    @property
    def columns(self) -> list[str]:
        """Profiled columns in fit order."""
        return list(self.kinds)

    def column(self, name: str) -> ColumnProfile:
        """The profile of one column."""
        if self.kinds[name] == "numeric":
            return self.numeric[name]
        return self.categorical[name]

    @classmethod
    def fit(
        cls, reference: pd.DataFrame, schema: Mapping[str, str] | None = None
    ) -> ReferenceProfile:
        """Fit a profile; `schema` restricts the columns and overrides inferred kinds."""
        if schema is None:
            kinds: dict[str, ColumnKind] = {str(c): infer_kind(reference[c]) for c in reference}
        else:
            missing = [c for c in schema if c not in reference.columns]
            if missing:
                raise ValueError(f"schema names columns the reference lacks: {missing}")
            kinds = {}
            for name, kind in schema.items():
                if kind not in ("numeric", "categorical"):
                    raise ValueError(f"column {name!r}: kind must be numeric or categorical, "
                                     f"got {kind!r}")
                kinds[name] = kind  # type: ignore[assignment]
        numeric = {c: NumericProfile.fit(reference[c]) for c, k in kinds.items() if k == "numeric"}
        categorical = {
            c: CategoricalProfile.fit(reference[c]) for c, k in kinds.items() if k == "categorical"
        }
        return cls(kinds, numeric, categorical, len(reference))

    def to_bytes(self) -> bytes:
        """Serialise (versioned NumPy archive with a JSON header; no pickle)."""
        meta = {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "n_rows": self.n_rows,
            "kinds": dict(self.kinds),
            "categorical": {c: list(p.categories) for c, p in self.categorical.items()},
        }
        arrays: dict[str, Any] = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
        for i, name in enumerate(self.kinds):
            if self.kinds[name] == "numeric":
                arrays[f"n{i}"] = self.numeric[name].values
            else:
                arrays[f"c{i}"] = self.categorical[name].counts
        buffer = io.BytesIO()
        np.savez(buffer, allow_pickle=False, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        """Read a profile written by `to_bytes`."""
        try:
            archive = np.load(io.BytesIO(data), allow_pickle=False)
            meta = json.loads(bytes(archive["meta"]).decode())
        except (ValueError, KeyError, OSError) as exc:
            raise ProfileFormatError("bytes are not a driftline reference profile") from exc
        if meta.get("format") != PROFILE_FORMAT or meta.get("version") != PROFILE_VERSION:
            raise ProfileFormatError(
                f"profile version {meta.get('version')!r} is not {PROFILE_VERSION}"
            )
        kinds: dict[str, ColumnKind] = dict(meta["kinds"])
        numeric: dict[str, NumericProfile] = {}
        categorical: dict[str, CategoricalProfile] = {}
        for i, name in enumerate(kinds):
            if kinds[name] == "numeric":
                values = np.asarray(archive[f"n{i}"], dtype=np.float64)
                numeric[name] = NumericProfile.fit(values)
            else:
                counts = np.asarray(archive[f"c{i}"], dtype=np.int64)
                counts.setflags(write=False)
                categorical[name] = CategoricalProfile(tuple(meta["categorical"][name]), counts)
        return cls(kinds, numeric, categorical, int(meta["n_rows"]))
