"""Data quality of a window against the reference profile: what is missing, malformed or new.

For each expected feature, every row of the window lands in exactly one class, taken in
this order (so the counts add up to the number of rows):

1. absent: the event did not carry the feature (`absent[name]` is True for the row, or
   the window has no column for the feature at all).
2. null: carried as null, or NaN (`pandas.isna`: None, NaN, pd.NA, NaT). NaN is null,
   not non-finite: a float column cannot tell the two apart, and JSON has no NaN.
3. type mismatch: a value of the other kind. Numeric features: a bool, text that
   `pandas.to_numeric` (the parser drift uses) does not read as a number (so "2.5" and
   "inf" are numbers, and "abc", "", "nan" and "1e999" are mismatches), or any other
   non-number (dict, list, bytes, complex, timestamp...). Categorical features: a dict,
   list or other non-scalar, and a number unless every reference category is a number
   written as text (integer codes: categories compare as strings, so 1 and "1" are one
   category). Booleans and text are categories. This is the per-value rule of drift's
   `type_mismatch` (which drift applies to the majority of a column).
4. non-finite (numeric only): +-inf, as a number or as text ("inf"), or a number too
   large for a float64 (a Python int of 400 digits). Drift drops these values.
5. out of range (numeric only): a finite value below the reference minimum or above the
   reference maximum (never, when the reference has no finite values).
6. new category (categorical only): a value whose category string, as
   `detectors.columns.category_counts` names it for drift, is not a reference category.
7. valid: everything else.

Per window: an unknown column is a field the events carried that no expected feature
names (its count is the number of events carrying it); a missing column is an expected
feature without a single non-null value in a non-empty window (status `missing`).
"""

from __future__ import annotations

import decimal
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from detectors.columns import FloatArray, category_counts
from detectors.errors import QualityOptionsError, SchemaError
from detectors.parallel import column_map
from detectors.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from detectors.report import ColumnKind

BoolArray = npt.NDArray[np.bool_]
QualityStatus = Literal["ok", "missing", "type_mismatch"]
QualityCheck = Literal["missing_share", "type_mismatch_share", "non_finite_share",
                       "out_of_range_share", "new_category_share"]
CHECKS: tuple[QualityCheck, ...] = ("missing_share", "type_mismatch_share", "non_finite_share",
                                    "out_of_range_share", "new_category_share")


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """The highest share of rows each check accepts per feature; None leaves it unchecked.

    A share above its threshold is a breach (so 0.0 refuses every occurrence).

    Raises:
        QualityOptionsError: a threshold is not a number in [0, 1].

    Examples:
        >>> QualityThresholds(missing_share=0.1).missing_share
        0.1
        >>> QualityThresholds(out_of_range_share=1.5)
        Traceback (most recent call last):
        ...
        detectors.errors.QualityOptionsError: data-quality threshold out_of_range_share \
must be a share in [0, 1] or None, got 1.5
    """

    missing_share: float | None = None
    type_mismatch_share: float | None = None
    non_finite_share: float | None = None
    out_of_range_share: float | None = None
    new_category_share: float | None = None

    def __post_init__(self) -> None:
        for option in fields(self):
            value = getattr(self, option.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                    not 0 <= float(value) <= 1:
                raise QualityOptionsError(
                    f"data-quality threshold {option.name} must be a share in [0, 1] or None, "
                    f"got {value!r}"
                )
            object.__setattr__(self, option.name, float(value))

    def of(self, check: QualityCheck) -> float | None:
        """The threshold of `check` (None: not checked)."""
        value: float | None = getattr(self, check)
        return value

    def to_dict(self) -> dict[str, float | None]:
        """Check name to threshold."""
        return {check: self.of(check) for check in CHECKS}


@dataclass(frozen=True, slots=True)
class FeatureQuality:
    """Counts of one feature's rows by class (see the module docstring); shares over `n_rows`.

    Examples:
        >>> quality = FeatureQuality("numeric", n_rows=4, n_null=1, n_type_mismatch=2)
        >>> quality.missing_share, quality.type_mismatch_share, quality.status
        (0.25, 0.5, 'type_mismatch')
    """

    kind: ColumnKind
    n_rows: int
    n_absent: int = 0
    n_null: int = 0
    n_type_mismatch: int = 0
    n_non_finite: int = 0
    n_out_of_range: int = 0
    n_new_category: int = 0

    @property
    def n_missing(self) -> int:
        """Rows without a value: absent or null."""
        return self.n_absent + self.n_null

    @property
    def n_present(self) -> int:
        """Rows with a non-null value, of any class."""
        return self.n_rows - self.n_missing

    def share(self, check: QualityCheck) -> float:
        """The share of rows `check` counts (0.0 in an empty window, never NaN)."""
        count = {"missing_share": self.n_missing, "type_mismatch_share": self.n_type_mismatch,
                 "non_finite_share": self.n_non_finite, "out_of_range_share": self.n_out_of_range,
                 "new_category_share": self.n_new_category}[check]
        return count / self.n_rows if self.n_rows else 0.0

    @property
    def missing_share(self) -> float:
        """Share of rows absent or null."""
        return self.share("missing_share")

    @property
    def type_mismatch_share(self) -> float:
        """Share of rows with a value of the other kind."""
        return self.share("type_mismatch_share")

    @property
    def non_finite_share(self) -> float:
        """Share of rows with an infinite number (numeric features)."""
        return self.share("non_finite_share")

    @property
    def out_of_range_share(self) -> float:
        """Share of rows outside the reference's [min, max] (numeric features)."""
        return self.share("out_of_range_share")

    @property
    def new_category_share(self) -> float:
        """Share of rows with a category the reference lacks (categorical features)."""
        return self.share("new_category_share")

    @property
    def status(self) -> QualityStatus:
        """`missing`, `type_mismatch` or `ok`.

        `missing` when no row of a non-empty window has a value; `type_mismatch` when more
        than half of the values are of the other kind (drift's rule: a minority is a
        data-quality matter, not a change of kind).
        """
        if self.n_rows > 0 and self.n_present == 0:
            return "missing"
        if 2 * self.n_type_mismatch > self.n_present:
            return "type_mismatch"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        """The feature's entry in the `data_quality` JSON."""
        return {
            "kind": self.kind,
            "status": self.status,
            **{check: self.share(check) for check in CHECKS},
            "n_absent": self.n_absent,
            "n_null": self.n_null,
            "n_missing": self.n_missing,
            "n_type_mismatch": self.n_type_mismatch,
            "n_non_finite": self.n_non_finite,
            "n_out_of_range": self.n_out_of_range,
            "n_new_category": self.n_new_category,
        }


@dataclass(frozen=True, slots=True)
class QualityBreach:
    """One feature's share above the threshold of one check."""

    feature: str
    check: QualityCheck
    value: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        """JSON object of the breach."""
        return {"feature": self.feature, "check": self.check, "value": self.value,
                "threshold": self.threshold}


@dataclass(frozen=True)
class QualityReport:
    """Data quality of one window: per expected feature, and the window's unknown fields.

    `unknown_column_counts` maps each unknown field to the number of events that
    carried it. Missing columns, type-mismatched features and breaches derive from the
    counts, so they cannot disagree with them.
    """

    n_rows: int
    features: Mapping[str, FeatureQuality]
    unknown_column_counts: Mapping[str, int]
    thresholds: QualityThresholds

    @property
    def unknown_columns(self) -> tuple[str, ...]:
        """Fields the events carried that no expected feature names, sorted."""
        return tuple(sorted(self.unknown_column_counts))

    @property
    def missing_columns(self) -> tuple[str, ...]:
        """Expected features with status `missing`, in expected order."""
        return tuple(name for name, f in self.features.items() if f.status == "missing")

    @property
    def type_mismatch_columns(self) -> tuple[str, ...]:
        """Expected features with status `type_mismatch`, in expected order."""
        return tuple(name for name, f in self.features.items() if f.status == "type_mismatch")

    @property
    def breaches(self) -> tuple[QualityBreach, ...]:
        """Every share above its threshold, by feature (expected order), then check."""
        found = []
        for name, feature in self.features.items():
            for check in CHECKS:
                threshold = self.thresholds.of(check)
                if threshold is not None and feature.share(check) > threshold:
                    found.append(QualityBreach(name, check, feature.share(check), threshold))
        return tuple(found)

    def to_dict(self) -> dict[str, Any]:
        """The `data_quality` JSON object (finite numbers only)."""
        return {
            "n_rows": self.n_rows,
            "features": {name: f.to_dict() for name, f in self.features.items()},
            "unknown_columns": list(self.unknown_columns),
            "unknown_column_counts": {c: self.unknown_column_counts[c]
                                      for c in self.unknown_columns},
            "missing_columns": list(self.missing_columns),
            "type_mismatch_columns": list(self.type_mismatch_columns),
            "thresholds": self.thresholds.to_dict(),
            "breaches": [b.to_dict() for b in self.breaches],
        }


# Classes of a value's Python type, decided once per distinct type in a column.
_OK, _NUMBER, _TEXT, _WRONG = 0, 1, 2, 3
_type_of = np.frompyfunc(type, 1, 1)
_MAX_PEELED_TYPES = 8
# infer_dtype results (skipna) that guarantee every non-null value is of one class.
_ALL_NUMBERS = frozenset({"integer", "floating", "mixed-integer-float", "decimal"})
_ALL_SCALAR_NON_NUMBERS = frozenset({"string", "boolean", "bytes", "empty", "datetime",
                                     "datetime64", "date", "time", "timedelta",
                                     "timedelta64", "period", "interval"})


def _numeric_type_class(kind: type) -> int:
    if issubclass(kind, bool | np.bool_):
        return _WRONG
    if issubclass(kind, str):
        return _TEXT
    if issubclass(kind, numbers.Real | decimal.Decimal):
        return _NUMBER
    return _WRONG


def _categorical_type_class(kind: type, sample: Any) -> int:
    if issubclass(kind, bool | np.bool_ | str):
        return _OK
    if issubclass(kind, numbers.Number | decimal.Decimal):
        return _NUMBER
    return _OK if pd.api.types.is_scalar(sample) else _WRONG


def _type_classes(array: npt.NDArray[np.object_],
                  classify: Callable[[type, Any], int]) -> npt.NDArray[np.int8]:
    """The class of every element, decided once per distinct Python type.

    A column holds a few types, most rows one of them: peeling off the rows of one type
    at a time compares type objects by identity (~7 ns a row, against ~50 ns to hash
    them with pandas.factorize), and after the first, commonest, type only the rest.
    Past `_MAX_PEELED_TYPES` types the remaining rows are factorized instead.
    """
    types = np.asarray(_type_of(array), dtype=object)
    classes = np.empty(array.size, np.int8)
    rest = np.arange(array.size)
    for _ in range(_MAX_PEELED_TYPES):
        if rest.size == 0:
            return classes
        kind = types[rest[0]]
        # Compared as a 0-d array: a class such as pd.NA's, which sets __array_ufunc__ to
        # None, would otherwise make numpy defer `types == kind` to the class.
        boxed = np.empty((), dtype=object)
        boxed[()] = kind
        same = types[rest] == boxed if rest.size < array.size else types == boxed
        classes[rest[same]] = classify(kind, array[rest[0]])
        rest = rest[~same]
    codes, kinds = pd.factorize(types[rest])
    # factorize numbers kinds by first appearance: the running maximum of the codes
    # rises exactly at each kind's first row (as in detectors.columns).
    firsts = np.flatnonzero(np.diff(np.maximum.accumulate(codes), prepend=-1) > 0)
    table = np.array([classify(kind, array[rest[first]])
                      for kind, first in zip(kinds, firsts, strict=True)], dtype=np.int8)
    classes[rest] = table[codes]
    return classes


def _as_floats(values: npt.NDArray[np.object_]) -> FloatArray:
    """Numbers as float64; one too large for a float64 becomes +-inf (counted non-finite)."""
    try:
        return values.astype(np.float64)
    except (OverflowError, ValueError, TypeError):
        return np.array([_float_or_inf(v) for v in values.tolist()], dtype=np.float64)


def _float_or_inf(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
    except (ValueError, TypeError):  # Decimal("sNaN") has no float
        return math.nan


def _numeric_cells(series: pd.Series) -> tuple[BoolArray, BoolArray, FloatArray]:
    """(null, type mismatch, float value or NaN) per row of a numeric feature's column."""
    dtype = series.dtype
    null: BoolArray = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype):
        return null, ~null, np.full(len(series), np.nan)
    if pd.api.types.is_numeric_dtype(dtype) and dtype.kind != "c":
        return null, np.zeros(len(series), bool), series.to_numpy(np.float64, na_value=np.nan)
    array = series.to_numpy(dtype=object)
    values = np.full(array.size, np.nan)
    inferred = pd.api.types.infer_dtype(array, skipna=True)
    if inferred in _ALL_NUMBERS:
        classes = np.full(array.size, _NUMBER, np.int8)
    elif inferred == "string":
        classes = np.full(array.size, _TEXT, np.int8)
    else:
        classes = _type_classes(array, lambda kind, _sample: _numeric_type_class(kind))
    mismatch = ~null & (classes == _WRONG)
    number = ~null & (classes == _NUMBER)
    if number.any():
        values[number] = _as_floats(array[number])
    text = ~null & (classes == _TEXT)
    if text.any():
        parsed = np.asarray(pd.to_numeric(array[text], errors="coerce"), dtype=np.float64)
        values[text] = parsed
        unread = np.flatnonzero(text)[np.isnan(parsed)]
        mismatch[unread] = True
    return null, mismatch, values


def _categorical_scan(series: pd.Series, numbers_are_categories: bool) -> str:
    """What a categorical feature's column can hold, from its dtype or one C-level scan.

    `clean`: no value can be a type mismatch; `numbers`: every value is a number (all
    mismatches unless numbers are categories); `mixed`: values must be classified.
    """
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or isinstance(dtype, pd.StringDtype):
        return "clean"
    if pd.api.types.is_numeric_dtype(dtype):
        inferred = "integer"
    else:
        inferred = pd.api.types.infer_dtype(series.to_numpy(dtype=object), skipna=True)
    if inferred in _ALL_SCALAR_NON_NUMBERS:
        return "clean"
    if inferred in _ALL_NUMBERS:
        return "clean" if numbers_are_categories else "numbers"
    return "mixed"


def _categorical_mismatch(series: pd.Series, numbers_are_categories: bool, scan: str,
                          null: BoolArray) -> BoolArray:
    """Type mismatches of a categorical feature's column (see `_categorical_scan`)."""
    if scan == "clean":
        return np.zeros(len(series), bool)
    if scan == "numbers":
        return ~null
    classes = _type_classes(series.to_numpy(dtype=object), _categorical_type_class)
    wrong = classes == _WRONG
    if not numbers_are_categories:
        wrong |= classes == _NUMBER
    mismatch: BoolArray = ~null & wrong
    return mismatch


def _absent_mask(name: str, given: npt.ArrayLike, n_rows: int) -> BoolArray:
    mask = np.asarray(given)
    if mask.dtype != np.bool_ or mask.shape != (n_rows,):
        raise QualityOptionsError(
            f"absent[{name!r}] must be a boolean array of one entry per window row "
            f"({n_rows}), got dtype {mask.dtype} and shape {mask.shape}"
        )
    return mask


def _count(mask: BoolArray) -> int:
    return int(np.count_nonzero(mask))


def _assess_numeric(reference: NumericProfile, column: pd.Series, absent: BoolArray | None
                    ) -> FeatureQuality:
    null, mismatch, values = _numeric_cells(column)
    n_absent = 0
    if absent is not None:
        # An absent row counts as absent whatever the frame holds there (usually null).
        n_absent = _count(absent)
        null &= ~absent
        mismatch &= ~absent
    number = ~(null | mismatch) if absent is None else ~(null | mismatch | absent)
    finite = np.isfinite(values)
    finite_number = number & finite
    n_out = 0
    if reference.n > 0:
        low, high = reference.values[0], reference.values[-1]
        n_out = _count(finite_number & ((values < low) | (values > high)))
    return FeatureQuality("numeric", len(column), n_absent=n_absent, n_null=_count(null),
                          n_type_mismatch=_count(mismatch),
                          n_non_finite=_count(number) - _count(finite_number),
                          n_out_of_range=n_out)


def _category_tally(column: pd.Series, known: frozenset[str]) -> tuple[int, int]:
    """(non-null values, values of a category not in `known`), counted as drift counts."""
    names, counts = category_counts(column)
    n_new = sum(int(c) for name, c in zip(names, counts, strict=True) if name not in known)
    return int(counts.sum()), n_new


def _assess_categorical(reference: CategoricalProfile, column: pd.Series,
                        absent: BoolArray | None) -> FeatureQuality:
    # Integer codes: every reference category reads as a number (drift's rule; without
    # reference categories nothing says numbers are wrong).
    codes = not reference.categories or bool(pd.to_numeric(
        pd.Series(reference.categories, dtype=object), errors="coerce").notna().all())
    known = frozenset(reference.categories)
    n_rows = len(column)
    scan = _categorical_scan(column, codes)
    if absent is None and scan == "clean":
        # The common case: nothing to take out before counting categories, and the nulls
        # are the rows category_counts drops (cheaper than isna on an object column).
        n_valid, n_new = _category_tally(column, known)
        return FeatureQuality("categorical", n_rows, n_null=n_rows - n_valid,
                              n_new_category=n_new)
    null: BoolArray = column.isna().to_numpy()
    mismatch = _categorical_mismatch(column, codes, scan, null)
    taken = null | mismatch
    n_absent = 0
    if absent is not None:
        # An absent row counts as absent whatever the frame holds there (usually null).
        n_absent = _count(absent)
        taken |= absent
        null &= ~absent
        mismatch &= ~absent
    _n_valid, n_new = _category_tally(column[~taken] if taken.any() else column, known)
    return FeatureQuality("categorical", n_rows, n_absent=n_absent, n_null=_count(null),
                          n_type_mismatch=_count(mismatch), n_new_category=n_new)


def assess_quality(
    profile: ReferenceProfile,
    window: pd.DataFrame,
    *,
    expected: Sequence[str] | None = None,
    absent: Mapping[str, npt.ArrayLike] | None = None,
    extra_columns: Mapping[str, int] | None = None,
    thresholds: QualityThresholds | None = None,
) -> QualityReport:
    """Count each expected feature's rows by class, and the window's unknown fields.

    Args:
        profile: The fitted reference; gives each feature's kind, range and categories.
        window: One row per event (`pd.DataFrame(index=range(n))` when no feature came);
            a column per expected feature that appeared. Columns no expected feature
            names are unknown fields, counted by their non-null values.
        expected: The configured features (default: every profiled column).
        absent: Per feature, True for the rows whose event lacked the field; without it,
            a row is absent only when the window has no column for the feature.
        extra_columns: Unknown fields seen in the events and how many events carried
            each (the collector knows); they take precedence over the window's columns.
        thresholds: Highest accepted share per check (default: nothing checked).

    Raises:
        SchemaError: `expected` names a feature the profile lacks.
        QualityOptionsError: an `absent` mask or `extra_columns` count does not fit the
            window, or the window repeats a column name.

    Examples:
        >>> reference = pd.DataFrame({"amount": [1.0, 5.0, 9.0], "country": ["DE", "FR", "DE"]})
        >>> window = pd.DataFrame({"amount": [2.0, None, 12.0, "abc"],
        ...                        "country": ["DE", "US", None, "FR"], "debug": [1, 2, 3, 4]})
        >>> report = assess_quality(ReferenceProfile.fit(reference), window,
        ...                         thresholds=QualityThresholds(out_of_range_share=0.1))
        >>> amount = report.features["amount"]
        >>> amount.n_null, amount.n_type_mismatch, amount.n_out_of_range
        (1, 1, 1)
        >>> report.features["country"].new_category_share, report.unknown_columns
        (0.25, ('debug',))
        >>> [(b.feature, b.check, b.value) for b in report.breaches]
        [('amount', 'out_of_range_share', 0.25)]
    """
    thresholds = thresholds or QualityThresholds()
    names = list(dict.fromkeys(profile.columns if expected is None else expected))
    unprofiled = [name for name in names if name not in profile.kinds]
    if unprofiled:
        raise SchemaError(f"expected features the reference profile lacks: {unprofiled}; "
                          "fit the profile on a reference that has them")
    by_name = {str(c): c for c in window.columns}
    if len(by_name) != window.shape[1]:
        labels = [str(c) for c in window.columns]
        repeated = sorted({c for c in labels if labels.count(c) > 1})
        raise QualityOptionsError(f"the window repeats the column names {repeated}")
    n_rows = len(window)
    masks = {name: _absent_mask(name, given, n_rows) for name, given in (absent or {}).items()}
    strangers = sorted(set(masks) - set(names))
    if strangers:
        raise QualityOptionsError(f"absent names features that are not expected: {strangers}")
    extra = dict(extra_columns or {})
    for name, count in extra.items():
        if name in names:
            raise QualityOptionsError(f"extra_columns names the expected feature {name!r}")
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or \
                not 0 <= count <= n_rows:
            raise QualityOptionsError(f"extra_columns[{name!r}] must be an event count in "
                                      f"[0, {n_rows}], got {count!r}")

    def one(name: str) -> FeatureQuality:
        kind = profile.kinds[name]
        if name not in by_name:
            return FeatureQuality(kind, n_rows, n_absent=n_rows)
        column = window[by_name[name]]
        if kind == "numeric":
            return _assess_numeric(profile.numeric[name], column, masks.get(name))
        return _assess_categorical(profile.categorical[name], column, masks.get(name))

    features = dict(zip(names, column_map(one, names), strict=True))
    unknown = {name: int(window[label].notna().sum()) for name, label in by_name.items()
               if name not in features}
    unknown.update((name, int(count)) for name, count in extra.items())
    return QualityReport(n_rows, features, {c: n for c, n in sorted(unknown.items()) if n},
                         thresholds)
