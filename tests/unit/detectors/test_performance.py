"""Realized performance equals scikit-learn's metrics on the same data.

Tolerance: 1e-9 relative with 1e-12 absolute (`pytest.approx(rel=1e-9, abs=1e-12)`), on
real datasets scikit-learn ships (breast cancer, wine, iris, diabetes, each with a fitted
model), on generated data with tied scores, and on the degenerate windows (one class, no
labels, a constant target, a class never predicted, out-of-domain values). Every report
must serialise with `allow_nan=False`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from detectors.errors import OptionsError, PerformanceInputError
from detectors.performance import (
    PerformanceOptions,
    PerformanceReport,
    compute_performance,
    label_delay,
    performance_by_bucket,
)

BINARY = PerformanceOptions("classification")
REGRESSION = PerformanceOptions("regression")


def approx(value: float | None) -> Any:
    assert value is not None
    return pytest.approx(float(value), rel=1e-9, abs=1e-12)


def as_json(report: PerformanceReport) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    return document


def ece_from_calibration_curve(outcome: np.ndarray, confidence: np.ndarray,
                               n_bins: int = 10) -> float:
    # calibration_curve gives the per-bin means of the non-empty bins; weight them by the
    # bin counts. Its bins close on the right, numpy's histogram bins on the left: count
    # the negated scores over the negated edges, then reverse.
    prob_true, prob_pred = calibration_curve(outcome, confidence, n_bins=n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.histogram(-confidence, bins=-edges[::-1])[0][::-1]
    counts = counts[counts > 0]
    return float(np.sum(counts / len(confidence) * np.abs(prob_true - prob_pred)))


def check_binary(report: PerformanceReport, y: np.ndarray, score: np.ndarray,
                 positive: Any, threshold: float = 0.5) -> None:
    labels = sorted(set(y.tolist()) | {positive})
    negative = next(label for label in labels if label != positive)
    predicted = np.where(score >= threshold, positive, negative)
    metrics = report.metrics
    assert metrics["accuracy"] == approx(skm.accuracy_score(y, predicted))
    for name, function in (("precision", skm.precision_score), ("recall", skm.recall_score),
                           ("f1", skm.f1_score)):
        expected = function(y, predicted, pos_label=positive, zero_division=0)
        assert metrics[name] == approx(expected), name
    is_positive = y == positive
    assert metrics["roc_auc"] == approx(skm.roc_auc_score(is_positive, score))
    assert metrics["average_precision"] == approx(
        skm.average_precision_score(is_positive, score))
    assert metrics["brier"] == approx(skm.brier_score_loss(y, score, pos_label=positive))
    two_columns = np.column_stack([1 - score, score] if labels[1] == positive
                                  else [score, 1 - score])
    assert metrics["log_loss"] == approx(skm.log_loss(y, two_columns, labels=labels))
    assert metrics["ece"] == approx(ece_from_calibration_curve(is_positive, score))
    assert report.confusion_matrix is not None
    assert report.confusion_matrix.labels == tuple(labels)
    expected_matrix = skm.confusion_matrix(y, predicted, labels=labels)
    assert np.array_equal(np.array(report.confusion_matrix.matrix), expected_matrix)
    assert report.metric_status == {}
    as_json(report)


def check_multiclass(report: PerformanceReport, y: np.ndarray, proba: np.ndarray,
                     classes: list[Any]) -> None:
    predicted = np.asarray(classes)[np.argmax(proba, axis=1)]
    metrics = report.metrics
    assert metrics["accuracy"] == approx(skm.accuracy_score(y, predicted))
    for name, function in (("precision", skm.precision_score), ("recall", skm.recall_score),
                           ("f1", skm.f1_score)):
        for average in ("macro", "weighted"):
            key = name if average == "macro" else f"{name}_weighted"
            expected = function(y, predicted, average=average, zero_division=0)
            assert metrics[key] == approx(expected), key
    order = np.argsort(classes)  # scikit-learn wants the columns in sorted class order
    sorted_classes, sorted_proba = [classes[i] for i in order], proba[:, order]
    assert metrics["roc_auc"] == approx(skm.roc_auc_score(
        y, sorted_proba, multi_class="ovr", average="macro", labels=sorted_classes))
    assert metrics["average_precision"] == approx(skm.average_precision_score(
        pd.Series(y).map({c: i for i, c in enumerate(sorted_classes)}), sorted_proba))
    assert metrics["log_loss"] == approx(skm.log_loss(y, sorted_proba, labels=sorted_classes))
    assert metrics["brier"] == approx(skm.brier_score_loss(y, sorted_proba, labels=sorted_classes))
    top = np.argmax(proba, axis=1)
    correct = np.asarray(classes, dtype=object)[top] == y
    assert metrics["ece"] == approx(ece_from_calibration_curve(correct, proba.max(axis=1)))
    assert report.confusion_matrix is not None
    expected_matrix = skm.confusion_matrix(y, predicted, labels=classes)
    assert np.array_equal(np.array(report.confusion_matrix.matrix), expected_matrix)
    as_json(report)


@pytest.fixture(scope="module")
def breast_cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
    return y_test, model.predict_proba(x_test)[:, 1], model.decision_function(x_test)


@pytest.fixture(scope="module")
def wine() -> tuple[np.ndarray, np.ndarray]:
    data = load_wine()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0)
    # Weak regularisation on two features leaves mistakes to count.
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05))
    model.fit(x_train[:, :2], y_train)
    return y_test, model.predict_proba(x_test[:, :2])


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray, list[str]]:
    data = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data[:, :2], data.target, test_size=0.5, random_state=1)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
    names = np.asarray(data.target_names, dtype=object)
    return names[y_test], model.predict_proba(x_test), list(data.target_names)


def test_breast_cancer_equals_sklearn(breast_cancer: tuple[np.ndarray, ...]) -> None:
    y, score, _ = breast_cancer
    report = compute_performance(y, scores=score, options=BINARY)
    assert report.status == "ok"
    assert report.n_labelled == len(y)
    assert report.label_coverage == 1.0
    check_binary(report, y, score, positive=1)


def test_breast_cancer_other_threshold_and_positive_zero(
        breast_cancer: tuple[np.ndarray, ...]) -> None:
    y, score, _ = breast_cancer
    options = PerformanceOptions("classification", positive_label=0, threshold=0.3)
    report = compute_performance(y, scores=1 - score, options=options)
    check_binary(report, y, 1 - score, positive=0, threshold=0.3)


def test_breast_cancer_two_score_columns(breast_cancer: tuple[np.ndarray, ...]) -> None:
    y, score, _ = breast_cancer
    one_column = compute_performance(y, scores=score, options=BINARY)
    two_columns = compute_performance(y, scores=np.column_stack([1 - score, score]),
                                      options=BINARY)
    for name, value in one_column.metrics.items():
        assert two_columns.metrics[name] == approx(value), name


def test_raw_scores_rank_but_are_not_probabilities(breast_cancer: tuple[np.ndarray, ...]) -> None:
    y, _, decision = breast_cancer
    predicted = (decision >= 0).astype(int)
    report = compute_performance(y, predicted, decision, options=BINARY)
    assert report.metrics["roc_auc"] == approx(skm.roc_auc_score(y, decision))
    assert report.metrics["average_precision"] == approx(skm.average_precision_score(y, decision))
    assert report.metrics["accuracy"] == approx(skm.accuracy_score(y, predicted))
    for name in ("log_loss", "brier", "ece"):
        assert report.metrics[name] is None
        assert report.metric_status[name] == "not_probabilities"
    as_json(report)


def test_wine_multiclass_equals_sklearn(wine: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = wine
    options = PerformanceOptions("classification", classes=(0, 1, 2))
    report = compute_performance(y, scores=proba, options=options)
    assert set(report.metrics) >= {"precision_weighted", "recall_weighted", "f1_weighted"}
    check_multiclass(report, y, proba, [0, 1, 2])
    inferred = compute_performance(y, scores=proba, options=PerformanceOptions("classification"))
    assert inferred.metrics == report.metrics


def test_iris_string_classes_in_config_order_as_list_column(
        iris: tuple[np.ndarray, np.ndarray, list[str]]) -> None:
    y, proba, names = iris
    classes = [names[2], names[0], names[1]]  # not sorted: the columns follow the config
    permuted = proba[:, [2, 0, 1]]
    as_lists = pd.Series([list(row) for row in permuted])
    report = compute_performance(pd.Series(y), scores=as_lists,
                                 options=PerformanceOptions("classification",
                                                            classes=tuple(classes)))
    check_multiclass(report, y, permuted, classes)
    assert as_json(report)["confusion_matrix"]["labels"] == classes


def test_ties_in_binary_scores(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, 3000)
    score = np.round(np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.25, 3000), 0, 1), 1)
    assert len(np.unique(score)) <= 11
    report = compute_performance(y, scores=score, options=BINARY)
    y_pred = (score >= 0.5).astype(int)
    assert report.metrics["accuracy"] == approx(skm.accuracy_score(y, y_pred))
    for name, expected in (("roc_auc", skm.roc_auc_score(y, score)),
                           ("average_precision", skm.average_precision_score(y, score)),
                           ("brier", skm.brier_score_loss(y, score)),
                           ("log_loss", skm.log_loss(y, score))):
        assert report.metrics[name] == approx(expected), name
    as_json(report)


def test_ties_in_multiclass_scores(rng: np.random.Generator) -> None:
    palette = np.array([[0.2, 0.3, 0.5], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.6, 0.2, 0.2],
                        [0.25, 0.5, 0.25], [0.4, 0.4, 0.2]])
    proba = palette[rng.integers(0, len(palette), 2000)]
    y = np.array([rng.choice(3, p=row) for row in proba])
    report = compute_performance(y, scores=proba, options=PerformanceOptions("classification"))
    check_multiclass(report, y, proba, [0, 1, 2])


def test_string_labels_yes_no(rng: np.random.Generator) -> None:
    y = rng.choice(np.array(["yes", "no"], dtype=object), 500, p=[0.3, 0.7])
    score = np.clip(np.where(y == "yes", 0.65, 0.35) + rng.normal(0, 0.2, 500), 0, 1)
    report = compute_performance(y, scores=score,
                                 options=PerformanceOptions("classification",
                                                            positive_label="yes"))
    check_binary(report, y, score, positive="yes")


def test_class_predictions_only(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, 400)
    predicted = np.where(rng.random(400) < 0.8, y, 1 - y)
    report = compute_performance(y, predicted, options=BINARY)
    assert report.metrics["f1"] == approx(skm.f1_score(y, predicted))
    for name in ("roc_auc", "average_precision", "log_loss", "brier", "ece"):
        assert report.metrics[name] is None
        assert report.metric_status[name] == "no_scores"
    as_json(report)


def test_class_never_predicted(wine: tuple[np.ndarray, np.ndarray]) -> None:
    y, proba = wine
    never_two = proba.copy()
    never_two[:, 2] = 0.0
    never_two /= never_two.sum(axis=1, keepdims=True)
    report = compute_performance(y, scores=never_two,
                                 options=PerformanceOptions("classification", classes=(0, 1, 2)))
    assert report.metrics["precision"] != report.metrics["recall"]
    check_multiclass(report, y, never_two, [0, 1, 2])
    binary = compute_performance(np.array([0, 1, 1]), np.array([0, 0, 0]), options=BINARY)
    assert binary.metrics["precision"] == 0.0  # zero_division=0
    assert binary.metrics["recall"] == 0.0


def test_class_absent_from_labels_skips_its_curve(wine: tuple[np.ndarray, np.ndarray]) -> None:
    # scikit-learn answers NaN for ROC AUC (and refuses the scores for AP) when a class has no
    # label in the window; ours is the macro over the classes present.
    y, proba = wine
    keep = y != 1
    report = compute_performance(y[keep], scores=proba[keep],
                                 options=PerformanceOptions("classification", classes=(0, 1, 2)))
    for name, function in (("roc_auc", skm.roc_auc_score),
                           ("average_precision", skm.average_precision_score)):
        per_class = [function(y[keep] == c, proba[keep][:, c]) for c in (0, 2)]
        assert report.metrics[name] == approx(np.mean(per_class)), name
    assert report.metrics["log_loss"] == approx(skm.log_loss(y[keep], proba[keep],
                                                             labels=[0, 1, 2]))


def test_one_class_only(rng: np.random.Generator) -> None:
    y = np.ones(50, dtype=int)
    score = rng.random(50)
    report = compute_performance(y, scores=score, options=BINARY)
    for name in ("roc_auc", "average_precision"):
        assert report.metrics[name] is None
        assert report.metric_status[name] == "single_class"
    predicted = (score >= 0.5).astype(int)
    assert report.metrics["accuracy"] == approx(skm.accuracy_score(y, predicted))
    assert report.metrics["recall"] == approx(skm.recall_score(y, predicted))
    assert report.metrics["brier"] == approx(skm.brier_score_loss(y, score, pos_label=1))
    assert report.metrics["log_loss"] == approx(skm.log_loss(y, score, labels=[0, 1]))
    assert report.confusion_matrix is not None
    assert report.confusion_matrix.labels == (0, 1)
    as_json(report)
    multiclass = compute_performance([2, 2, 2], scores=[[0.1, 0.2, 0.7]] * 3,
                                     options=PerformanceOptions("classification",
                                                                classes=(0, 1, 2)))
    assert multiclass.metrics["roc_auc"] is None
    assert multiclass.metric_status["roc_auc"] == "single_class"
    as_json(multiclass)


def test_no_labels() -> None:
    report = compute_performance([None, np.nan, None], scores=[0.2, 0.8, 0.6], options=BINARY)
    assert report.status == "no_labels"
    assert report.n_labelled == 0
    assert report.label_coverage == 0.0
    assert report.confusion_matrix is None
    assert all(value is None for value in report.metrics.values())
    assert set(report.metric_status.values()) == {"no_labels"}
    document = as_json(report)
    assert document["metrics"]["accuracy"] is None
    empty = compute_performance([], [], options=REGRESSION)
    assert empty.label_coverage is None
    assert as_json(empty)["status"] == "no_labels"
    multiclass = compute_performance([None], scores=[[0.2, 0.3, 0.5]],
                                     options=PerformanceOptions("classification"))
    assert "f1_weighted" in multiclass.metrics


def test_float_label_column_reads_integral_classes() -> None:
    # NaN for a missing label makes the column float; the classes stay 0 and 1.
    report = compute_performance(np.array([1.0, 0.0, np.nan, 1.0]), scores=[0.9, 0.2, 0.5, 0.4],
                                 options=BINARY)
    assert as_json(report)["confusion_matrix"] == {"labels": [0, 1], "matrix": [[1, 0], [1, 1]]}
    nullable = compute_performance(pd.Series([1, 0, None, 1], dtype="Int64"),
                                   scores=[0.9, 0.2, 0.5, 0.4], options=BINARY)
    assert nullable.metrics == report.metrics


def test_missing_labels_set_coverage(rng: np.random.Generator) -> None:
    y = rng.integers(0, 2, 200).astype(object)
    score = rng.random(200)
    y[::4] = None
    y[1::8] = np.nan
    report = compute_performance(pd.Series(y), scores=score, options=BINARY, n_total=400)
    labelled = ~pd.isna(y)
    assert report.n_labelled == int(labelled.sum())
    assert report.label_coverage == approx(labelled.sum() / 400)
    assert report.metrics["roc_auc"] == approx(
        skm.roc_auc_score(y[labelled].astype(int), score[labelled]))


def test_diabetes_regression_equals_sklearn() -> None:
    data = load_diabetes()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.5, random_state=0)
    predicted = LinearRegression().fit(x_train, y_train).predict(x_test)
    report = compute_performance(y_test, predicted, options=REGRESSION)
    expected = {
        "mae": skm.mean_absolute_error(y_test, predicted),
        "mse": skm.mean_squared_error(y_test, predicted),
        "rmse": skm.root_mean_squared_error(y_test, predicted),
        "mape": skm.mean_absolute_percentage_error(y_test, predicted),
        "msle": skm.mean_squared_log_error(y_test, predicted),
        "rmsle": skm.root_mean_squared_log_error(y_test, predicted),
        "median_ae": skm.median_absolute_error(y_test, predicted),
        "r2": skm.r2_score(y_test, predicted),
        "mean_error": np.mean(predicted - y_test),
    }
    assert list(report.metrics) == list(expected)
    for name, value in expected.items():
        assert report.metrics[name] == approx(value), name
    assert report.confusion_matrix is None
    assert report.metric_status == {}
    assert as_json(report)["task"] == "regression"


def test_regression_degenerate_cases(rng: np.random.Generator) -> None:
    guess_constant = rng.normal(3, 1, 20)
    constant = compute_performance(np.full(20, 3.1), guess_constant, options=REGRESSION)
    assert constant.metrics["r2"] is None
    assert constant.metric_status["r2"] == "constant_target"
    assert constant.metrics["mae"] == approx(skm.mean_absolute_error(np.full(20, 3.1),
                                                                     guess_constant))
    as_json(constant)
    # Between -1 and 0 the log errors are defined (scikit-learn >= 1.5 computes them).
    small = np.array([-0.5, 0.2, 1.5, 3.0])
    guess = np.array([-0.2, 0.1, 2.0, 2.5])
    report = compute_performance(small, guess, options=REGRESSION)
    assert report.metrics["msle"] == approx(skm.mean_squared_log_error(small, guess))
    assert report.metrics["rmsle"] == approx(skm.root_mean_squared_log_error(small, guess))
    below = np.array([-2.0, 0.2, 1.5, 3.0])
    out = compute_performance(below, guess, options=REGRESSION)
    assert out.metrics["msle"] is None
    assert out.metric_status["msle"] == "out_of_domain"
    assert out.metrics["mse"] == approx(skm.mean_squared_error(below, guess))
    with pytest.raises(ValueError, match="less than or equal to -1"):
        skm.mean_squared_log_error(below, guess)
    as_json(out)
    zero = compute_performance([0.0, 1.0, 2.0], [0.5, 1.0, 2.5], options=REGRESSION)
    assert zero.metrics["mape"] is None
    assert zero.metric_status["mape"] == "zero_target"
    as_json(zero)


def test_ece_hand_computation_with_scores_on_bin_edges() -> None:
    # Bins close on the right: 0.5 falls in (0.4, 0.5], 0.2 in (0.1, 0.2], 0.0 in [0, 0.1].
    y = np.array([0, 1, 1, 0, 1, 0])
    score = np.array([0.0, 0.5, 0.5, 0.2, 0.95, 0.45])
    report = compute_performance(y, scores=score, options=BINARY)
    by_hand = (abs(0 - 0.0) + abs(2 - 1.45) + abs(0 - 0.2) + abs(1 - 0.95)) / 6
    assert report.metrics["ece"] == approx(by_hand)
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10)
    counts = np.array([1, 1, 3, 1])
    assert report.metrics["ece"] == approx(np.sum(counts / 6 * np.abs(prob_true - prob_pred)))


def test_label_delay() -> None:
    start = pd.Timestamp("2026-01-01T00:00Z")
    delays = np.array([10.0, 20.0, 30.0, 40.0, 3600.0])
    predicted = [start] * 6
    labelled = [start + pd.Timedelta(seconds=d) for d in delays] + [None]
    result = label_delay(predicted, labelled)
    assert result.n == 5
    assert result.median_seconds == approx(np.percentile(delays, 50))
    assert result.p95_seconds == approx(np.percentile(delays, 95))
    assert label_delay([start], [None]).to_dict() == {"n": 0, "median_seconds": None,
                                                      "p95_seconds": None}


def test_performance_by_bucket_equals_per_bucket_compute(rng: np.random.Generator) -> None:
    n = 600
    times = pd.Timestamp("2026-03-01T00:00Z") + pd.to_timedelta(rng.uniform(0, 3 * 86400, n),
                                                                unit="s")
    y = rng.integers(0, 2, n).astype(object)
    y[rng.random(n) < 0.3] = None
    score = rng.random(n)
    buckets = performance_by_bucket(times, y, scores=score, options=BINARY, bucket="1D")
    assert [b.start.day for b in buckets] == [1, 2, 3]
    day = np.asarray(times.day)
    for bucket in buckets:
        rows = day == bucket.start.day
        expected = compute_performance(y[rows], scores=score[rows], options=BINARY)
        assert bucket.report.n_total == int(rows.sum())
        assert bucket.report.label_coverage == approx(expected.label_coverage)
        for name, value in expected.metrics.items():
            assert bucket.report.metrics[name] == approx(value), name
        assert bucket.to_dict()["start"].endswith("Z")
        json.dumps(bucket.to_dict(), allow_nan=False)
    for bucket_width in ("MS", "1x"):
        with pytest.raises(OptionsError, match="fixed frequency"):
            performance_by_bucket(times, y, scores=score, options=BINARY, bucket=bucket_width)


def test_bad_inputs_and_options() -> None:
    with pytest.raises(OptionsError, match="threshold"):
        PerformanceOptions("classification", threshold=0.0)
    with pytest.raises(OptionsError, match="task"):
        PerformanceOptions("ranking")  # type: ignore[arg-type]
    with pytest.raises(OptionsError, match="positive_label"):
        PerformanceOptions("classification", positive_label="yes", classes=("a", "b"))
    with pytest.raises(OptionsError, match="n_bins_ece"):
        PerformanceOptions("classification", n_bins_ece=0)
    with pytest.raises(PerformanceInputError, match="rows"):
        compute_performance([0, 1], [0], options=BINARY)
    with pytest.raises(PerformanceInputError, match="not one of the classes"):
        compute_performance([0, 1, 2], [0, 1, 1],
                            options=PerformanceOptions("classification", classes=(0, 1)))
    with pytest.raises(PerformanceInputError, match="needs y_pred or scores"):
        compute_performance([0, 1], options=BINARY)
    with pytest.raises(PerformanceInputError, match=r"set options\.classes"):
        compute_performance(["yes", "yes"], scores=[0.2, 0.9],
                            options=PerformanceOptions("classification", positive_label="yes"))
    with pytest.raises(PerformanceInputError, match="not finite"):
        compute_performance([0, 1], scores=[0.2, np.nan], options=BINARY)
    with pytest.raises(PerformanceInputError, match="regression needs y_pred"):
        compute_performance([1.0], options=REGRESSION)
