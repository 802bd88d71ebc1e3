"""Confidence-based performance estimation (CBPE), as NannyML 0.13.1 computes it.

Fitted once on a reference with labels, a `CBPE` estimates ROC AUC, F1, precision,
recall and accuracy of a window that has only scores and predictions, with NannyML's
sampling error and its band (value -/+ 3 sampling errors, clipped to [0, 1]).

NannyML's `nannyml/performance_estimation/confidence_based/cbpe.py` (`_fit_binary`,
`_fit_multiclass`, `_calibrate_predicted_probabilities`) is followed step by step:

- binary: whether to calibrate is decided once on the reference
  (`detectors.estimation.calibration.needs_calibration`); if so, isotonic regression
  fitted on the whole reference calibrates every window;
- multiclass: the same decision per class, one-vs-rest (a class that fails it keeps its
  scores), then each row is renormalised to sum 1 (1/K where the sum is 0);
- the sampling-error components come from the reference's raw scores, labels and
  predictions (`detectors.estimation.sampling_error`); the estimates from the calibrated
  window scores, ROC AUC ordering rows by raw score (`detectors.estimation.estimates`).

Classes are processed in sorted order, as NannyML does (it sorts the class names), so
sums over classes round as NannyML's. Where this module differs: a window row with a
missing score or prediction is left out (NannyML raises on NaN scores it must
calibrate), an empty window gives None rather than an error, scores outside [0, 1] and
predictions that are not a known class are refused, and two-column scores are refused
(NannyML's one-hot encoding collapses two classes to one column). NannyML's alert
thresholds (from realized performance on reference chunks) are not part of this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from detectors.errors import EstimationError
from detectors.estimation.calibration import IsotonicCalibrator, fit_isotonic, needs_calibration
from detectors.estimation.estimates import (
    METRICS,
    FloatArray,
    Metric,
    estimate_binary,
    estimate_multiclass,
    estimate_roc_auc,
)
from detectors.estimation.result import EstimatedMetric, EstimatedPerformance
from detectors.estimation.sampling_error import (
    MetricSamplingError,
    binary_sampling_errors,
    multiclass_sampling_errors,
)
from detectors.report import finite_or_none

# nannyml/sampling_error/__init__.py: SAMPLING_ERROR_RANGE, the band's half-width in errors.
SAMPLING_ERROR_RANGE = 3


@dataclass(frozen=True, slots=True, eq=False)
class CBPE:
    """A CBPE estimator fitted on a reference: calibrators and sampling-error components.

    Build it with `CBPE.fit`. `classes` is None for a binary model (labels 0 and 1,
    scores the probability of 1) and the class labels in sorted order for a multiclass
    one; `columns` maps them to the columns of the scores given (`scores[:, columns]`).
    `calibrators` holds one entry per class (one for binary), None where the scores are
    used as they are.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(size=5000)
        >>> y_true = (rng.uniform(size=5000) < p).astype(int)
        >>> cbpe = CBPE.fit(y_true, p, (p >= 0.5).astype(int))
        >>> window = rng.uniform(size=1000)
        >>> result = cbpe.estimate(window, (window >= 0.5).astype(int))
        >>> round(result.metrics["accuracy"].value, 2), result.metrics["accuracy"].n
        (0.75, 1000)
    """

    classes: tuple[Any, ...] | None
    columns: tuple[int, ...]
    calibrators: tuple[IsotonicCalibrator | None, ...]
    sampling_errors: Mapping[Metric, MetricSamplingError]
    n_reference: int

    @property
    def calibrated(self) -> bool:
        """Whether the scores of any class are calibrated."""
        return any(calibrator is not None for calibrator in self.calibrators)

    @classmethod
    def fit(cls, reference_y_true: npt.ArrayLike,
            reference_scores: npt.ArrayLike, reference_y_pred: npt.ArrayLike,
            *, classes: Sequence[Any] | None = None) -> CBPE:
        """Fit on a labelled reference: decide and fit calibration, keep the error components.

        Args:
            reference_y_true: Labels: 0/1 for a binary model, class labels for a
                multiclass one. No missing values (NannyML refuses them too).
            reference_scores: Binary: 1-D probability of class 1. Multiclass: (n, K)
                probabilities, one column per class in the order of `classes`. Values in
                [0, 1], no missing values.
            reference_y_pred: The model's predictions (0/1, or class labels); rows where
                it is missing are left out of the metrics that need it, as in NannyML.
            classes: Multiclass only: the class of each score column. Default: the
                sorted distinct labels of `reference_y_true`.

        Raises:
            EstimationError: On mismatched lengths, missing labels or scores, labels or
                predictions outside the classes, a class absent from the labels, no
                prediction at all, scores outside [0, 1], or a reference too small to
                test calibration.

        Examples:
            >>> import numpy as np
            >>> rng = np.random.default_rng(1)
            >>> p = rng.dirichlet([1.0, 1.0, 1.0], size=3000)
            >>> labels = np.array(["a", "b", "c"])
            >>> y_true = labels[[rng.choice(3, p=row) for row in p]]
            >>> cbpe = CBPE.fit(y_true, p, labels[p.argmax(axis=1)])
            >>> cbpe.classes, cbpe.n_reference
            (('a', 'b', 'c'), 3000)
        """
        scores = _scores(reference_scores, "reference_scores")
        if len(scores) == 0:
            raise EstimationError("the reference is empty; CBPE needs labelled rows to fit")
        if np.isnan(scores).any():
            raise EstimationError("reference_scores has missing values; drop those rows first")
        y_true = _labels(reference_y_true, len(scores), "reference_y_true")
        y_pred = _labels(reference_y_pred, len(scores), "reference_y_pred")
        if pd.isna(y_true).any():
            raise EstimationError("reference_y_true has missing labels; drop those rows first")
        if pd.isna(y_pred).all():
            raise EstimationError("reference_y_pred is missing on every row; CBPE needs the "
                                  "model's predictions on the reference")
        if scores.ndim == 1:
            if classes is not None:
                raise EstimationError("classes is for multiclass scores of shape (n, K); "
                                      "binary scores are the probability of label 1")
            return cls._fit_binary(y_true, scores, y_pred)
        return cls._fit_multiclass(y_true, scores, y_pred, classes)

    @classmethod
    def _fit_binary(cls, y_true_labels: npt.NDArray[Any], scores: FloatArray,
                    y_pred_labels: npt.NDArray[Any]) -> CBPE:
        y_true = _binary(y_true_labels, "reference_y_true")
        y_pred = _binary(y_pred_labels, "reference_y_pred")
        calibrator = fit_isotonic(scores, y_true) if needs_calibration(y_true, scores) else None
        return cls(None, (0,), (calibrator,), binary_sampling_errors(y_true, scores, y_pred),
                   len(scores))

    @classmethod
    def _fit_multiclass(cls, y_true_labels: npt.NDArray[Any], scores: FloatArray,
                        y_pred_labels: npt.NDArray[Any], classes: Sequence[Any] | None) -> CBPE:
        given = tuple(classes) if classes is not None else _distinct(y_true_labels)
        if len(given) != scores.shape[1]:
            raise EstimationError(f"reference_scores has {scores.shape[1]} columns but there are "
                                  f"{len(given)} classes {list(given)}")
        if len(given) < 3:
            raise EstimationError("multiclass CBPE needs at least 3 classes; for two, pass the "
                                  "probability of one class as 1-D scores with 0/1 labels")
        if len(set(given)) != len(given):
            raise EstimationError(f"classes has duplicates: {list(given)}")
        columns = _sorted_columns(given)
        ordered = tuple(given[c] for c in columns)
        scores = scores[:, columns]
        true_onehot = _onehot(y_true_labels, ordered, "reference_y_true")
        absent = [label for label, count in zip(ordered, true_onehot.sum(axis=0), strict=True)
                  if count == 0]
        if absent:
            # NannyML refuses it too: "y_pred_proba class ... does not match reference data".
            raise EstimationError(f"classes {absent} never occur in reference_y_true")
        pred_onehot = _onehot(y_pred_labels, ordered, "reference_y_pred")
        calibrators = []
        for k in range(len(ordered)):
            truth = true_onehot[:, k]
            fitted = needs_calibration(truth, scores[:, k])
            calibrators.append(fit_isotonic(scores[:, k], truth) if fitted else None)
        return cls(ordered, columns, tuple(calibrators),
                   multiclass_sampling_errors(true_onehot, scores, pred_onehot), len(scores))

    def estimate(self, scores: npt.ArrayLike,
                 y_pred: npt.ArrayLike) -> EstimatedPerformance:
        """Estimate the window's metrics from its scores and predictions, without labels.

        Args:
            scores: Scores shaped as the reference's (1-D, or (n, K) in the column order
                given to `fit`). Rows with a missing score are left out.
            y_pred: The model's predictions for the same rows; rows where it is missing
                are left out of every metric but ROC AUC (as NannyML).

        Raises:
            EstimationError: On a shape or length that does not match, scores outside
                [0, 1], or predictions that are not 0/1 (binary) or a known class.

        Examples:
            >>> import numpy as np
            >>> rng = np.random.default_rng(2)
            >>> p = rng.uniform(size=4000)
            >>> cbpe = CBPE.fit((rng.uniform(size=4000) < p).astype(int), p, (p > 0.5).astype(int))
            >>> result = cbpe.estimate(np.array([0.9, np.nan, 0.2]), np.array([1, 1, np.nan]))
            >>> result.n, result.metrics["roc_auc"].n, result.metrics["accuracy"].n
            (3, 2, 1)
        """
        values = _scores(scores, "scores")
        expected_ndim = 1 if self.classes is None else 2
        if values.ndim != expected_ndim or (
                self.classes is not None and values.shape[1] != len(self.classes)):
            raise EstimationError(f"scores has shape {values.shape}; this CBPE was fitted on "
                                  + ("1-D scores" if self.classes is None
                                     else f"(n, {len(self.classes)}) scores"))
        labels = _labels(y_pred, len(values), "y_pred")
        if self.classes is None:
            estimates, n_scored, n_predicted = self._estimate_binary(values, labels)
        else:
            estimates, n_scored, n_predicted = self._estimate_multiclass(
                self.classes, values, labels)
        metrics = {metric: self._metric(metric, value,
                                        n_scored if metric == "roc_auc" else n_predicted)
                   for metric, value in estimates.items()}
        return EstimatedPerformance(len(values), self.calibrated, metrics)

    def _estimate_binary(self, scores: FloatArray,
                         labels: npt.NDArray[Any]) -> tuple[dict[Metric, float], int, int]:
        scored = ~np.isnan(scores)
        raw, predicted = scores[scored], _binary(labels, "y_pred")[scored]
        (calibrator,) = self.calibrators
        calibrated = raw if calibrator is None else calibrator.calibrate(raw)
        both = ~np.isnan(predicted)
        estimates: dict[Metric, float] = {
            metric: (estimate_roc_auc(calibrated, raw) if metric == "roc_auc"
                     else estimate_binary(metric, calibrated[both], predicted[both]))
            for metric in METRICS}
        return estimates, int(scored.sum()), int(both.sum())

    def _estimate_multiclass(self, classes: tuple[Any, ...], scores: FloatArray,
                             labels: npt.NDArray[Any]) -> tuple[dict[Metric, float], int, int]:
        onehot = _onehot(labels, classes, "y_pred")
        scores = scores[:, self.columns]
        scored = ~np.isnan(scores).any(axis=1)
        raw, onehot = scores[scored], onehot[scored]
        calibrated = self._calibrate_multiclass(raw)
        both = onehot.sum(axis=1) > 0
        estimates: dict[Metric, float] = {
            metric: (estimate_multiclass(metric, calibrated, raw, onehot) if metric == "roc_auc"
                     else estimate_multiclass(metric, calibrated[both], raw[both], onehot[both]))
            for metric in METRICS}
        return estimates, int(scored.sum()), int(both.sum())

    def _metric(self, metric: Metric, value: float, n: int) -> EstimatedMetric:
        if n == 0:
            return EstimatedMetric(None, None, None, None, 0)
        # NannyML's arithmetic (NaN and inf included); JSON-unsafe numbers become None after it.
        error = self.sampling_errors[metric].at(n)
        with np.errstate(invalid="ignore"):
            upper = float(np.minimum(1, value + SAMPLING_ERROR_RANGE * error))
            lower = float(np.maximum(0, value - SAMPLING_ERROR_RANGE * error))
        return EstimatedMetric(finite_or_none(value), finite_or_none(error),
                               finite_or_none(lower), finite_or_none(upper), n)

    def _calibrate_multiclass(self, scores: FloatArray) -> FloatArray:
        # nannyml/.../cbpe.py, _calibrate_predicted_probabilities: calibrate each class, then
        # renormalise each row (1/K where the calibrated row sums to 0).
        calibrated = np.zeros(scores.shape)
        for k, calibrator in enumerate(self.calibrators):
            column = scores[:, k]
            calibrated[:, k] = column if calibrator is None else calibrator.calibrate(column)
        total = np.sum(calibrated, axis=1)[:, np.newaxis]
        uniform = np.full_like(calibrated, 1 / len(self.calibrators))
        result: FloatArray = np.divide(calibrated, total, out=uniform, where=total != 0)
        return result


def _scores(values: npt.ArrayLike, name: str) -> FloatArray:
    try:
        scores = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EstimationError(f"{name} must be numbers: {exc}") from exc
    if scores.ndim not in (1, 2):
        raise EstimationError(f"{name} must be 1-D (binary) or (n, K) (multiclass), "
                              f"got shape {scores.shape}")
    finite = scores[~np.isnan(scores)]
    bad = finite[(finite < 0) | (finite > 1)]
    if bad.size:
        raise EstimationError(f"{name} must be probabilities in [0, 1], got {bad[0].item()!r}")
    return scores


def _labels(values: npt.ArrayLike, n: int, name: str) -> npt.NDArray[Any]:
    labels = np.asarray(values)
    if labels.ndim != 1 or len(labels) != n:
        raise EstimationError(f"{name} has shape {labels.shape}; expected {n} labels, "
                              "one per row of scores")
    return labels


def _binary(labels: npt.NDArray[Any], name: str) -> FloatArray:
    # 0/1 as floats, missing as NaN; NannyML compares with 1 and 0 and cannot take string labels.
    missing = pd.isna(labels)
    present = labels[~missing]
    try:
        numbers = present.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise EstimationError(f"{name} must be 0 or 1 for a binary model: {exc}") from exc
    bad = present[(numbers != 0) & (numbers != 1)]
    if bad.size:
        raise EstimationError(f"{name} must be 0 or 1 for a binary model, "
                              f"got {_plain(bad[0])!r}")
    result = np.full(len(labels), np.nan)
    result[~missing] = numbers
    return result


def _distinct(labels: npt.NDArray[Any]) -> tuple[Any, ...]:
    try:
        return tuple(sorted(set(labels.tolist())))
    except TypeError as exc:
        raise EstimationError(f"labels of mixed types cannot be ordered ({exc}); "
                              "pass classes=") from exc


def _sorted_columns(classes: tuple[Any, ...]) -> tuple[int, ...]:
    # NannyML iterates over sorted(class names); unorderable labels keep the order given.
    try:
        return tuple(sorted(range(len(classes)), key=lambda k: classes[k]))
    except TypeError:
        return tuple(range(len(classes)))


def _onehot(labels: npt.NDArray[Any], classes: tuple[Any, ...],
            name: str) -> npt.NDArray[np.int_]:
    # One column per class; a missing label is a row of zeros.
    missing = pd.isna(labels)
    codes = np.asarray(pd.Categorical(labels, categories=list(classes)).codes, dtype=np.intp)
    unknown = (codes < 0) & ~missing
    if unknown.any():
        raise EstimationError(f"{name} has {_plain(labels[unknown][0])!r}, which is not one of the "
                              f"classes {list(classes)}")
    onehot = np.zeros((len(labels), len(classes)), dtype=np.int_)
    rows = np.flatnonzero(codes >= 0)
    onehot[rows, codes[rows]] = 1
    return onehot


def _plain(value: Any) -> Any:
    # A numpy scalar as the Python value, so that messages read 'z' rather than np.str_('z').
    return value.item() if isinstance(value, np.generic) else value
