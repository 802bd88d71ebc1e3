"""Classification metrics of one window's encoded labels, predictions and scores.

Definitions follow scikit-learn (sklearn.metrics user guide, "Classification metrics"):
`accuracy_score`; `precision_score`, `recall_score`, `f1_score` with `zero_division=0`
(a ratio with nothing to divide is 0.0: precision when nothing is predicted positive,
recall when nothing is positive), binary for the positive label, and for multiclass both
`average="macro"` and `"weighted"` over the classes present in the labels or the
predictions (scikit-learn's `labels=None`); `confusion_matrix`; ROC AUC and average
precision (binary; multiclass one-vs-rest macro); `log_loss`; `brier_score_loss`.
Where scikit-learn answers NaN or raises, the metric is None with a status instead.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from detectors.performance.inputs import ClassArrays
from detectors.performance.result import ConfusionMatrix, MetricStatus
from detectors.performance.scores import (
    Flags,
    Floats,
    are_probabilities,
    average_precision,
    brier,
    expected_calibration_error,
    log_loss,
    roc_auc,
)

Metrics = dict[str, float | None]
Statuses = dict[str, MetricStatus]

COUNT_METRICS = ("accuracy", "precision", "recall", "f1")
WEIGHTED_METRICS = ("precision_weighted", "recall_weighted", "f1_weighted")
SCORE_METRICS = ("roc_auc", "average_precision", "log_loss", "brier", "ece")
PROBABILITY_METRICS = ("log_loss", "brier", "ece")


def metric_names(n_classes: int) -> tuple[str, ...]:
    """The metric keys of a problem with `n_classes` classes (weighted ones for multiclass).

    Examples:
        >>> metric_names(2)
        ('accuracy', 'precision', 'recall', 'f1', 'roc_auc', 'average_precision', 'log_loss', 'brier', 'ece')
    """  # noqa: E501
    weighted = WEIGHTED_METRICS if n_classes > 2 else ()
    return COUNT_METRICS + weighted + SCORE_METRICS


def _ratio(numerator: npt.NDArray[np.float64], denominator: npt.NDArray[np.float64]) -> Floats:
    # zero_division=0: scikit-learn's value for 0/0 when zero_division=0 is passed.
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, 0.0)


def confusion_counts(data: ClassArrays) -> npt.NDArray[np.int64]:
    """Counts (k x k): rows are the true class, columns the predicted one (scikit-learn's layout).

    Examples:
        >>> from detectors.performance.inputs import ClassArrays
        >>> data = ClassArrays((0, 1), 1, np.array([0, 1, 1]), np.array([0, 0, 1]), None)
        >>> confusion_counts(data).tolist()
        [[1, 0], [1, 1]]
    """
    k = len(data.classes)
    flat = np.bincount(data.true * k + data.predicted, minlength=k * k)
    return flat.reshape(k, k).astype(np.int64)


def confusion_matrix(data: ClassArrays) -> ConfusionMatrix:
    """The confusion matrix over every class of the class order.

    Examples:
        >>> from detectors.performance.inputs import ClassArrays
        >>> data = ClassArrays(("no", "yes"), 1, np.array([0, 1]), np.array([1, 1]), None)
        >>> confusion_matrix(data).to_dict()
        {'labels': ['no', 'yes'], 'matrix': [[0, 1], [0, 1]]}
    """
    counts = confusion_counts(data)
    return ConfusionMatrix(data.classes, tuple(tuple(int(c) for c in row) for row in counts))


def _count_metrics(data: ClassArrays) -> Metrics:
    counts = confusion_counts(data).astype(np.float64)
    true_positives = np.diag(counts)
    predicted = counts.sum(axis=0)
    actual = counts.sum(axis=1)
    precision = _ratio(true_positives, predicted)
    recall = _ratio(true_positives, actual)
    f1 = _ratio(2.0 * true_positives, predicted + actual)
    metrics: Metrics = {"accuracy": float(np.mean(data.true == data.predicted))}
    if data.positive is not None:
        index = data.positive
        metrics.update(precision=float(precision[index]), recall=float(recall[index]),
                       f1=float(f1[index]))
        return metrics
    present = (predicted + actual) > 0
    weights = actual[present]
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        metrics[name] = float(np.mean(values[present]))
        metrics[f"{name}_weighted"] = float(np.sum(values[present] * weights) / weights.sum())
    return metrics


def _one_vs_rest(data: ClassArrays, proba: Floats, metric: str) -> float | None:
    function = roc_auc if metric == "roc_auc" else average_precision
    if data.positive is not None:
        return function(data.true == data.positive, proba[:, data.positive])
    # Macro over the classes present in the labels: a class absent from the window has no
    # curve (scikit-learn gives NaN for ROC AUC and refuses the score column for AP).
    values = [function(data.true == c, proba[:, c]) for c in np.unique(data.true)]
    defined = [value for value in values if value is not None]
    return float(np.mean(defined)) if len(defined) >= 2 else None


def _calibration_pair(data: ClassArrays, proba: Floats) -> tuple[Flags, Floats]:
    if data.positive is not None:
        return data.true == data.positive, proba[:, data.positive]
    top = np.argmax(proba, axis=1)
    return top == data.true, proba[np.arange(len(top)), top]


def classification_metrics(data: ClassArrays, n_bins_ece: int) -> tuple[Metrics, Statuses]:
    """Every classification metric of a window with at least one labelled row.

    Examples:
        >>> from detectors.performance.inputs import ClassArrays
        >>> data = ClassArrays((0, 1), 1, np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]),
        ...                    np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]]))
        >>> metrics, statuses = classification_metrics(data, n_bins_ece=10)
        >>> metrics["accuracy"], metrics["recall"], metrics["roc_auc"], statuses
        (0.75, 0.5, 1.0, {})
    """
    metrics = _count_metrics(data)
    statuses: Statuses = {}
    proba = data.proba
    if proba is None:
        for name in SCORE_METRICS:
            metrics[name] = None
            statuses[name] = "no_scores"
        return metrics, statuses
    for name in ("roc_auc", "average_precision"):
        metrics[name] = _one_vs_rest(data, proba, name)
        if metrics[name] is None:
            statuses[name] = "single_class"
    if not are_probabilities(proba):
        for name in PROBABILITY_METRICS:
            metrics[name] = None
            statuses[name] = "not_probabilities"
        return metrics, statuses
    metrics["log_loss"] = log_loss(data.true, proba)
    metrics["brier"] = brier(data.true, proba, data.positive)
    metrics["ece"] = expected_calibration_error(*_calibration_pair(data, proba), n_bins_ece)
    return metrics, statuses
