"""Segments equal fairlearn's MetricFrame and fairness metrics on the same data.

Tolerance: 1e-9 relative with 1e-12 absolute. Data: generated groups (four regions with
different base rates and error rates) and scikit-learn's breast cancer data with a fitted
logistic regression, grouped by a binned feature. fairlearn sees the rows we keep (labelled
rows of the kept groups) with 0/1 labels, as it requires.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
)
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from detectors.errors import OptionsError, PerformanceInputError
from detectors.performance import PerformanceOptions
from detectors.segments import MISSING_GROUP, SegmentReport, compute_segments

BINARY = PerformanceOptions("classification")
LABEL_METRICS: dict[str, Callable[..., float]] = {
    "accuracy": skm.accuracy_score,
    "precision": partial(skm.precision_score, zero_division=0),
    "recall": partial(skm.recall_score, zero_division=0),
    "f1": partial(skm.f1_score, zero_division=0),
}
SCORE_METRICS: dict[str, Callable[..., float]] = {
    "roc_auc": skm.roc_auc_score,
    "average_precision": skm.average_precision_score,
    "brier": skm.brier_score_loss,
}


def approx(value: float | None) -> Any:
    assert value is not None
    return pytest.approx(float(value), rel=1e-9, abs=1e-12)


def as_json(report: SegmentReport) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    return document


def check_frame(report: SegmentReport, frame: MetricFrame, names: list[str],
                ratios: bool = True) -> None:
    by_group = frame.by_group
    assert sorted(report.groups) == sorted(str(g) for g in by_group.index)
    for group, row in by_group.iterrows():
        for name in names:
            assert report.groups[str(group)].metrics[name] == approx(row[name]), (group, name)
    differences, quotients = frame.difference(), frame.ratio()
    for name in names:
        assert report.disparity[name].difference == approx(differences[name]), name
        if ratios:
            assert report.disparity[name].ratio == approx(quotients[name]), name


def check_binary(report: SegmentReport, y: np.ndarray, predicted: np.ndarray,
                 score: np.ndarray, groups: np.ndarray) -> None:
    check_frame(report, MetricFrame(metrics=LABEL_METRICS, y_true=y, y_pred=predicted,
                                    sensitive_features=groups), list(LABEL_METRICS))
    check_frame(report, MetricFrame(metrics=SCORE_METRICS, y_true=y, y_pred=score,
                                    sensitive_features=groups), list(SCORE_METRICS))
    assert report.demographic_parity_difference == approx(
        demographic_parity_difference(y, predicted, sensitive_features=groups))
    assert report.equalized_odds_difference == approx(
        equalized_odds_difference(y, predicted, sensitive_features=groups))
    as_json(report)


@pytest.fixture
def regions(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    names = np.array(["eu", "us", "apac", "latam"], dtype=object)
    groups = names[rng.choice(4, 2000, p=[0.4, 0.3, 0.2, 0.1])]
    base_rate = pd.Series(groups).map({"eu": 0.3, "us": 0.5, "apac": 0.2, "latam": 0.6})
    noise = pd.Series(groups).map({"eu": 0.15, "us": 0.25, "apac": 0.35, "latam": 0.2})
    y = (rng.random(2000) < base_rate.to_numpy()).astype(int)
    score = np.clip(0.3 + 0.4 * y + rng.normal(0, 1, 2000) * noise.to_numpy(), 0, 1)
    return groups, y, np.round(score, 2), (np.round(score, 2) >= 0.5).astype(int)


def test_generated_regions_equal_fairlearn(
        regions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    groups, y, score, predicted = regions
    report = compute_segments(groups, y, scores=score, options=BINARY, by="tags.region")
    assert report.by == "tags.region"
    assert list(report.groups) == ["eu", "us", "apac", "latam"]  # most labelled rows first
    check_binary(report, y, predicted, score, groups)
    document = as_json(report)
    assert document["groups"]["eu"]["n"] == int(np.sum(groups == "eu"))
    assert set(document["disparity"]) >= {"accuracy", "roc_auc", "demographic_parity_difference",
                                          "equalized_odds_difference"}


def test_breast_cancer_by_binned_feature_equals_fairlearn() -> None:
    data = load_breast_cancer(as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target.to_numpy(), test_size=0.5, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
    score = model.predict_proba(x_test)[:, 1]
    predicted = (score >= 0.5).astype(int)
    groups = pd.qcut(x_test["mean texture"], 3, labels=["low", "mid", "high"]).astype(str)
    report = compute_segments(groups, y_test, predicted, score, options=BINARY,
                              by="mean texture")
    check_binary(report, y_test, predicted, score, groups.to_numpy())


def test_string_labels_and_given_predictions(
        regions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    groups, y, score, predicted = regions
    words = np.array(["no", "yes"], dtype=object)
    options = PerformanceOptions("classification", positive_label="yes")
    report = compute_segments(pd.Series(groups), words[y], words[predicted], score,
                              options=options, by="region")
    check_binary(report, y, predicted, score, groups)


def test_group_without_positives_reads_like_fairlearn(rng: np.random.Generator) -> None:
    groups = np.array(["a"] * 50 + ["b"] * 50 + ["c"] * 30, dtype=object)
    y = np.r_[rng.integers(0, 2, 100), np.zeros(30, dtype=int)]
    predicted = np.where(rng.random(130) < 0.8, y, 1 - y)
    report = compute_segments(groups, y, predicted, options=BINARY, by="g")
    assert report.groups_without_positives == ("c",)
    assert report.groups_without_negatives == ()
    assert report.equalized_odds_difference == approx(
        equalized_odds_difference(y, predicted, sensitive_features=groups))
    assert report.demographic_parity_difference == approx(
        demographic_parity_difference(y, predicted, sensitive_features=groups))
    assert "roc_auc" not in report.disparity  # no scores, so no group defines it


def test_missing_group_values_form_their_own_group(
        regions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    groups, y, score, predicted = regions
    holes = groups.copy()
    holes[::7] = None
    holes[3::11] = np.nan
    with pytest.raises(ValueError, match="missing values"):  # fairlearn refuses them
        MetricFrame(metrics=skm.accuracy_score, y_true=y, y_pred=predicted,
                    sensitive_features=pd.Series(holes))
    report = compute_segments(holes, y, scores=score, options=BINARY, by="region")
    assert MISSING_GROUP in report.groups
    named = pd.Series(holes).fillna(MISSING_GROUP).to_numpy()
    check_binary(report, y, predicted, score, named)


def test_missing_labels_are_left_out(
        regions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    groups, y, score, predicted = regions
    partial_labels = y.astype(object)
    partial_labels[::3] = None
    report = compute_segments(groups, partial_labels, scores=score, options=BINARY, by="r")
    keep = np.arange(len(y)) % 3 != 0
    check_binary(report, y[keep], predicted[keep], score[keep], groups[keep])
    eu = report.groups["eu"]
    assert eu.n_total == int(np.sum(groups == "eu"))
    assert eu.label_coverage == approx(np.sum(keep & (groups == "eu")) / np.sum(groups == "eu"))


def test_cap_drops_the_smallest_groups(
        regions: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    groups, y, score, predicted = regions
    report = compute_segments(groups, y, scores=score, options=BINARY, by="r", max_groups=2)
    assert list(report.groups) == ["eu", "us"]
    assert report.n_groups_dropped == 2
    assert report.n_rows_dropped == int(np.sum(np.isin(groups, ["apac", "latam"])))
    keep = np.isin(groups, ["eu", "us"])
    check_binary(report, y[keep], predicted[keep], score[keep], groups[keep])
    assert as_json(report)["n_groups_dropped"] == 2


def test_regression_segments_equal_metricframe(rng: np.random.Generator) -> None:
    groups = rng.choice(np.array(["v1", "v2", "v3"], dtype=object), 900)
    y = rng.gamma(3, 2, 900)
    predicted = y + rng.normal(pd.Series(groups).map({"v1": 0, "v2": 1, "v3": -0.5}), 1.5)
    report = compute_segments(groups, y, predicted, options=PerformanceOptions("regression"),
                              by="model_version")
    frame = MetricFrame(metrics={"mae": skm.mean_absolute_error,
                                 "rmse": skm.root_mean_squared_error,
                                 "median_ae": skm.median_absolute_error},
                        y_true=y, y_pred=predicted, sensitive_features=groups)
    check_frame(report, frame, ["mae", "rmse", "median_ae"])
    signed = MetricFrame(metrics={"r2": skm.r2_score}, y_true=y, y_pred=predicted,
                         sensitive_features=groups)
    check_frame(report, signed, ["r2"], ratios=False)
    assert report.disparity["mean_error"].ratio is None  # signed values: no ratio
    assert report.demographic_parity_difference is None
    assert report.equalized_odds_difference is None
    as_json(report)


def test_multiclass_segments(rng: np.random.Generator) -> None:
    groups = rng.choice(np.array(["a", "b", "c"], dtype=object), 600)
    y = rng.integers(0, 3, 600)
    predicted = np.where(rng.random(600) < 0.7, y, rng.integers(0, 3, 600))
    options = PerformanceOptions("classification", classes=(0, 1, 2))
    report = compute_segments(groups, y, predicted, options=options, by="segment")
    frame = MetricFrame(metrics={"accuracy": skm.accuracy_score,
                                 "f1": partial(skm.f1_score, average="macro", zero_division=0),
                                 "f1_weighted": partial(skm.f1_score, average="weighted",
                                                        zero_division=0)},
                        y_true=y, y_pred=predicted, sensitive_features=groups)
    check_frame(report, frame, ["accuracy", "f1", "f1_weighted"])
    assert report.demographic_parity_difference is None
    as_json(report)


def test_one_group_and_unlabelled_groups() -> None:
    alone = compute_segments(["x"] * 4, [0, 1, 1, 0], [0, 1, 0, 0], options=BINARY, by="g")
    assert alone.disparity == {}
    assert alone.demographic_parity_difference is None
    unlabelled = compute_segments(["x", "x", "y", "y"], [0, 1, None, None], [0, 1, 1, 0],
                                  options=BINARY, by="g")
    assert unlabelled.groups["y"].status == "no_labels"
    assert as_json(unlabelled)["groups"]["y"]["metrics"]["accuracy"] is None
    assert unlabelled.disparity == {}
    numbered = compute_segments([1, 1.0, "1", 2], [0, 1, 1, 0], [0, 1, 0, 0], options=BINARY,
                                by="g")
    assert list(numbered.groups) == ["1", "2"]


def test_bad_arguments() -> None:
    with pytest.raises(OptionsError, match="max_groups"):
        compute_segments(["a"], [1], [1], options=BINARY, by="g", max_groups=0)
    with pytest.raises(PerformanceInputError, match="segment column"):
        compute_segments(["a", "b"], [1], [1], options=BINARY, by="g")
