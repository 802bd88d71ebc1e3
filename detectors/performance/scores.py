"""Score-based classification metrics: ROC AUC, average precision, log loss, Brier, ECE.

Each equals its scikit-learn namesake (sklearn.metrics user guide, "Classification
metrics") to 1e-9 on the inputs where both are defined; tests/unit/detectors/
test_performance.py checks it. The expected calibration error has no scikit-learn function:
its definition is below (Naeini et al. 2015; Guo et al. 2017, "On Calibration of Modern
Neural Networks", eq. 3).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]

_EPS = float(np.finfo(np.float64).eps)


def roc_auc(is_positive: Flags, score: Floats) -> float | None:
    """Area under the ROC curve; None when the labels hold one class only.

    Computed as the Mann-Whitney statistic (the statistic over average ranks): each
    positive counts the negatives scored below it, and a tie between a positive and a
    negative as one half; the same area as scikit-learn's trapezoids over the distinct
    thresholds of `roc_auc_score`. A NaN score makes it NaN.

    Examples:
        >>> roc_auc(np.array([False, True, False, True]), np.array([0.1, 0.4, 0.4, 0.8]))
        0.875
    """
    n_positive = int(is_positive.sum())
    n_negative = len(is_positive) - n_positive
    if n_positive == 0 or n_negative == 0:
        return None
    if np.isnan(score).any():
        return math.nan
    # Two sorts and binary searches instead of ranking every score: a fifth of the time on
    # 100k rows (bench/run.py), and the same counts, so the same area to the last bit.
    negatives = np.sort(score[~is_positive])
    positives = np.sort(score[is_positive])
    below = np.searchsorted(negatives, positives, side="left")
    not_above = np.searchsorted(negatives, positives, side="right")
    u_statistic = float(below.sum()) + 0.5 * float((not_above - below).sum())
    return u_statistic / (n_positive * n_negative)


def average_precision(is_positive: Flags, score: Floats) -> float | None:
    """Average precision: sum over distinct thresholds of (R_n - R_{n-1}) * P_n.

    No interpolation, tied scores form one threshold, as scikit-learn's
    `average_precision_score`. None when the labels hold one class only.

    Examples:
        >>> average_precision(np.array([False, False, True, True]),
        ...                   np.array([0.1, 0.4, 0.35, 0.8]))
        0.8333333333333333
    """
    n_positive = int(is_positive.sum())
    if n_positive == 0 or n_positive == len(is_positive):
        return None
    # The order within a run of equal scores does not matter (only run ends are read), so
    # the faster unstable sort will do.
    order = np.argsort(-score)
    ordered = score[order]
    # The last row of each run of equal scores closes one threshold.
    ends = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]
    true_positives = np.cumsum(is_positive[order], dtype=np.float64)[ends]
    precision = true_positives / (ends + 1.0)
    recall = true_positives / n_positive
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def are_probabilities(proba: Floats) -> bool:
    """Whether every score is in [0, 1] and each row sums to 1.

    The row tolerance is scikit-learn's in `log_loss` (relative sqrt(eps), absolute 1e-8).

    Examples:
        >>> are_probabilities(np.array([[0.2, 0.8], [1.0, 0.0]]))
        True
        >>> are_probabilities(np.array([[0.2, 0.7]]))
        False
    """
    if proba.size == 0:
        return True
    if float(proba.min()) < 0.0 or float(proba.max()) > 1.0:
        return False
    return bool(np.isclose(proba.sum(axis=1), 1.0, rtol=math.sqrt(_EPS), atol=1e-8).all())


def log_loss(true: npt.NDArray[np.intp], proba: Floats) -> float:
    """Mean negative log-probability of the true class, clipped to [eps, 1 - eps].

    eps is float64's machine epsilon, as in scikit-learn's `log_loss` (>= 1.5).

    Examples:
        >>> round(log_loss(np.array([1, 0]), np.array([[0.1, 0.9], [0.8, 0.2]])), 6)
        0.164252
    """
    chosen = np.clip(proba[np.arange(len(true)), true], _EPS, 1.0 - _EPS)
    return float(-np.mean(np.log(chosen)))


def brier(true: npt.NDArray[np.intp], proba: Floats, positive: int | None) -> float:
    """Brier score: binary, mean (p - y)² of the positive class (range [0, 1]).

    Multiclass: mean over rows of the summed squared differences to the one-hot label
    (range [0, 2]), which is scikit-learn's `brier_score_loss` (>= 1.7) with its default
    `scale_by_half="auto"`.

    Examples:
        >>> round(brier(np.array([0, 1]), np.array([[0.9, 0.1], [0.4, 0.6]]), positive=1), 6)
        0.085
    """
    if positive is not None:
        outcome = (true == positive).astype(np.float64)
        return float(np.mean((proba[:, positive] - outcome) ** 2))
    one_hot = np.zeros_like(proba)
    one_hot[np.arange(len(true)), true] = 1.0
    return float(np.mean(np.sum((one_hot - proba) ** 2, axis=1)))


def expected_calibration_error(outcome: Flags, confidence: Floats, n_bins: int) -> float:
    """Expected calibration error over `n_bins` equal-width bins of [0, 1].

    ECE = sum over non-empty bins b of (n_b / n) * |mean(outcome in b) - mean(confidence
    in b)|. Bins close on the right, the first also holds 0: the bins of scikit-learn's
    `calibration_curve(strategy="uniform")`, so ECE is its two curves weighted by the bin
    counts. The caller chooses the pair: binary, (label is positive, positive-class
    probability); multiclass, (top class is right, top-class probability).

    Examples:
        >>> ece = expected_calibration_error(np.array([False, True, True, True]),
        ...                                  np.array([0.2, 0.6, 0.8, 0.9]), n_bins=2)
        >>> round(ece, 6)  # (1 * |0 - 0.2| + 3 * |1 - 2.3 / 3|) / 4
        0.225
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], confidence)
    confidence_sums = np.bincount(bins, weights=confidence, minlength=n_bins)
    outcome_sums = np.bincount(bins, weights=outcome.astype(np.float64), minlength=n_bins)
    return float(np.sum(np.abs(outcome_sums - confidence_sums)) / len(confidence))
