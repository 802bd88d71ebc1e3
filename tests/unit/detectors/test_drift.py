from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from detectors import (
    DriftOptions,
    ReferenceProfile,
    UnknownMethodError,
    adjust_p_values,
    detect_drift,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261124)


def _evidently_chisquare(reference: pd.Series, current: pd.Series) -> float:
    from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test

    return float(_chi_stat_test(reference, current, "cat", 0.05)[0])


def test_ks_equals_scipy(rng: np.random.Generator) -> None:
    ref = pd.DataFrame({"x": rng.normal(0, 1, 3000)})
    cur = pd.DataFrame({"x": rng.normal(0.1, 1, 700)})
    report = detect_drift(ReferenceProfile.fit(ref), cur, DriftOptions(numeric_method="ks"))
    expected = stats.ks_2samp(ref["x"], cur["x"])
    result = report.features["x"]
    assert math.isclose(result.statistic, expected.statistic, rel_tol=1e-9)
    assert math.isclose(result.p_value, expected.pvalue, rel_tol=1e-9)
    assert result.drifted == (expected.pvalue < 0.05)


def test_chisquare_equals_evidently(rng: np.random.Generator) -> None:
    ref = pd.Series(rng.choice(list("abcd"), 2000, p=[0.4, 0.3, 0.2, 0.1]))
    cur = pd.Series(rng.choice(list("abcd"), 600, p=[0.35, 0.3, 0.2, 0.15]))
    profile = ReferenceProfile.fit(pd.DataFrame({"c": ref}))
    result = detect_drift(profile, pd.DataFrame({"c": cur}),
                          DriftOptions(categorical_method="chisquare")).features["c"]
    assert math.isclose(result.p_value, _evidently_chisquare(ref, cur), rel_tol=1e-9)


@pytest.mark.parametrize(("n_ref", "numeric", "n_unique", "expected"), [
    (500, True, 50, "ks"), (500, True, 4, "chisquare"), (500, True, 2, "z"),
    (500, False, 3, "chisquare"), (500, False, 2, "z"),
    (5000, True, 50, "wasserstein"), (5000, True, 3, "jensenshannon"),
    (5000, False, 6, "jensenshannon"),
])
def test_auto_follows_evidently(rng: np.random.Generator, n_ref: int, numeric: bool,
                                n_unique: int, expected: str) -> None:
    from evidently.legacy.calculations.stattests.registry import _get_default_stattest
    from evidently.legacy.core import ColumnType

    values = rng.integers(0, n_unique, n_ref + 300).astype(float)
    column = values if numeric else np.array([f"k{int(v)}" for v in values])
    ref, cur = pd.Series(column[:n_ref]), pd.Series(column[n_ref:])
    kind = ColumnType.Numerical if numeric else ColumnType.Categorical
    assert _get_default_stattest(ref, cur, kind).name == expected
    schema = {"x": "numeric" if numeric else "categorical"}
    profile = ReferenceProfile.fit(pd.DataFrame({"x": ref}), schema=schema)
    assert detect_drift(profile, pd.DataFrame({"x": cur})).features["x"].method == expected


def test_degenerate_windows_never_raise_or_nan(rng: np.random.Generator) -> None:
    ref = pd.DataFrame({"x": rng.normal(size=500), "k": ["a"] * 500, "c": [1.0] * 500})
    profile = ReferenceProfile.fit(ref, schema={"x": "numeric", "k": "categorical",
                                                "c": "numeric"})
    for current in [
        pd.DataFrame(),
        pd.DataFrame({"x": [1.0] * 5}),
        pd.DataFrame({"x": [np.nan] * 100, "k": [None] * 100, "c": [np.inf] * 100}),
        pd.DataFrame({"x": [7.0] * 100, "k": ["a"] * 100, "c": [1.0] * 100}),
        pd.DataFrame({"x": [1e308] * 100, "k": ["zzz"] * 100, "c": [1.0] * 100}),
    ]:
        report = detect_drift(profile, current, DriftOptions(numeric_method="ks",
                                                             categorical_method="chisquare"))
        for f in report.features.values():
            for value in (f.statistic, f.p_value, f.effect_size):
                assert value is None or math.isfinite(value)
        assert math.isfinite(report.share_drifted)
    empty = detect_drift(profile, pd.DataFrame())
    assert empty.status == "insufficient_data"
    assert not empty.dataset_drifted


def test_unseen_category_is_drift_not_nan(rng: np.random.Generator) -> None:
    profile = ReferenceProfile.fit(pd.DataFrame({"k": rng.choice(["a", "b"], 500)}))
    cur = pd.DataFrame({"k": rng.choice(["a", "b", "new"], 300)})
    result = detect_drift(profile, cur, DriftOptions(categorical_method="chisquare")).features["k"]
    assert result.drifted
    assert math.isfinite(result.statistic)


def test_profile_round_trip_gives_identical_report(rng: np.random.Generator) -> None:
    ref = pd.DataFrame({"x": rng.normal(size=1500), "k": rng.choice(["a", "b", "c"], 1500)})
    cur = pd.DataFrame({"x": rng.normal(0.2, 1, 400), "k": rng.choice(["a", "b", "c"], 400)})
    profile = ReferenceProfile.fit(ref)
    again = ReferenceProfile.from_bytes(profile.to_bytes())
    assert detect_drift(profile, cur).to_dict() == detect_drift(again, cur).to_dict()


def test_unknown_method_is_named() -> None:
    with pytest.raises(UnknownMethodError, match="'kss'"):
        DriftOptions(numeric_method="kss")


def test_holm_and_bh_match_scipy_and_definition() -> None:
    p = [0.001, 0.02, 0.04, 0.3, 0.011]
    assert np.allclose(adjust_p_values(p, "bh"), stats.false_discovery_control(p, method="bh"))
    holm = adjust_p_values(p, "holm")
    assert holm == pytest.approx([0.005, 0.06, 0.08, 0.3, 0.044])


def test_dataset_share_rule(rng: np.random.Generator) -> None:
    ref = pd.DataFrame({f"x{i}": rng.normal(size=800) for i in range(4)})
    cur = pd.DataFrame({f"x{i}": rng.normal(2.0 if i < 2 else 0.0, 1, 300) for i in range(4)})
    profile = ReferenceProfile.fit(ref)
    half = detect_drift(profile, cur, DriftOptions(numeric_method="ks", drift_share=0.5))
    assert half.share_drifted == 0.5
    assert half.dataset_drifted
    assert not detect_drift(profile, cur, DriftOptions(numeric_method="ks",
                                                       drift_share=0.75)).dataset_drifted
