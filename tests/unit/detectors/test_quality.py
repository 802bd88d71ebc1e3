"""Data quality: every kind of problem counted exactly, against row-by-row counts."""

from __future__ import annotations

import decimal
import json
import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest

from detectors.columns import kind_mismatch
from detectors.errors import DetectorError, QualityOptionsError, SchemaError
from detectors.profile import ReferenceProfile
from detectors.quality import (
    CHECKS,
    FeatureQuality,
    QualityBreach,
    QualityReport,
    QualityThresholds,
    assess_quality,
)

SCHEMA = {"amount": "numeric", "country": "categorical", "plan": "categorical",
          "score": "numeric"}


@pytest.fixture
def profile() -> ReferenceProfile:
    # amount in [0, 100]; country text categories; plan integer codes (categories "1".."3").
    reference = pd.DataFrame({
        "amount": np.linspace(0.0, 100.0, 201),
        "country": (["DE", "FR", "US"] * 67)[:201],
        "plan": ([1, 2, 3] * 67)[:201],
        "score": np.linspace(-1.0, 1.0, 201),
    })
    return ReferenceProfile.fit(reference, SCHEMA)


def _objects(*values: Any) -> pd.Series:
    """An object column holding exactly `values` (lists and dicts kept as elements)."""
    array = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        array[i] = value
    return pd.Series(array, dtype=object)


def _counts(quality: FeatureQuality) -> dict[str, int]:
    return {"absent": quality.n_absent, "null": quality.n_null,
            "type_mismatch": quality.n_type_mismatch, "non_finite": quality.n_non_finite,
            "out_of_range": quality.n_out_of_range, "new_category": quality.n_new_category}


def _json(report: QualityReport) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    return loaded


# Row-by-row reference implementation of the module docstring's rules, in plain Python.

def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and math.isnan(value))


def _numeric_class(value: Any, absent: bool, low: float, high: float) -> str:
    if absent:
        return "absent"
    if _is_null(value):
        return "null"
    if isinstance(value, bool) or not isinstance(value, int | float | np.number | str):
        return "type_mismatch"
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return "type_mismatch"
        if math.isnan(number):
            return "type_mismatch"
    else:
        try:
            number = float(value)
        except OverflowError:
            return "non_finite"
    if not math.isfinite(number):
        return "non_finite"
    return "out_of_range" if number < low or number > high else "valid"


def _categorical_class(value: Any, absent: bool, categories: tuple[str, ...]) -> str:
    if absent:
        return "absent"
    if _is_null(value):
        return "null"
    integer_codes = all(c.lstrip("-").isdigit() for c in categories)
    if isinstance(value, dict | list):
        return "type_mismatch"
    if isinstance(value, int | float) and not isinstance(value, bool) and not integer_codes:
        return "type_mismatch"
    return "valid" if str(value) in categories else "new_category"


def test_each_kind_is_counted_exactly_on_a_hand_built_frame(profile: ReferenceProfile) -> None:
    window = pd.DataFrame({
        "amount": _objects(
            None,                       # absent (mask), frame holds null
            None, np.nan, pd.NA,        # null x3
            "abc", True, {"a": 1}, [1], "",  # type mismatch x5
            math.inf, "-inf", 10**400,  # non-finite x3
            -0.5, 100.5, "150",         # out of range x3
            0, 100, "50", np.int64(7), decimal.Decimal("2.5"), 42.0,  # valid x6
        ),
        "country": _objects(
            None,
            None, np.nan, pd.NA,
            {"a": 1}, [1], 3.5, 7,      # mismatch x4: containers, numbers where text was
            "XX", "de", "YY",           # new x3 (categories compare exactly)
            True,                       # new: "True" (booleans are categories)
            "DE", "FR", "US", "DE", "FR", "US", "DE", "FR", "US",
        ),
    })
    absent = np.zeros(21, bool)
    absent[0] = True
    report = assess_quality(profile, window, expected=["amount", "country", "score"],
                            absent={"amount": absent, "country": absent},
                            extra_columns={"debug": 4})
    assert _counts(report.features["amount"]) == {
        "absent": 1, "null": 3, "type_mismatch": 5, "non_finite": 3, "out_of_range": 3,
        "new_category": 0}
    assert _counts(report.features["country"]) == {
        "absent": 1, "null": 3, "type_mismatch": 4, "non_finite": 0, "out_of_range": 0,
        "new_category": 4}
    assert report.features["amount"].missing_share == pytest.approx(4 / 21)
    assert report.features["score"].n_absent == 21
    assert report.missing_columns == ("score",)
    assert report.unknown_column_counts == {"debug": 4}
    assert report.n_rows == 21


def test_a_seeded_window_of_1000_events_counts_every_injected_problem(
        profile: ReferenceProfile, rng: np.random.Generator) -> None:
    n = 1000
    order = rng.permutation(n)
    # Disjoint row sets per feature: (kind, number of rows, values to draw from).
    plans: dict[str, list[tuple[str, int, list[Any]]]] = {
        "amount": [("absent", 41, [None]), ("null", 37, [None, np.nan]),
                   ("type_mismatch", 29, ["abc", "", True, False, {"k": 1}, [1, 2]]),
                   ("non_finite", 23, [math.inf, -math.inf, "inf", "-Infinity"]),
                   ("out_of_range", 19, [-3.0, 250.0, "1e6", -1])],
        "country": [("absent", 13, [None]), ("null", 31, [None, np.nan]),
                    ("type_mismatch", 17, [{"k": 1}, [1], 2.5, 9]),
                    ("new_category", 43, ["XX", "YY", "de", False])],
        "plan": [("absent", 11, [None]), ("null", 7, [None]),
                 ("type_mismatch", 5, [{"k": 1}, ["a"]]),
                 ("new_category", 27, [7, "9", 1.5])],
    }
    columns: dict[str, np.ndarray] = {}
    absent: dict[str, np.ndarray] = {}
    injected: dict[str, Counter[str]] = {}
    valid_pools: dict[str, list[Any]] = {
        "amount": [0.0, 100.0, 50, "12.5", np.float32(3.5), np.int64(80)],
        "country": ["DE", "FR", "US"], "plan": [1, 2, 3, "1", "2", "3"]}
    for name, plan in plans.items():
        values = np.empty(n, dtype=object)
        pool = valid_pools[name]
        for row in range(n):
            values[row] = pool[rng.integers(len(pool))]
        mask = np.zeros(n, bool)
        start = 0
        injected[name] = Counter()
        for kind, count, pool in plan:
            for row in order[start:start + count]:
                values[row] = pool[rng.integers(len(pool))]
                mask[row] = kind == "absent"
            injected[name][kind] = count
            start += count
        columns[name] = values
        absent[name] = mask
        order = rng.permutation(n)
    session = np.full(n, None, dtype=object)
    session[rng.choice(n, 23, replace=False)] = "s-1"
    window = pd.DataFrame({**columns, "session": session})

    report = assess_quality(profile, window, absent=absent, extra_columns={"debug": 17})

    low, high = 0.0, 100.0
    categories = {name: profile.categorical[name].categories for name in ("country", "plan")}
    for name in plans:
        expected: Counter[str] = Counter()
        for row in range(n):
            value, is_absent = columns[name][row], bool(absent[name][row])
            if name == "amount":
                expected[_numeric_class(value, is_absent, low, high)] += 1
            else:
                expected[_categorical_class(value, is_absent, categories[name])] += 1
        del expected["valid"]
        assert expected == injected[name], name
        found = {k: v for k, v in _counts(report.features[name]).items() if v}
        assert found == dict(expected), name
    # The seventh kind, per window: fields no configured feature names; and the missing one.
    assert report.unknown_column_counts == {"debug": 17, "session": 23}
    assert report.missing_columns == ("score",)
    assert report.features["score"].status == "missing"
    assert all(report.features[name].status == "ok" for name in plans)
    data = _json(report)
    assert data["features"]["amount"]["n_type_mismatch"] == 29
    assert data["features"]["amount"]["type_mismatch_share"] == 0.029


def test_nan_is_null_and_infinities_are_non_finite_not_out_of_range(
        profile: ReferenceProfile) -> None:
    window = pd.DataFrame({"amount": [np.nan, np.inf, -np.inf, 1.0, 101.0, np.nan]})
    quality = assess_quality(profile, window, expected=["amount"]).features["amount"]
    assert (quality.n_null, quality.n_non_finite, quality.n_out_of_range) == (2, 2, 1)
    text = pd.DataFrame({"amount": _objects("nan", "NaN", "inf", "+inf", "1e999", 10**400,
                                            -(10**400), decimal.Decimal("Infinity"),
                                            decimal.Decimal("NaN"))})
    quality = assess_quality(profile, text, expected=["amount"]).features["amount"]
    # Text that pandas.to_numeric reads as NaN (or cannot read) is a mismatch, as in drift.
    assert _counts(quality) == {"absent": 0, "null": 1, "type_mismatch": 3, "non_finite": 5,
                                "out_of_range": 0, "new_category": 0}


def test_a_column_of_mixed_python_objects(profile: ReferenceProfile) -> None:
    mixed = _objects(1.5, "2", "x", {"a": 1}, [1, 2], None, 3, (1,), b"5", complex(1, 2),
                     pd.Timestamp(0), "DE")
    report = assess_quality(profile, pd.DataFrame({"amount": mixed, "country": mixed}),
                            expected=["amount", "country"])
    amount = report.features["amount"]
    # Numbers: 1.5, "2", 3; mismatches: "x", dict, list, tuple, bytes, complex, Timestamp, "DE".
    assert _counts(amount) == {"absent": 0, "null": 1, "type_mismatch": 8, "non_finite": 0,
                               "out_of_range": 0, "new_category": 0}
    assert amount.status == "type_mismatch"
    country = report.features["country"]
    # Mismatches: dict, list, tuple and the numbers 1.5, 3, complex; new: "2", "x",
    # b"5" and the timestamp; valid: "DE". 6 wrong of 11 values is a majority.
    assert _counts(country) == {"absent": 0, "null": 1, "type_mismatch": 6, "non_finite": 0,
                                "out_of_range": 0, "new_category": 4}
    assert country.status == "type_mismatch"
    assert report.type_mismatch_columns == ("amount", "country")


def test_many_distinct_types_are_classified_past_the_peeling_limit(
        profile: ReferenceProfile) -> None:
    kinds = [type(f"T{i}", (), {}) for i in range(12)]
    values = [kind() for kind in kinds] + [1.0, "2", None, True]
    quality = assess_quality(profile, pd.DataFrame({"amount": _objects(*values)}),
                             expected=["amount"]).features["amount"]
    assert (quality.n_type_mismatch, quality.n_null) == (13, 1)


def test_integer_codes_and_their_text_are_one_category(profile: ReferenceProfile) -> None:
    window = pd.DataFrame({"plan": _objects(1, "1", 2, "3", 4, "4", None)})
    quality = assess_quality(profile, window, expected=["plan"]).features["plan"]
    assert (quality.n_type_mismatch, quality.n_new_category, quality.n_null) == (0, 2, 1)
    # As drift names categories (detectors.columns): the float 1.0 is "1.0", a new one.
    floats = assess_quality(profile, pd.DataFrame({"plan": [1.0, 2.0, np.nan]}),
                            expected=["plan"]).features["plan"]
    assert (floats.n_type_mismatch, floats.n_new_category, floats.n_null) == (0, 2, 1)
    numbers = assess_quality(profile, pd.DataFrame({"country": [1, 2, None]}),
                             expected=["country"]).features["country"]
    assert (numbers.n_type_mismatch, numbers.n_null, numbers.status) == (2, 1, "type_mismatch")


@pytest.mark.parametrize(("column", "expected"), [
    (pd.Series([1, 2, 300], dtype="Int64"), (0, 0, 1)),
    (pd.Series([1, None, 300], dtype="Int64"), (1, 0, 1)),
    (pd.Series([True, False, None], dtype="boolean"), (1, 2, 0)),
    (pd.Series([True, False, True]), (0, 3, 0)),
    (pd.Series(["1", None, "500"], dtype="string"), (1, 0, 1)),
    (pd.Series(pd.Categorical(["1", "x", None])), (1, 1, 0)),
    (pd.Series(pd.to_datetime(["2026-01-01", None])), (1, 1, 0)),
    (pd.Series([1.0, 2.0], dtype=np.float32), (0, 0, 0)),
])
def test_numeric_features_of_other_dtypes(profile: ReferenceProfile, column: pd.Series,
                                          expected: tuple[int, int, int]) -> None:
    quality = assess_quality(profile, pd.DataFrame({"amount": column}),
                             expected=["amount"]).features["amount"]
    assert (quality.n_null, quality.n_type_mismatch, quality.n_out_of_range) == expected


@pytest.mark.parametrize(("column", "expected"), [
    (pd.Series(["DE", None, "XX"], dtype="string"), (1, 0, 1)),
    (pd.Series(pd.Categorical(["DE", "XX", None], categories=["DE", "XX", "unused"])),
     (1, 0, 1)),
    (pd.Series([True, None, False]), (1, 0, 2)),
    (pd.Series([1.0, np.nan, 2.0]), (1, 2, 0)),
    (pd.Series(["DE", None, np.nan, pd.NA, pd.NaT, "FR"], dtype=object), (4, 0, 0)),
])
def test_categorical_features_of_other_dtypes(profile: ReferenceProfile, column: pd.Series,
                                              expected: tuple[int, int, int]) -> None:
    quality = assess_quality(profile, pd.DataFrame({"country": column}),
                             expected=["country"]).features["country"]
    assert (quality.n_null, quality.n_type_mismatch, quality.n_new_category) == expected


def test_an_absent_row_is_absent_whatever_the_frame_holds(profile: ReferenceProfile) -> None:
    window = pd.DataFrame({"amount": [500.0, None, 5.0], "country": ["XX", {"a": 1}, "DE"]})
    mask = np.array([True, True, False])
    report = assess_quality(profile, window, expected=["amount", "country"],
                            absent={"amount": mask, "country": mask})
    assert _counts(report.features["amount"]) == {
        "absent": 2, "null": 0, "type_mismatch": 0, "non_finite": 0, "out_of_range": 0,
        "new_category": 0}
    assert _counts(report.features["country"])["absent"] == 2
    assert report.features["country"].n_new_category == 0
    assert report.features["country"].n_type_mismatch == 0


def test_statuses(profile: ReferenceProfile) -> None:
    window = pd.DataFrame({
        "amount": _objects("a", "b", 1.0, None),      # 2 of 3 values wrong: type_mismatch
        "country": _objects(1, "DE", "FR", None),     # 1 of 3: a quality matter, ok
        "plan": [None, None, None, None],             # never a value: missing
    })
    report = assess_quality(profile, window)
    statuses = {name: f.status for name, f in report.features.items()}
    assert statuses == {"amount": "type_mismatch", "country": "ok", "plan": "missing",
                        "score": "missing"}
    assert report.missing_columns == ("plan", "score")
    assert report.type_mismatch_columns == ("amount",)
    half = FeatureQuality("numeric", 4, n_type_mismatch=2)
    assert half.status == "ok"


def test_an_empty_window_has_zero_shares_and_no_missing_columns(
        profile: ReferenceProfile) -> None:
    thresholds = QualityThresholds(**dict.fromkeys(CHECKS, 0.0))
    for window in (pd.DataFrame(), pd.DataFrame({"amount": [], "country": []}),
                   pd.DataFrame({"amount": pd.Series([], dtype=object)})):
        report = assess_quality(profile, window, thresholds=thresholds)
        assert report.n_rows == 0
        assert report.missing_columns == ()
        assert report.breaches == ()
        for quality in report.features.values():
            assert quality.status == "ok"
            assert all(quality.share(check) == 0.0 for check in CHECKS)
        _json(report)


def test_an_event_without_features_still_counts_as_a_row(profile: ReferenceProfile) -> None:
    report = assess_quality(profile, pd.DataFrame(index=range(5)), extra_columns={"x": 5})
    assert report.missing_columns == ("amount", "country", "plan", "score")
    assert report.features["amount"].missing_share == 1.0
    assert report.unknown_columns == ("x",)


@pytest.mark.parametrize("value", [-0.01, 1.01, math.nan, math.inf, "0.1", True, None])
def test_thresholds_are_shares(value: Any) -> None:
    if value is None:
        assert QualityThresholds(missing_share=value).missing_share is None
        return
    with pytest.raises(QualityOptionsError, match="type_mismatch_share must be a share"):
        QualityThresholds(type_mismatch_share=value)
    assert issubclass(QualityOptionsError, DetectorError)
    assert issubclass(QualityOptionsError, ValueError)


def test_thresholds_keep_plain_floats() -> None:
    # Any real number is taken (a float32 from a YAML loader, an int) and stored as float.
    thresholds = QualityThresholds(missing_share=np.float32(0.5),  # type: ignore[arg-type]
                                   new_category_share=1, out_of_range_share=0)
    assert thresholds.to_dict() == {"missing_share": 0.5, "type_mismatch_share": None,
                                    "non_finite_share": None, "out_of_range_share": 0.0,
                                    "new_category_share": 1.0}
    assert all(type(v) is float for v in thresholds.to_dict().values() if v is not None)


def test_breaches_list_every_share_above_its_threshold(profile: ReferenceProfile) -> None:
    window = pd.DataFrame({"amount": [1.0, None, 200.0, 300.0],
                           "country": ["DE", "XX", "FR", "US"]})
    thresholds = QualityThresholds(missing_share=0.25, out_of_range_share=0.1,
                                   new_category_share=0.0, type_mismatch_share=0.0)
    report = assess_quality(profile, window, expected=["amount", "country"],
                            thresholds=thresholds)
    # missing_share 0.25 equals its threshold: not a breach; type mismatches: none.
    assert report.breaches == (
        QualityBreach("amount", "out_of_range_share", 0.5, 0.1),
        QualityBreach("country", "new_category_share", 0.25, 0.0),
    )
    assert _json(report)["breaches"] == [
        {"feature": "amount", "check": "out_of_range_share", "value": 0.5, "threshold": 0.1},
        {"feature": "country", "check": "new_category_share", "value": 0.25, "threshold": 0.0},
    ]
    assert assess_quality(profile, window, expected=["amount"]).breaches == ()


def test_json_has_the_offline_shape_and_no_nan(profile: ReferenceProfile) -> None:
    window = pd.DataFrame({"amount": [np.nan, np.inf, 5.0], "country": ["DE", None, "XX"],
                           "extra": [1, None, 3]})
    data = _json(assess_quality(profile, window))
    assert {"features", "unknown_columns", "missing_columns"} <= set(data)
    assert data["unknown_columns"] == ["extra"]
    assert data["unknown_column_counts"] == {"extra": 2}
    assert data["missing_columns"] == ["plan", "score"]
    assert list(data["features"]) == ["amount", "country", "plan", "score"]
    for feature in data["features"].values():
        assert {"missing_share", "type_mismatch_share", "out_of_range_share",
                "new_category_share"} <= set(feature)
        assert all(math.isfinite(v) for v in feature.values() if isinstance(v, float))
    assert data["features"]["amount"]["non_finite_share"] == pytest.approx(1 / 3)
    assert data["features"]["country"]["status"] == "ok"


def test_features_the_config_does_not_name_are_unknown(profile: ReferenceProfile) -> None:
    window = pd.DataFrame({"amount": [1.0, 2.0], "country": ["DE", None]})
    report = assess_quality(profile, window, expected=["amount"])
    assert list(report.features) == ["amount"]
    assert report.unknown_column_counts == {"country": 1}


def test_a_reference_without_values_puts_nothing_out_of_range() -> None:
    profile = ReferenceProfile.fit(pd.DataFrame({"x": [None, None], "c": [None, None]}),
                                   {"x": "numeric", "c": "categorical"})
    report = assess_quality(profile, pd.DataFrame({"x": [1.0, "a"], "c": ["a", 1]}))
    assert _counts(report.features["x"])["out_of_range"] == 0
    assert report.features["x"].n_type_mismatch == 1
    # No reference categories: nothing says numbers are wrong; every value is new.
    assert (report.features["c"].n_type_mismatch, report.features["c"].n_new_category) == (0, 2)


def test_arguments_that_do_not_fit_the_window_are_refused(profile: ReferenceProfile) -> None:
    window = pd.DataFrame({"amount": [1.0, 2.0]})
    with pytest.raises(SchemaError, match=r"profile lacks: \['nope'\]"):
        assess_quality(profile, window, expected=["amount", "nope"])
    with pytest.raises(QualityOptionsError, match=r"absent\['amount'\] must be a boolean"):
        assess_quality(profile, window, absent={"amount": np.array([True])})
    with pytest.raises(QualityOptionsError, match="dtype int64"):
        assess_quality(profile, window, absent={"amount": np.array([1, 0])})
    with pytest.raises(QualityOptionsError, match=r"not expected: \['extra'\]"):
        assess_quality(profile, window, expected=["amount"],
                       absent={"extra": np.array([True, False])})
    with pytest.raises(QualityOptionsError, match=r"extra_columns\['x'\] must be an event count"):
        assess_quality(profile, window, extra_columns={"x": 3})
    with pytest.raises(QualityOptionsError, match="must be an event count"):
        assess_quality(profile, window, extra_columns={"x": -1})
    with pytest.raises(QualityOptionsError, match="names the expected feature 'amount'"):
        assess_quality(profile, window, extra_columns={"amount": 1})
    repeated = pd.DataFrame([[1.0, 2.0]], columns=["amount", "amount"])
    with pytest.raises(QualityOptionsError, match=r"repeats the column names \['amount'\]"):
        assess_quality(profile, repeated)


def test_unknown_fields_seen_by_no_event_are_not_reported(profile: ReferenceProfile) -> None:
    window = pd.DataFrame({"amount": [1.0], "empty": [None]})
    report = assess_quality(profile, window, expected=["amount"], extra_columns={"zero": 0})
    assert report.unknown_columns == ()


def test_the_profile_is_not_mutated(profile: ReferenceProfile) -> None:
    before = profile.to_bytes()
    assess_quality(profile, pd.DataFrame({"amount": [1e9, "x"], "country": ["new", None]}))
    assert profile.to_bytes() == before


@pytest.mark.parametrize(("name", "values"), [
    ("amount", ["a", "b", 1.0, None]),
    ("amount", ["1.5", "2", "x", None]),
    ("amount", [True, False, 1.0]),
    ("amount", ["nan", "", 3.0, 4.0, "abc"]),
    ("amount", [1, 2.5, None]),
    ("country", [1, 2, "DE"]),
    ("country", [1, "DE", "FR"]),
    ("country", [1.5, 2.5, None, None]),
    ("country", [True, False, 1]),
    ("plan", [1, 2, "x"]),
    ("plan", ["a", "b", 3]),
])
def test_the_majority_rule_agrees_with_drifts_type_mismatch(
        profile: ReferenceProfile, name: str, values: list[Any]) -> None:
    column = _objects(*values)
    reference = profile.column(name)
    categories = getattr(reference, "categories", ())
    quality = assess_quality(profile, pd.DataFrame({name: column}),
                             expected=[name]).features[name]
    assert (quality.status == "type_mismatch") == kind_mismatch(
        profile.kinds[name], column, categories)
