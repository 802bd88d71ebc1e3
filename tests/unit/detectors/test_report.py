from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from detectors import (
    DriftOptions,
    OptionsError,
    ReferenceProfile,
    SchemaError,
    UnknownMethodError,
    detect_drift,
    render_html,
    report_to_text,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(5)


@pytest.fixture
def frames(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    reference = pd.DataFrame({"amount": rng.lognormal(3, 1, 800),
                              "country": rng.choice(["DE", "FR", "US"], 800),
                              "prediction": rng.uniform(size=800)})
    current = pd.DataFrame({"amount": rng.lognormal(3.6, 1, 300),
                            "country": rng.choice(["DE", "FR", "US", "<b>new</b>"], 300),
                            "prediction": rng.uniform(0.2, 1.0, 300)})
    return reference, current


def test_to_dict_is_exactly_the_v1_shape(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    report = detect_drift(ReferenceProfile.fit(reference), current)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert list(data) == ["schema", "status", "n_reference", "n_current", "drift_share",
                          "share_drifted", "dataset_drifted", "features"]
    assert data["status"] == "ok"
    assert data["schema"] == "driftline.drift-report/v1"
    assert (data["n_reference"], data["n_current"]) == (800, 300)
    for name, feature in data["features"].items():
        assert list(feature) == ["kind", "method", "status", "statistic", "p_value",
                                 "threshold", "drifted", "effect_size", "n_reference",
                                 "n_current"], name
        assert feature["status"] == "ok"
        assert feature["n_reference"] == 800
        assert feature["n_current"] == 300
    # The model's output is checked like any column (prediction drift).
    assert data["features"]["prediction"]["method"] == "ks"
    assert data["features"]["prediction"]["drifted"] is True
    assert data["features"]["amount"]["kind"] == "numeric"
    assert data["features"]["country"]["kind"] == "categorical"


def test_absent_column_is_missing_and_counts_as_drifted(
        frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    report = detect_drift(ReferenceProfile.fit(reference), current.drop(columns="amount"))
    amount = report.features["amount"]
    assert amount.status == "missing"
    assert amount.n_current == 0
    assert amount.drifted
    assert report.status == "ok"
    # The missing column is in the denominator and the numerator of the share.
    without = detect_drift(ReferenceProfile.fit(reference.drop(columns="amount")),
                           current.drop(columns="amount"))
    assert report.share_drifted == (len(without.drifted_features) + 1) / 3
    assert report.dataset_drifted


def test_an_empty_window_is_insufficient_not_missing(
        frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    report = detect_drift(ReferenceProfile.fit(reference), current.iloc[:0][["country"]])
    assert {f.status for f in report.features.values()} == {"insufficient_data"}
    assert report.status == "insufficient_data"
    assert not report.dataset_drifted


def test_text_in_a_numeric_column_is_a_type_mismatch(
        frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    broken = current.assign(amount=["n/a"] * 290 + ["1.5"] * 10)
    report = detect_drift(ReferenceProfile.fit(reference), broken)
    assert report.features["amount"].status == "type_mismatch"
    assert report.features["amount"].drifted
    assert report.features["amount"].n_current == 300
    # A minority of bad values is a data-quality matter: the column is still tested.
    mostly_fine = current.assign(amount=current["amount"].astype(object).where(
        np.arange(300) >= 10, "n/a"))
    assert detect_drift(ReferenceProfile.fit(reference),
                        mostly_fine).features["amount"].status == "ok"


def test_numbers_where_categories_were_are_a_type_mismatch(
        frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    report = detect_drift(ReferenceProfile.fit(reference),
                          current.assign(country=np.arange(300) % 3))
    assert report.features["country"].status == "type_mismatch"
    # Integer codes stay categories when the reference's categories are codes too.
    codes = pd.DataFrame({"code": np.arange(600) % 4})
    profile = ReferenceProfile.fit(codes, schema={"code": "categorical"})
    assert detect_drift(profile, codes).features["code"].status == "ok"


def test_min_effect_size_silences_tiny_but_significant_shifts(rng: np.random.Generator) -> None:
    reference = pd.DataFrame({"x": rng.normal(0, 1, 200_000)})
    current = pd.DataFrame({"x": rng.normal(0.03, 1, 200_000)})  # significant, negligible
    profile = ReferenceProfile.fit(reference)
    plain = detect_drift(profile, current, DriftOptions(numeric_method="ks"))
    assert plain.features["x"].drifted
    gated = detect_drift(profile, current, DriftOptions(numeric_method="ks",
                                                        min_effect_size=0.2))
    assert not gated.features["x"].drifted
    effect = gated.features["x"].effect_size
    assert effect is not None
    assert abs(effect) < 0.2


def test_thresholds_and_per_feature_overrides(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    profile = ReferenceProfile.fit(reference)
    options = DriftOptions(methods={"amount": "psi"}, distance_threshold=0.5,
                           thresholds={"prediction": 1e-300})
    report = detect_drift(profile, current, options)
    assert report.features["amount"].method == "psi"
    assert report.features["amount"].threshold == 0.5
    # country runs chi-square (a p-value test): the distance threshold is not its threshold.
    assert report.features["country"].method == "chisquare"
    assert report.features["country"].threshold == 0.05
    assert report.features["prediction"].threshold == 1e-300
    assert not report.features["prediction"].drifted
    assert detect_drift(profile, current).features["prediction"].drifted


def test_correction_can_only_remove_p_value_flags(rng: np.random.Generator) -> None:
    reference = pd.DataFrame({f"x{i}": rng.normal(size=500) for i in range(20)})
    current = pd.DataFrame({f"x{i}": rng.normal(0.12 if i < 3 else 0, 1, 500)
                            for i in range(20)})
    profile = ReferenceProfile.fit(reference)
    plain = detect_drift(profile, current, DriftOptions(numeric_method="ks"))
    for correction in ("bonferroni", "holm", "bh"):
        adjusted = detect_drift(profile, current, DriftOptions(numeric_method="ks",
                                                               correction=correction))
        assert set(adjusted.drifted_features) <= set(plain.drifted_features)


@pytest.mark.parametrize(("options", "error", "pattern"), [
    ({"drift_share": 0.0}, OptionsError, "drift_share"),
    ({"threshold": -1.0}, OptionsError, "threshold"),
    ({"numeric_method": "ks", "threshold": 5.0}, OptionsError, r"threshold must be .*\(0, 1\)"),
    ({"numeric_method": "ks", "threshold": math.inf}, OptionsError, "threshold"),
    ({"p_value_threshold": 1.0}, OptionsError, "p_value_threshold"),
    ({"p_value_threshold": math.nan}, OptionsError, "p_value_threshold"),
    ({"distance_threshold": -0.1}, OptionsError, "distance_threshold"),
    ({"distance_threshold": math.inf}, OptionsError, "distance_threshold"),
    ({"numeric_method": "ks", "categorical_method": "psi", "threshold": 0.1}, OptionsError,
     "ambiguous"),
    ({"methods": {"a": "ks"}, "thresholds": {"a": 2.0}}, OptionsError, "'a'"),
    ({"numeric_method": "chisquare"}, UnknownMethodError, "continuous column"),
    ({"thresholds": {"a": 0.0}}, OptionsError, "'a'"),
    ({"min_samples": 0}, OptionsError, "min_samples"),
    ({"correction": "sidak"}, OptionsError, "sidak"),
    ({"numeric_method": "chi"}, UnknownMethodError, r"'chi'.*wasserstein"),
    ({"categorical_method": "ks"}, UnknownMethodError, r"'ks'.*chisquare"),
    ({"methods": {"a": "nope"}}, UnknownMethodError, "'nope'"),
])
def test_bad_options_name_the_bad_value(options: dict[str, object], error: type[Exception],
                                        pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        DriftOptions(**options)  # type: ignore[arg-type]


def test_schema_errors() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    with pytest.raises(SchemaError, match="'b'"):
        ReferenceProfile.fit(frame, schema={"b": "numeric"})
    with pytest.raises(SchemaError, match="text"):
        ReferenceProfile.fit(frame, schema={"a": "text"})
    profile = ReferenceProfile.fit(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
                                   schema={"a": "categorical"})
    assert profile.kinds == {"a": "categorical"}


def test_profile_is_not_mutated(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    profile = ReferenceProfile.fit(reference)
    before = profile.to_bytes()
    detect_drift(profile, current)
    detect_drift(profile, current.iloc[:5])
    assert profile.to_bytes() == before
    with pytest.raises(ValueError, match="read-only"):
        profile.numeric["amount"].values[0] = 1.0


def test_text_and_html_renderings(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    profile = ReferenceProfile.fit(reference)
    report = detect_drift(profile, current)
    text = report_to_text(report)
    assert "amount" in text
    assert "DRIFT" in text
    assert len(text.splitlines()) == 3 + len(report.features)
    page = render_html(report, profile, current)
    assert page.startswith("<!doctype html>")
    assert page.count("<svg") == len(report.features)
    assert "<b>new</b>" not in page  # category names are escaped
    assert not re.search(r"<script|https?://", page)  # self-contained
    assert math.isfinite(report.share_drifted)


@pytest.mark.parametrize("damage", [
    lambda b: b"", lambda b: b"not a profile", lambda b: b[: len(b) // 2],
    lambda b: b.replace(b"driftline.profile", b"driftline.profilX"),
    lambda b: b.replace(b'"version": 1', b'"version": 9'),
])
def test_damaged_profile_bytes_raise_profile_format_error(
        frames: tuple[pd.DataFrame, pd.DataFrame], damage: object) -> None:
    from detectors import ProfileFormatError

    blob = ReferenceProfile.fit(frames[0]).to_bytes()
    with pytest.raises(ProfileFormatError):
        ReferenceProfile.from_bytes(damage(blob))  # type: ignore[operator]


def test_non_string_column_labels(rng: np.random.Generator) -> None:
    reference = pd.DataFrame(rng.normal(size=(300, 2)))
    current = pd.DataFrame(rng.normal(2.0, 1, size=(300, 2)))
    profile = ReferenceProfile.fit(reference)
    assert profile.columns == ["0", "1"]
    report = detect_drift(profile, current, DriftOptions(numeric_method="ks"))
    assert report.drifted_features == ("0", "1")
