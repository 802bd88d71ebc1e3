"""Column values as the tests see them: finite floats, or category counts keyed by string.

Missing values (None, NaN, pd.NA) are dropped per column before any test, and so
are infinite numbers (as Evidently does). Categories compare as strings, so the
integer 1 and the string "1" are one category (but the float 1.0 is "1.0").
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def numeric_values(values: Any) -> FloatArray:
    """Finite float64 values of a column; missing, non-numeric and infinite values dropped.

    Examples:
        >>> numeric_values(pd.Series([1, None, float("inf"), "2", "x"])).tolist()
        [1.0, 2.0]
        >>> numeric_values(pd.Series([1, 10**400, complex(1, 2), b"3"], dtype=object)).tolist()
        [1.0]
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        array = values.astype(np.float64, copy=False).ravel()
    else:
        series = values if isinstance(values, pd.Series) else pd.Series(values)
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            series = _to_numbers(series.astype(object))
        array = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(array)
    if finite.all():
        return array
    kept: FloatArray = array[finite]
    return kept


_PLAIN = frozenset({"string", "floating", "mixed-integer-float", "boolean", "empty", "decimal"})


def _real_or_text(value: Any) -> Any:
    """A value pandas can turn into a float without surprises, else None (dropped)."""
    if isinstance(value, str | bool | np.bool_ | float | np.floating | np.integer):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # an integer beyond the float range is not a finite number
            return None
    return None  # complex, bytes, containers...: not numbers (pandas would keep real parts)


def _to_numbers(values: pd.Series) -> pd.Series:
    """Floats of an object column: numbers and numeric text; everything else NaN."""
    if pd.api.types.infer_dtype(values, skipna=True) not in _PLAIN:
        values = values.map(_real_or_text, na_action="ignore")
    return pd.to_numeric(values, errors="coerce")


# Above this many distinct objects per row, grouping by identity no longer pays.
_MAX_IDENTITY_SHARE = 0.1
# Objects sampled (evenly spaced) to find a column's distinct objects.
_SAMPLE = 2048
# With at most this many distinct objects, one comparison pass per object beats hashing.
_MAX_COMPARED = 16


def _counts_by_identity(array: npt.NDArray[np.object_]) -> dict[str, int] | None:
    """Counts of the strings of an object array, grouped by object identity first.

    pandas hashes and compares every element of an object column (~130 ns each, holding
    the GIL), but the usual readers (pyarrow, pandas' CSV parser) store each distinct
    string once: grouping the object pointers that numpy stores as integer keys and
    merging the few distinct objects by value gives the same counts, ten times faster.
    The distinct objects of an evenly spaced sample are counted by one comparison pass
    each (~0.3 ns a row) when they are few and cover every row; otherwise the pointers are
    hashed (~10 ns a row). None (count with pandas instead) when an object is neither a
    string nor missing, or when there are too many distinct objects for this to pay.
    """
    if array.size == 0:
        return {}
    array = np.ascontiguousarray(array)
    # The PyObject pointers, read in place while `array` holds its references; nothing
    # read from them outlives this call.
    pointers = np.ctypeslib.as_array(
        (ctypes.c_size_t * array.size).from_address(array.ctypes.data))
    step = max(1, array.size // _SAMPLE)
    sample = pointers[::step]
    seen, where = np.unique(sample, return_index=True)
    if sample.size >= 100 and seen.size > sample.size // 2:
        return None  # mostly distinct objects (strings decoded one by one, or an ID column)
    objects: list[Any] = []
    counts: list[int] = []
    if seen.size <= _MAX_COMPARED:
        counts = [int(np.count_nonzero(pointers == pointer)) for pointer in seen.tolist()]
        objects = array[::step][where].tolist()
    if sum(counts) != array.size:  # objects the sample missed: hash every pointer
        codes, distinct = pd.factorize(pointers)
        if distinct.size > max(1000, array.size * _MAX_IDENTITY_SHARE):
            return None
        counts = np.bincount(codes, minlength=distinct.size).tolist()
        # factorize numbers objects in order of first appearance: the running maximum of
        # the codes rises exactly at each object's first row.
        firsts = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
        objects = array[firsts].tolist()
    merged: dict[str, int] = {}
    for item, count in zip(objects, counts, strict=True):
        if type(item) is str or type(item) is np.str_:
            merged[str(item)] = merged.get(str(item), 0) + count
        elif not (pd.api.types.is_scalar(item) and pd.isna(item)):
            return None  # numbers, bytes...: pandas' equality rules (1 == 1.0) apply
    return merged


def text_counts(values: Any) -> tuple[tuple[str, ...], IntArray] | None:
    """`category_counts` of an object column whose present values are all text, else None.

    Such a column is categorical through and through: its counts also say whether any
    value is present, so the drift run needs no separate pass for missing values or kinds.

    Examples:
        >>> text_counts(pd.Series(["b", None, "a", "b"]))
        (('a', 'b'), array([1, 2]))
        >>> text_counts(pd.Series(["b", 1])) is None
        True
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    if series.dtype != object:
        return None
    by_identity = _counts_by_identity(series.to_numpy())
    if by_identity is None:
        return None
    names = tuple(sorted(by_identity))
    return names, np.array([by_identity[c] for c in names], dtype=np.int64)


def category_counts(values: Any) -> tuple[tuple[str, ...], IntArray]:
    """Sorted categories (as strings) and their counts, missing values dropped.

    Hash-based counting first (by object identity for columns of strings, see
    `_counts_by_identity`), string conversion only of the distinct values, so a
    100k-row window costs a few milliseconds.

    Examples:
        >>> category_counts(["b", "a", None, 1, "1", float("nan")])
        (('1', 'a', 'b'), array([2, 1, 1]))
        >>> category_counts(["b", "a", None, "b", float("nan")])
        (('a', 'b'), array([1, 2]))
        >>> category_counts(pd.Categorical(["a"], categories=["a", "unused"]))
        (('a',), array([1]))
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    text = text_counts(series)
    if text is not None:
        return text
    counted = series.value_counts(dropna=True, sort=False)
    # A pandas Categorical also lists its unused categories, with count 0.
    counted = counted[counted.to_numpy() > 0]
    merged: dict[str, int] = {}
    for key, count in zip(counted.index.tolist(), counted.to_numpy().tolist(), strict=True):
        name = str(key)
        merged[name] = merged.get(name, 0) + int(count)
    categories = tuple(sorted(merged))
    counts = np.array([merged[c] for c in categories], dtype=np.int64)
    return categories, counts


@dataclass(frozen=True)
class NumericWindow:
    """The current window's finite values of one numeric column."""

    values: FloatArray
    _sorted: list[FloatArray] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def of(cls, values: Any) -> NumericWindow:
        """Extract the finite values of a raw column."""
        return cls(numeric_values(values))

    @property
    def n(self) -> int:
        """Number of usable values."""
        return int(self.values.size)

    @property
    def sorted(self) -> FloatArray:
        """The values sorted ascending (computed once)."""
        if not self._sorted:
            self._sorted.append(np.sort(self.values))
        return self._sorted[0]

    def levels(self) -> tuple[FloatArray, IntArray]:
        """Distinct values and their counts."""
        data = self.sorted
        if data.size == 0:
            return data, np.zeros(0, dtype=np.int64)
        changes = data[1:] != data[:-1]
        if changes.all():  # no ties, as in most continuous windows: every value once
            return data, np.ones(data.size, dtype=np.int64)
        starts = np.flatnonzero(np.concatenate(([True], changes)))
        counts = np.diff(np.append(starts, data.size)).astype(np.int64)
        return data[starts], counts


@dataclass(frozen=True)
class CategoricalWindow:
    """The current window's category counts of one column."""

    categories: tuple[str, ...]
    counts: IntArray

    @classmethod
    def of(cls, values: Any) -> CategoricalWindow:
        """Count the categories of a raw column."""
        return cls(*category_counts(values))

    @property
    def n(self) -> int:
        """Number of non-missing values."""
        return int(self.counts.sum())


Window = NumericWindow | CategoricalWindow


def _wrong_kind_count(
    kind: str, series: pd.Series, reference_numeric_like: bool
) -> tuple[int, int]:
    """(non-missing values, values of the other kind) of a window column."""
    present = series.notna()
    n_present = int(present.sum())
    if n_present == 0:
        return 0, 0
    if pd.api.types.is_bool_dtype(series):
        return n_present, (n_present if kind == "numeric" else 0)
    if pd.api.types.is_numeric_dtype(series):
        wrong = 0 if kind == "numeric" or reference_numeric_like else n_present
        return n_present, wrong
    values = series[present].astype(object)
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if kind == "categorical":
        if reference_numeric_like or inferred in {"string", "boolean", "bytes"}:
            return n_present, 0
        if inferred in {"integer", "floating", "mixed-integer-float", "decimal"}:
            return n_present, n_present
        numbers = values.map(lambda v: isinstance(v, int | float | np.number)
                             and not isinstance(v, bool | np.bool_))
        return n_present, int(numbers.sum())
    if inferred in {"integer", "floating", "mixed-integer-float", "decimal"}:
        return n_present, 0
    booleans = values.map(lambda v: isinstance(v, bool | np.bool_))
    parsed = pd.to_numeric(values.where(~booleans, None), errors="coerce")
    return n_present, int((parsed.isna() | booleans).sum())


def kind_mismatch(kind: str, values: Any, reference_categories: tuple[str, ...] = ()) -> bool:
    """Whether most (more than half) of a window column's values are of the other kind.

    Numeric columns: text that does not parse as a number, and booleans, are of the other
    kind (strings such as "2.5" are numbers, as `numeric_values` reads them). Categorical
    columns: numbers are of the other kind, unless every reference category is itself a
    number written as text (integer codes compare as strings, so 1 and "1" are one
    category). A minority of odd values is a data-quality matter, not a change of kind.

    Examples:
        >>> kind_mismatch("numeric", pd.Series(["a", "b", 1.0]))
        True
        >>> kind_mismatch("numeric", pd.Series(["1.5", "2", None]))
        False
        >>> kind_mismatch("categorical", pd.Series([1, 2, 3]), ("DE", "FR"))
        True
        >>> kind_mismatch("categorical", pd.Series([1, 2, 3]), ("1", "2"))
        False
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    numeric_like = bool(reference_categories) and bool(
        pd.to_numeric(pd.Series(reference_categories, dtype=object), errors="coerce").notna().all()
    )
    n_present, wrong = _wrong_kind_count(kind, series, numeric_like)
    return n_present > 0 and 2 * wrong > n_present
