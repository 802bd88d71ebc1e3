"""CBPE's estimated metrics from calibrated probabilities and the model's own predictions.

Follows NannyML 0.13.1, `nannyml/performance_estimation/confidence_based/metrics.py`
(`estimate_roc_auc`, `estimate_f1`, `estimate_precision`, `estimate_recall`,
`estimate_accuracy` and the `MulticlassClassification*` metrics). With `p` the calibrated
probability of the positive class and the given 0/1 prediction, the expected confusion
matrix is TP = sum p over predicted positives, FP = sum (1 - p) over them, FN = sum p over
predicted negatives, TN = sum (1 - p) over them; precision, recall and F1 follow from it
and are 0 (not NaN) when their denominator is 0. A multiclass metric is the unweighted
mean of its one-vs-rest binary estimates, except accuracy: the mean calibrated
probability of the predicted class.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Metric = Literal["roc_auc", "f1", "precision", "recall", "accuracy"]
METRICS: tuple[Metric, ...] = ("roc_auc", "f1", "precision", "recall", "accuracy")
# nannyml/.../metrics.py, estimate_roc_auc: the expected ROC points are rounded to 5 decimals.
ROC_DECIMALS = 5


def estimate_roc_auc(calibrated: FloatArray, raw: FloatArray) -> float:
    """Expected ROC AUC: rows ordered by raw score, expected TP and FP counts as the curve.

    NannyML orders by `np.argsort(raw)[::-1]` (the default, unstable sort, reversed),
    rounds the cumulative counts to 5 decimals and integrates with sklearn's `auc`
    (trapezoids; NaN when a final count is 0; NaN when the curve is not monotonic, where
    sklearn raises). Tied raw scores are kept in that sort's order, not merged, which
    matters when tied raw scores have different calibrated probabilities (multiclass,
    after renormalisation).

    Examples:
        >>> import numpy as np
        >>> estimate_roc_auc(np.array([0.9, 0.1]), np.array([0.8, 0.3]))
        0.9
        >>> estimate_roc_auc(np.array([0.7]), np.array([0.7]))
        0.5
    """
    if len(raw) == 0:
        return float("nan")
    order = np.argsort(raw)[::-1]
    expected = calibrated[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        true_positives = np.cumsum(expected)
        false_positives = 1 + np.arange(len(expected)) - true_positives
        tps: FloatArray = np.round(np.concatenate([[0.0], true_positives]), ROC_DECIMALS)
        fps: FloatArray = np.round(np.concatenate([[0.0], false_positives]), ROC_DECIMALS)
        tpr = tps / tps[-1]
        fpr = fps / fps[-1]
        steps = np.diff(fpr)
        if np.any(steps < 0):
            if not np.all(steps <= 0):
                return float("nan")  # sklearn's auc: "x is neither increasing nor decreasing"
            return -_trapezoid(tpr, fpr)
        return _trapezoid(tpr, fpr)


def estimate_binary(metric: Metric, calibrated: FloatArray, predicted: npt.NDArray[Any]) -> float:
    """F1, precision, recall or accuracy expected from calibrated `p` and 0/1 predictions.

    Examples:
        >>> import numpy as np
        >>> p, y_pred = np.array([0.9, 0.6, 0.2]), np.array([1.0, 1.0, 0.0])
        >>> round(estimate_binary("precision", p, y_pred), 6)
        0.75
        >>> round(estimate_binary("accuracy", p, y_pred), 6)
        0.766667
    """
    if len(predicted) == 0:
        return float("nan")
    positive, negative = predicted == 1, predicted == 0
    tp = np.sum(np.where(positive, calibrated, 0))
    fp = np.sum(np.where(positive, 1 - calibrated, 0))
    fn = np.sum(np.where(negative, calibrated, 0))
    if metric == "accuracy":
        tn = np.sum(np.where(negative, 1 - calibrated, 0))
        return float((tp + tn) / len(predicted))
    if metric == "precision":
        denominator = tp + fp
    elif metric == "recall":
        denominator = tp + fn
    elif metric == "f1":
        denominator = tp + 0.5 * (fp + fn)
    else:
        raise ValueError(f"no confusion-matrix estimate for metric {metric!r}")
    return float(tp / denominator) if denominator != 0 else 0.0


def estimate_multiclass(metric: Metric, calibrated: FloatArray, raw: FloatArray,
                        pred_onehot: npt.NDArray[np.int_]) -> float:
    """A multiclass estimate: macro mean of one-vs-rest estimates; accuracy as NannyML's.

    `calibrated`, `raw` and `pred_onehot` are (n, K) in the same class order.

    Examples:
        >>> import numpy as np
        >>> p = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
        >>> pred = np.eye(3, dtype=int)[[0, 1, 2]]
        >>> round(estimate_multiclass("accuracy", p, p, pred), 6)
        0.633333
    """
    if len(calibrated) == 0:
        return float("nan")
    if metric == "accuracy":
        return float(np.mean(np.max(pred_onehot * calibrated, axis=1)))
    classes = range(calibrated.shape[1])
    if metric == "roc_auc":
        per_class = [estimate_roc_auc(calibrated[:, k], raw[:, k]) for k in classes]
    else:
        per_class = [estimate_binary(metric, calibrated[:, k], pred_onehot[:, k])
                     for k in classes]
    return float(np.mean(per_class))


def _trapezoid(y: FloatArray, x: FloatArray) -> float:
    # np.trapezoid's sum, as sklearn's auc computes it.
    return float(np.add.reduce(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
