"""CBPE without NannyML: calibrated estimates track realized performance, edge cases hold.

Agreement with NannyML itself is tests/integration/test_cbpe_nannyml.py. Here:

- On scores that are calibrated by construction, the realized metric of a large window
  lies within the estimate's band (value -/+ 3 sampling errors), for every metric, binary
  and multiclass; so it does on miscalibrated scores, which CBPE calibrates. The band is
  the tolerance: it is what NannyML reports as the estimate's uncertainty, and with the
  seeds fixed the checks are deterministic.
- Degenerate windows: one row, one predicted class, missing values, empty; multiclass
  rows that do not sum to 1; JSON without NaN; refused inputs.
- The isotonic calibrator predicts exactly what scikit-learn's `IsotonicRegression`
  predicts.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from detectors.errors import EstimationError
from detectors.estimation import CBPE, METRICS, EstimatedPerformance
from detectors.estimation.calibration import fit_isotonic

CLASSES = ("a", "b", "c")


def _binary_model(rng: np.random.Generator, n: int, *, power: float = 1.0,
                  low: float = 0.0, high: float = 1.0) -> tuple[np.ndarray, ...]:
    """Labels drawn from p; the model reports p ** power (calibrated for power 1)."""
    p = rng.uniform(low, high, n)
    y_true = (rng.uniform(size=n) < p).astype(int)
    scores = p ** power
    return y_true, scores, (scores >= 0.5 ** power).astype(int)


def _multiclass_model(rng: np.random.Generator, n: int,
                      alpha: tuple[float, ...] = (1.0, 1.0, 1.0)) -> tuple[np.ndarray, ...]:
    p = rng.dirichlet(alpha, n)
    labels = np.array(CLASSES)
    y_true = labels[(rng.uniform(size=(n, 1)) > p.cumsum(axis=1)).sum(axis=1)]
    return y_true, p, labels[p.argmax(axis=1)]


def _realized_binary(y_true: np.ndarray, scores: np.ndarray,
                     y_pred: np.ndarray) -> dict[str, float]:
    return {"roc_auc": roc_auc_score(y_true, scores), "f1": f1_score(y_true, y_pred),
            "precision": precision_score(y_true, y_pred), "recall": recall_score(y_true, y_pred),
            "accuracy": accuracy_score(y_true, y_pred)}


def _realized_multiclass(y_true: np.ndarray, scores: np.ndarray,
                         y_pred: np.ndarray) -> dict[str, float]:
    return {"roc_auc": roc_auc_score(y_true, scores, multi_class="ovr", labels=list(CLASSES)),
            "f1": f1_score(y_true, y_pred, average="macro"),
            "precision": precision_score(y_true, y_pred, average="macro"),
            "recall": recall_score(y_true, y_pred, average="macro"),
            "accuracy": accuracy_score(y_true, y_pred)}


def _assert_within_band(result: EstimatedPerformance, realized: dict[str, float]) -> None:
    for metric in METRICS:
        estimate = result.metrics[metric]
        assert estimate.lower is not None
        assert estimate.upper is not None
        assert estimate.lower <= realized[metric] <= estimate.upper, (metric, estimate, realized)


# ------------------------------------------------------------------------ estimates vs truth

def test_calibrated_binary_scores_estimate_realized_performance(rng: np.random.Generator) -> None:
    cbpe = CBPE.fit(*_binary_model(rng, 20_000))
    y_true, scores, y_pred = _binary_model(rng, 20_000)
    result = cbpe.estimate(scores, y_pred)
    _assert_within_band(result, _realized_binary(y_true, scores, y_pred))
    assert result.n == 20_000
    assert result.metrics["accuracy"].sampling_error == pytest.approx(0.0031, abs=5e-4)


def test_miscalibrated_scores_are_calibrated_then_estimated(rng: np.random.Generator) -> None:
    cbpe = CBPE.fit(*_binary_model(rng, 20_000, power=3.0))
    assert cbpe.calibrated
    y_true, scores, y_pred = _binary_model(rng, 20_000, power=3.0)
    result = cbpe.estimate(scores, y_pred)
    assert result.calibrated
    _assert_within_band(result, _realized_binary(y_true, scores, y_pred))
    # Taken as probabilities, the cubed scores would put accuracy outside the band.
    naive = np.mean(np.where(y_pred == 1, scores, 1 - scores))
    accuracy = result.metrics["accuracy"]
    assert accuracy.sampling_error is not None
    assert abs(naive - accuracy_score(y_true, y_pred)) > 3 * accuracy.sampling_error


def test_separable_reference_is_not_calibrated(rng: np.random.Generator) -> None:
    y_true = rng.integers(0, 2, 2000)
    scores = np.where(y_true == 1, rng.uniform(0.6, 1.0, 2000), rng.uniform(0.0, 0.4, 2000))
    assert not CBPE.fit(y_true, scores, (scores > 0.5).astype(int)).calibrated


def test_a_shifted_window_lowers_the_estimate(rng: np.random.Generator) -> None:
    cbpe = CBPE.fit(*_binary_model(rng, 10_000))
    same = cbpe.estimate(*_binary_model(rng, 5000)[1:])
    # Scores crowd around 0.5: the model is less sure, so less accurate.
    shifted = cbpe.estimate(*_binary_model(rng, 5000, low=0.3, high=0.7)[1:])
    for metric in ("accuracy", "roc_auc"):
        before, after = same.metrics[metric], shifted.metrics[metric]
        assert before.lower is not None
        assert after.upper is not None
        assert after.upper < before.lower, metric


def test_multiclass_estimates_realized_performance(rng: np.random.Generator) -> None:
    cbpe = CBPE.fit(*_multiclass_model(rng, 20_000))
    y_true, scores, y_pred = _multiclass_model(rng, 20_000)
    result = cbpe.estimate(scores, y_pred)
    _assert_within_band(result, _realized_multiclass(y_true, scores, y_pred))


def test_multiclass_classes_default_to_sorted_labels_and_column_order_is_kept(
        rng: np.random.Generator) -> None:
    y_true, scores, y_pred = _multiclass_model(rng, 6000, alpha=(2.0, 1.0, 0.5))
    window_scores, window_pred = _multiclass_model(rng, 3000, alpha=(2.0, 1.0, 0.5))[1:]
    cbpe = CBPE.fit(y_true, scores, y_pred)
    assert cbpe.classes == CLASSES
    order = [2, 0, 1]
    permuted = CBPE.fit(y_true, scores[:, order], y_pred, classes=[CLASSES[k] for k in order])
    assert permuted.classes == CLASSES  # sorted inside, as NannyML
    assert (permuted.estimate(window_scores[:, order], window_pred).to_dict()
            == cbpe.estimate(window_scores, window_pred).to_dict())


# ---------------------------------------------------------------------------- degenerate input

def test_one_row_window(rng: np.random.Generator) -> None:
    cbpe = CBPE.fit(*_binary_model(rng, 5000))
    result = cbpe.estimate(np.array([0.8]), np.array([1]))
    roc_auc = result.metrics["roc_auc"]
    assert roc_auc.value == 0.5  # one point: the diagonal (NannyML gives 0.5 too)
    assert (roc_auc.lower, roc_auc.upper, roc_auc.n) == (0.0, 1.0, 1)
    accuracy = result.metrics["accuracy"]
    assert accuracy.value is not None
    assert accuracy.sampling_error == pytest.approx(
        cbpe.estimate(np.full(100, 0.8), np.ones(100)).metrics["accuracy"].sampling_error * 10)


def test_window_of_one_predicted_class(rng: np.random.Generator) -> None:
    cbpe = CBPE.fit(*_binary_model(rng, 5000))
    scores = rng.uniform(0.6, 1.0, 500)
    positive = cbpe.estimate(scores, np.ones(500, dtype=int)).metrics
    calibrated_mean = positive["accuracy"].value  # accuracy = mean p over predicted positives
    assert positive["precision"].value == pytest.approx(calibrated_mean)
    assert positive["recall"].value == 1.0  # no predicted negatives: no expected misses
    negative = cbpe.estimate(scores, np.zeros(500, dtype=int)).metrics
    # Nothing predicted positive: NannyML's estimates are 0, not NaN.
    assert (negative["precision"].value, negative["recall"].value, negative["f1"].value) == (
        0.0, 0.0, 0.0)


def test_missing_values_are_dropped(rng: np.random.Generator) -> None:
    cbpe = CBPE.fit(*_binary_model(rng, 5000))
    scores = rng.uniform(size=300)
    y_pred = (scores > 0.5).astype(float)
    clean = cbpe.estimate(scores, y_pred)
    holed_scores, holed_pred = scores.copy(), y_pred.copy()
    holed_scores[[3, 50]] = np.nan
    holed_pred[[3, 7]] = np.nan
    holed = cbpe.estimate(holed_scores, holed_pred)
    assert holed.n == 300
    assert holed.metrics["roc_auc"].n == 298  # ROC AUC needs no prediction
    assert holed.metrics["accuracy"].n == 297
    keep = ~np.isin(np.arange(300), [3, 7, 50])
    assert holed.metrics["accuracy"] == cbpe.estimate(scores[keep], y_pred[keep]).metrics[
        "accuracy"]
    assert holed.metrics["accuracy"] != clean.metrics["accuracy"]


def test_empty_window_gives_none(rng: np.random.Generator) -> None:
    cbpe = CBPE.fit(*_binary_model(rng, 5000))
    result = cbpe.estimate(np.array([]), np.array([]))
    assert result.n == 0
    assert all(m.value is None and m.sampling_error is None for m in result.metrics.values())


def test_multiclass_rows_are_renormalised(rng: np.random.Generator) -> None:
    # A separable reference (ROC AUC 1 for every class): no class is calibrated.
    onehot = np.eye(3)[rng.integers(0, 3, 3000)]
    labels = np.array(CLASSES)[onehot.argmax(axis=1)]
    cbpe = CBPE.fit(labels, onehot * 0.7 + 0.1, labels)
    assert not cbpe.calibrated
    rows = np.array([[0.2, 0.1, 0.1], [0.0, 0.0, 0.0], [0.3, 0.3, 0.4]])
    result = cbpe.estimate(rows, np.array(["a", "b", "c"]))
    # 0.2 / 0.4, the uniform 1/3 for a row of zeros, 0.4 / 1.0.
    assert result.metrics["accuracy"].value == pytest.approx((0.5 + 1 / 3 + 0.4) / 3)


def test_sampling_error_halves_when_the_window_quadruples(rng: np.random.Generator) -> None:
    for y_true, scores, y_pred in (_binary_model(rng, 5000), _multiclass_model(rng, 5000)):
        cbpe = CBPE.fit(y_true, scores, y_pred)
        small = cbpe.estimate(scores[:500], y_pred[:500]).metrics
        large = cbpe.estimate(scores[:2000], y_pred[:2000]).metrics
        for metric in METRICS:
            assert large[metric].sampling_error == pytest.approx(
                small[metric].sampling_error / 2, rel=1e-12), metric


def test_json_has_no_nan(rng: np.random.Generator) -> None:
    # A reference that never predicts positive: NannyML's precision error is NaN (0 / 0).
    y_true, scores, _ = _binary_model(rng, 2000)
    cbpe = CBPE.fit(y_true, scores, np.zeros(2000, dtype=int))
    document = cbpe.estimate(scores[:100], np.zeros(100, dtype=int)).to_dict()
    text = json.dumps(document, allow_nan=False)
    assert document["metrics"]["precision"]["sampling_error"] is None
    assert set(document) == {"method", "n", "calibrated", "metrics"}
    assert set(document["metrics"]) == set(METRICS)
    assert set(document["metrics"]["roc_auc"]) == {"value", "sampling_error", "lower", "upper",
                                                   "n"}
    assert json.loads(text)["method"] == "cbpe"


def test_fitted_estimator_is_frozen(rng: np.random.Generator) -> None:
    cbpe = CBPE.fit(*_binary_model(rng, 2000))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cbpe.n_reference = 3  # type: ignore[misc]


# ------------------------------------------------------------------------------ calibrator

def test_isotonic_calibrator_predicts_as_scikit_learn(rng: np.random.Generator) -> None:
    scores = np.round(rng.uniform(size=4000), 2)
    y_true = (rng.uniform(size=4000) < scores ** 2).astype(float)
    ours = fit_isotonic(scores, y_true)
    theirs = IsotonicRegression(out_of_bounds="clip").fit(scores, y_true)
    grid = np.concatenate([rng.uniform(-0.2, 1.2, 10_000), scores])
    np.testing.assert_array_equal(ours.calibrate(grid), theirs.predict(grid))


# -------------------------------------------------------------------------------- refusals

def test_refused_inputs(rng: np.random.Generator) -> None:
    y_true, scores, y_pred = _binary_model(rng, 1000)
    with pytest.raises(EstimationError, match="expected 1000 labels"):
        CBPE.fit(y_true[:10], scores, y_pred)
    with pytest.raises(EstimationError, match=r"probabilities in \[0, 1\], got 1.5"):
        CBPE.fit(y_true, np.r_[scores[:-1], 1.5], y_pred)
    with pytest.raises(EstimationError, match="reference_scores has missing values"):
        CBPE.fit(y_true, np.r_[scores[:-1], np.nan], y_pred)
    with pytest.raises(EstimationError, match="reference_y_true has missing labels"):
        CBPE.fit(np.r_[y_true[:-1], np.nan], scores, y_pred)
    with pytest.raises(EstimationError, match="must be 0 or 1 for a binary model, got 2"):
        CBPE.fit(np.r_[y_true[:-1], 2], scores, y_pred)
    with pytest.raises(EstimationError, match="classes is for multiclass"):
        CBPE.fit(y_true, scores, y_pred, classes=[0, 1])
    with pytest.raises(EstimationError, match="cannot be split to test calibration"):
        CBPE.fit(np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.3, 0.6, 0.7, 0.55]),
                 np.array([0, 0, 1, 1, 1]))
    cbpe = CBPE.fit(y_true, scores, y_pred)
    with pytest.raises(EstimationError, match=r"shape \(3, 2\)"):
        cbpe.estimate(np.full((3, 2), 0.5), np.zeros(3))
    with pytest.raises(EstimationError, match="y_pred must be 0 or 1"):
        cbpe.estimate(np.array([0.5]), np.array(["yes"]))


def test_refused_multiclass_inputs(rng: np.random.Generator) -> None:
    y_true, scores, y_pred = _multiclass_model(rng, 1000)
    with pytest.raises(EstimationError, match="at least 3 classes"):
        CBPE.fit(y_true, scores[:, :2], y_pred, classes=["a", "b"])
    with pytest.raises(EstimationError, match=r"classes \['d'\] never occur"):
        CBPE.fit(y_true, np.c_[scores, np.zeros(1000)], y_pred, classes=["a", "b", "c", "d"])
    cbpe = CBPE.fit(y_true, scores, y_pred)
    with pytest.raises(EstimationError, match="y_pred has 'z', which is not one of the classes"):
        cbpe.estimate(scores[:2], np.array(["a", "z"]))
