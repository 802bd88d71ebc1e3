"""The reference profile: what every later window needs, fitted once, never mutated."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from detectors.columns import FloatArray, IntArray, category_counts, numeric_values
from detectors.errors import ProfileFormatError, SchemaError
from detectors.parallel import column_map
from detectors.report import ColumnKind

PROFILE_FORMAT = "driftline.profile"
PROFILE_VERSION = 1

# Distinct values and counts are kept for columns with at most this many (the
# chi-square family and Evidently's binning treat such numeric columns as categories).
MAX_LEVELS = 1000

# Guards the one-time store of a profile's lazily computed arrays (columns run on threads).
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class NumericProfile:
    """A numeric reference column: sorted finite values and what windows derive from them.

    `mean` is the mean of the values, also when their sum overflows the float range
    (then computed on values scaled by the largest magnitude); `center` is that same mean,
    where the Wasserstein arithmetic centres the values, for precision (`centred_sums`).
    """

    values: FloatArray
    mean: float
    std: float
    n_unique: int
    center: float
    levels: FloatArray
    level_counts: IntArray
    _centred_sums: list[FloatArray] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def fit(cls, values: Any) -> NumericProfile:
        """Fit from raw column values.

        Examples:
            >>> profile = NumericProfile.fit([3.0, 1.0, None, 1.0])
            >>> profile.values.tolist(), profile.n_unique, profile.levels.tolist()
            ([1.0, 1.0, 3.0], 2, [1.0, 3.0])
        """
        return cls._fit_sorted(np.sort(numeric_values(values)))

    @classmethod
    def from_sorted(cls, values: Any) -> NumericProfile:
        """Fit from values stored sorted (as `to_bytes` writes them); checked, not trusted."""
        array = numeric_values(values)
        if array.size > 1 and not bool(np.all(array[1:] >= array[:-1])):
            array = np.sort(array)
        return cls._fit_sorted(array.copy())

    @classmethod
    def _fit_sorted(cls, array: FloatArray) -> NumericProfile:
        # `array`: finite, sorted, owned by the profile from here on (made read-only).
        array.setflags(write=False)
        empty = np.zeros(0)
        if array.size == 0:
            return cls(array, 0.0, 0.0, 0, 0.0, empty, np.zeros(0, np.int64))
        with np.errstate(all="ignore"):
            mean = float(array.mean())
            if not np.isfinite(mean):
                # Values near the float maximum overflow the sum, never the mean itself:
                # average the values scaled to [-1, 1], then scale back.
                scale = max(abs(float(array[0])), abs(float(array[-1])))
                mean = float(np.mean(array / scale) * scale)
            centred = array - mean
            # einsum, not dot: BLAS would start its own threads inside our column threads.
            std = float(np.sqrt(np.einsum("i,i->", centred, centred) / array.size))
            if not np.isfinite(std):
                spread = float(array[-1] - array[0])
                std = spread if np.isfinite(spread) else 0.0
        changes = array[1:] != array[:-1]
        n_unique = int(np.count_nonzero(changes)) + 1
        if n_unique <= MAX_LEVELS:
            starts = np.concatenate(([0], np.flatnonzero(changes) + 1))
            levels = array[starts]
            level_counts = np.diff(np.append(starts, array.size)).astype(np.int64)
        else:
            levels, level_counts = empty, np.zeros(0, np.int64)
        for part in (levels, level_counts):
            part.setflags(write=False)
        return cls(array, mean, std, n_unique, mean, levels, level_counts)

    @property
    def n(self) -> int:
        """Number of usable reference values."""
        return int(self.values.size)

    def centred_sums(self) -> FloatArray:
        """Prefix sums of the values less `center`: n + 1 of them, from 0 (made once).

        The sum of the reference values over any stretch of ranks is then the difference
        of two of them, so a window's Wasserstein distance costs O(m log n), not a pass over
        the whole reference. They double the column's memory, so they are made on the first
        call (by the Wasserstein distance of a window under a fiftieth of the reference's
        size) and kept with the profile, which the service keeps for every window.

        Examples:
            >>> NumericProfile.fit([1.0, 2.0, 6.0]).centred_sums().tolist()
            [0.0, -2.0, -3.0, 0.0]
        """
        if self._centred_sums:
            return self._centred_sums[0]
        sums = np.empty(self.values.size + 1)
        sums[0] = 0.0
        with np.errstate(all="ignore"):  # near the float maximum: inf, then no statistic
            np.subtract(self.values, self.center, out=sums[1:])
            np.cumsum(sums[1:], out=sums[1:])
        sums.setflags(write=False)
        with _CACHE_LOCK:
            if not self._centred_sums:
                self._centred_sums.append(sums)
        return self._centred_sums[0]


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    """A categorical reference column: categories (sorted strings) and their counts."""

    categories: tuple[str, ...]
    counts: IntArray

    @classmethod
    def fit(cls, values: Any) -> CategoricalProfile:
        """Fit from raw column values.

        Examples:
            >>> CategoricalProfile.fit(["b", "a", "b", None]).categories
            ('a', 'b')
        """
        categories, counts = category_counts(values)
        counts.setflags(write=False)
        return cls(categories, counts)

    @property
    def n(self) -> int:
        """Number of non-missing reference values."""
        return int(self.counts.sum())

    @property
    def n_unique(self) -> int:
        """Number of distinct categories."""
        return len(self.categories)

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
        # Column names are strings in the profile (JSON); frames may use other labels.
        by_name = {str(c): c for c in reference.columns}
        if schema is None:
            kinds: dict[str, ColumnKind] = {str(c): infer_kind(reference[c]) for c in reference}
        else:
            missing = [c for c in schema if c not in by_name]
            if missing:
                raise SchemaError(f"schema names columns the reference lacks: {missing}")
            kinds = {}
            for name, kind in schema.items():
                if kind not in ("numeric", "categorical"):
                    raise SchemaError(f"column {name!r}: kind must be numeric or categorical, "
                                     f"got {kind!r}")
                kinds[name] = kind  # type: ignore[assignment]
        names = list(kinds)

        def fit_one(name: str) -> ColumnProfile:
            if kinds[name] == "numeric":
                return NumericProfile.fit(reference[by_name[name]])
            return CategoricalProfile.fit(reference[by_name[name]])

        fitted = dict(zip(names, column_map(fit_one, names), strict=True))
        numeric = {c: p for c, p in fitted.items() if isinstance(p, NumericProfile)}
        categorical = {c: p for c, p in fitted.items() if isinstance(p, CategoricalProfile)}
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
        """Read a profile written by `to_bytes`.

        Raises:
            ProfileFormatError: the bytes are not a profile, are damaged, or come from
                another format version.
        """
        try:
            archive = np.load(io.BytesIO(data), allow_pickle=False)
            meta = json.loads(bytes(archive["meta"]).decode())
            if meta.get("format") != PROFILE_FORMAT:
                raise ProfileFormatError("bytes are not a driftline reference profile")
            if meta.get("version") != PROFILE_VERSION:
                raise ProfileFormatError(
                    f"profile format version {meta.get('version')!r} is not {PROFILE_VERSION}; "
                    "fit the profile again from the reference data"
                )
            kinds: dict[str, ColumnKind] = dict(meta["kinds"])
            numeric: dict[str, NumericProfile] = {}
            categorical: dict[str, CategoricalProfile] = {}
            for i, name in enumerate(kinds):
                if kinds[name] == "numeric":
                    values = np.asarray(archive[f"n{i}"], dtype=np.float64)
                    numeric[name] = NumericProfile.from_sorted(values)
                elif kinds[name] == "categorical":
                    counts = np.asarray(archive[f"c{i}"], dtype=np.int64)
                    names = tuple(str(c) for c in meta["categorical"][name])
                    if counts.shape != (len(names),) or np.any(counts < 0):
                        raise ProfileFormatError(f"column {name!r}: damaged category counts")
                    counts.setflags(write=False)
                    categorical[name] = CategoricalProfile(names, counts)
                else:
                    raise ProfileFormatError(f"column {name!r}: unknown kind {kinds[name]!r}")
            return cls(kinds, numeric, categorical, int(meta["n_rows"]))
        except ProfileFormatError:
            raise
        except (ValueError, KeyError, OSError, TypeError, AttributeError, EOFError,
                zipfile.BadZipFile) as exc:
            raise ProfileFormatError("bytes are not a driftline reference profile") from exc
