"""CBPE's sampling errors: components fitted on the reference, scaled by the window's size.

Follows NannyML 0.13.1, `nannyml/sampling_error/binary_classification.py` and
`multiclass_classification.py`. Each metric keeps, from the reference labels and
predictions, the spread of an observation-level version of the metric and the share of
rows it rests on; a window of `n` rows then has

- binary: `std / sqrt(n * fraction)`;
- multiclass, one component per class (one-vs-rest, variances):
  `sqrt(sum_k var_k / (n * fraction_k)) / K`, times 1.2 for ROC AUC (NannyML's
  empirical correction); accuracy is one standard deviation over rows, `std / sqrt(n)`.

The error depends on the window only through `n`. The components are computed as
NannyML computes them, element order included, so the standard deviations agree to the
last bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.estimation.estimates import Metric

FloatArray = npt.NDArray[np.float64]
# nannyml/sampling_error/multiclass_classification.py: "std of class variances underestimated
# sampling error by 20% so we manually adjust result".
MULTICLASS_ROC_AUC_FACTOR = 1.2


@dataclass(frozen=True, slots=True)
class ErrorComponent:
    """The reference's spread for a metric (or one class of it) and the share of rows behind it."""

    spread: float
    fraction: float


@dataclass(frozen=True, slots=True)
class MetricSamplingError:
    """How one metric's sampling error follows from the window size.

    `pooled` is False for a single standard deviation (`std / sqrt(n * fraction)`) and
    True for one variance per class (`sqrt(sum var / (n * fraction)) / K * factor`).

    Examples:
        >>> MetricSamplingError((ErrorComponent(0.3, 1.0),), pooled=False).at(100)
        0.03
    """

    components: tuple[ErrorComponent, ...]
    pooled: bool
    factor: float = 1.0

    def at(self, n: int) -> float:
        """The sampling error for a window of `n` rows (NaN or inf where NannyML has them)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if not self.pooled:
                (component,) = self.components
                return float(np.float64(component.spread)
                             / np.sqrt(n * np.float64(component.fraction)))
            variances = [np.float64(c.spread) / (n * np.float64(c.fraction))
                         for c in self.components]
            return float(np.sqrt(np.sum(variances)) / len(variances) * self.factor)


def binary_sampling_errors(y_true: FloatArray, scores: FloatArray,
                           y_pred: FloatArray) -> dict[Metric, MetricSamplingError]:
    """Components of a binary model: 0/1 labels and predictions, raw reference scores.

    ROC AUC uses every row; the other metrics the rows whose prediction is not NaN (as
    NannyML's `common_nan_removal`).

    Examples:
        >>> import numpy as np
        >>> y = np.array([0.0, 0.0, 1.0, 1.0])
        >>> errors = binary_sampling_errors(y, np.array([0.1, 0.6, 0.4, 0.9]), y)
        >>> errors["accuracy"].at(4), errors["roc_auc"].at(2)
        (0.0, 0.25)
    """
    keep = ~np.isnan(y_pred)
    truth, pred = y_true[keep], y_pred[keep]
    tp, fp, fn = _counts(truth, pred)
    relevant = _observations(tp, fn + fp)
    if relevant.size == 0:
        f1 = ErrorComponent(np.nan, 0.0)
    else:
        correction = relevant.size / ((fn + fp) * 0.5 + tp)
        f1 = ErrorComponent(_std(relevant * correction), relevant.size / len(pred))
    rank_gaps, fraction = _rank_gaps(y_true, scores)
    single: dict[Metric, ErrorComponent] = {
        "roc_auc": ErrorComponent(_std(rank_gaps), fraction),
        "f1": f1,
        "precision": ErrorComponent(_std(_observations(tp, fp)),
                                    float(np.sum(pred)) / len(pred)),
        "recall": ErrorComponent(_std(_observations(tp, fn)),
                                 float(np.sum(truth)) / len(pred)),
        "accuracy": ErrorComponent(_std((truth == pred).astype(int)), 1.0),
    }
    return {metric: MetricSamplingError((component,), pooled=False)
            for metric, component in single.items()}


def multiclass_sampling_errors(
    true_onehot: npt.NDArray[np.int_], raw_scores: FloatArray, pred_onehot: npt.NDArray[np.int_],
) -> dict[Metric, MetricSamplingError]:
    """Components of a multiclass model from one-hot labels, raw scores and one-hot predictions.

    All three are (n, K) in the same class order; a row of `pred_onehot` that is all
    zero is a row without a prediction, and counts for ROC AUC only.

    Examples:
        >>> import numpy as np
        >>> onehot = np.eye(3, dtype=int)[[0, 1, 2, 0, 1, 2]]
        >>> errors = multiclass_sampling_errors(onehot, onehot * 0.8 + 0.1, onehot)
        >>> errors["accuracy"].at(6), errors["precision"].at(6)
        (0.0, 0.0)
    """
    keep = pred_onehot.sum(axis=1) > 0
    truth, pred = true_onehot[keep], pred_onehot[keep]
    per_class: dict[Metric, list[ErrorComponent]] = {
        "roc_auc": [], "f1": [], "precision": [], "recall": []}
    for k in range(true_onehot.shape[1]):
        gaps, fraction = _rank_gaps(true_onehot[:, k], raw_scores[:, k])
        per_class["roc_auc"].append(ErrorComponent(_var(gaps), fraction))
        tp, fp, fn = _counts(truth[:, k], pred[:, k])
        relevant = _observations(tp, fn + fp)
        per_class["f1"].append(ErrorComponent(_var(relevant), relevant.size / len(pred)))
        per_class["precision"].append(ErrorComponent(_var(_observations(tp, fp)),
                                                     float(np.sum(pred[:, k])) / len(pred)))
        per_class["recall"].append(ErrorComponent(_var(_observations(tp, fn)),
                                                  float(np.sum(truth[:, k])) / len(pred)))
    errors = {metric: MetricSamplingError(tuple(components), pooled=True)
              for metric, components in per_class.items()}
    errors["roc_auc"] = MetricSamplingError(tuple(per_class["roc_auc"]), pooled=True,
                                            factor=MULTICLASS_ROC_AUC_FACTOR)
    correct = (truth == pred).all(axis=1).astype(int)
    errors["accuracy"] = MetricSamplingError((ErrorComponent(_std(correct), 1.0),),
                                             pooled=False)
    return errors


def _counts(truth: npt.NDArray[np.generic], pred: npt.NDArray[np.generic]) -> tuple[int, int, int]:
    positive = pred == 1
    tp = int(np.sum((truth == pred) & positive))
    fp = int(np.sum((truth != pred) & positive))
    fn = int(np.sum((truth != pred) & (pred == 0)))
    return tp, fp, fn


def _observations(ones: int, zeros: int) -> FloatArray:
    # NannyML concatenates the hits (1) before the misses (0); the order fixes the rounding.
    return np.concatenate([np.ones(ones), np.zeros(zeros)])


def _std(values: npt.NDArray[Any]) -> float:
    # NaN for no rows, where NannyML gets NaN with a RuntimeWarning.
    return float(np.std(values)) if len(values) else float("nan")


def _var(values: npt.NDArray[Any]) -> float:
    return float(np.var(values)) if len(values) else float("nan")


def _rank_gaps(y_true: npt.NDArray[np.generic],
               scores: FloatArray) -> tuple[FloatArray, float]:
    """ROC AUC's rank gaps as NannyML computes them (`auroc_sampling_error_components`).

    AUROC as a Mann-Whitney statistic: with the minority class as positive, each
    positive's rank among the sorted scores minus its rank among the positives, over the
    number of negatives. The scores are sorted with np.argsort's default (unstable)
    sort, as NannyML's, so tied scores of both classes are ordered the same way; NannyML
    drops the smallest distinct value of `label * rank` (the 0 of the negatives).
    """
    truth = np.asarray(y_true)
    if np.mean(truth) > 0.5:
        truth = np.abs(truth - 1)
        scores = 1 - scores
    order = np.argsort(scores)
    truth = truth[order]
    positive_ranks = np.unique(truth * np.arange(len(truth)))[1:]
    gaps = positive_ranks - np.arange(len(positive_ranks))
    n_positive = np.sum(truth)
    n_negative = len(truth) - n_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.true_divide(gaps, n_negative), float(n_positive / len(truth))
