"""Isotonic calibration of scores, and NannyML's test of whether scores need it.

Follows NannyML 0.13.1, `nannyml/calibration.py`: the only calibrator is scikit-learn's
`IsotonicRegression(out_of_bounds="clip", increasing=True)`, and `needs_calibration` fits
it on ten stratified 90 % splits, pools the ten held-out 10 % folds and calibrates iff the
expected calibration error (ten equal-count bins) of the raw scores exceeds that of the
calibrated ones.

The fitted calibrator is kept as plain arrays (scikit-learn's `X_thresholds_` and
`y_thresholds_`), and `IsotonicCalibrator.calibrate` repeats scikit-learn's prediction
(clip to the fitted range, then scipy's `interp1d` linear formula), so a fitted
estimator holds no scikit-learn object. scikit-learn is imported only while fitting.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from detectors.errors import EstimationError, MissingDependencyError

FloatArray = npt.NDArray[np.float64]

# nannyml/calibration.py: needs_calibration's defaults and its AUROC short cut.
ECE_BINS = 10
SPLITS = 10
TEST_SHARE = 0.1
SPLIT_SEED = 42
SEPARABLE_AUROC = 0.999


@dataclass(frozen=True, slots=True, eq=False)
class IsotonicCalibrator:
    """A fitted isotonic calibration: increasing knots, linear between them, clipped outside.

    Examples:
        >>> import numpy as np
        >>> calibrator = IsotonicCalibrator(np.array([0.2, 0.6]), np.array([0.0, 1.0]))
        >>> calibrator.calibrate(np.array([0.0, 0.4, 0.6, 0.9])).tolist()
        [0.0, 0.5, 1.0, 1.0]
    """

    x_thresholds: FloatArray
    y_thresholds: FloatArray

    def calibrate(self, scores: FloatArray) -> FloatArray:
        """Calibrated probabilities of `scores`, as scikit-learn's `predict` computes them.

        Scores are clipped to the fitted range (`out_of_bounds="clip"`) and interpolated
        linearly between the knots: scikit-learn predicts with scipy's `interp1d`, which
        hands float64 data to `np.interp`, and a single knot predicts a constant
        (sklearn/isotonic.py, `_build_f`). NaN stays NaN.
        """
        x, y = self.x_thresholds, self.y_thresholds
        if len(x) == 1:
            return np.where(np.isnan(scores), np.nan, y[0])
        return np.interp(np.clip(scores, x[0], x[-1]), x, y)


def fit_isotonic(scores: FloatArray, y_true: npt.NDArray[Any]) -> IsotonicCalibrator:
    """Fit scikit-learn's isotonic regression of `y_true` on `scores` and keep its knots.

    Examples:
        >>> import numpy as np
        >>> scores, labels = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 1.0, 0.0, 1.0])
        >>> fit_isotonic(scores, labels).y_thresholds
        array([0. , 0.5, 0.5, 1. ])
    """
    regression = _isotonic_regression()
    try:
        regression.fit(scores, y_true)
    except ValueError as exc:
        raise EstimationError(f"isotonic calibration could not be fitted: {exc}") from exc
    return IsotonicCalibrator(np.array(regression.X_thresholds_, dtype=np.float64),
                              np.array(regression.y_thresholds_, dtype=np.float64))


def needs_calibration(y_true: npt.NDArray[Any], scores: FloatArray) -> bool:
    """Whether NannyML calibrates these reference scores (`nannyml.calibration.needs_calibration`).

    No for one class or a reference ROC AUC above 0.999. Otherwise ten
    `StratifiedShuffleSplit(test_size=0.1, random_state=42)` splits: isotonic fitted on
    each training part calibrates its test part; the ten test parts are pooled and their
    expected calibration error before and after is compared (NannyML's docstring says
    "any fold"; its code pools them, and so does this).

    Args:
        y_true: Reference labels, 0 or 1, no NaN.
        scores: Reference scores, no NaN.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> p = rng.uniform(size=2000)
        >>> y = (rng.uniform(size=2000) < p).astype(float)
        >>> needs_calibration(y, p ** 3)  # far too low where the truth is likely
        True
        >>> needs_calibration(y, 0.2 + 0.6 * y)  # separable (ROC AUC 1): nothing to learn
        False
    """
    if len(np.unique(y_true)) == 1 or _roc_auc(y_true, scores) > SEPARABLE_AUROC:
        return False
    splitter = _stratified_splitter()
    truths, raw, calibrated = [], [], []
    try:
        splits = list(splitter.split(scores, y_true))
    except ValueError as exc:
        raise EstimationError(
            f"the reference cannot be split to test calibration ({exc}); give a larger reference"
        ) from exc
    for train, test in splits:
        regression = _isotonic_regression()
        regression.fit(scores[train], y_true[train])
        truths.append(y_true[test])
        raw.append(scores[test])
        # scikit-learn's own predict here, so that the decision is NannyML's to the last bit.
        calibrated.append(np.asarray(regression.predict(scores[test]), dtype=np.float64))
    pooled_truth = np.concatenate(truths)
    edges = _bin_edges(len(pooled_truth), ECE_BINS)
    before = _expected_calibration_error(pooled_truth, np.concatenate(raw), edges)
    after = _expected_calibration_error(pooled_truth, np.concatenate(calibrated), edges)
    return bool(before > after)


def _roc_auc(y_true: npt.NDArray[Any], scores: FloatArray) -> float:
    # Mann-Whitney U with average ranks for ties: the value sklearn's roc_auc_score gives.
    positive = y_true == 1
    n_positive = int(positive.sum())
    n_negative = len(y_true) - n_positive
    ranks = rankdata(scores)
    u = float(ranks[positive].sum()) - n_positive * (n_positive + 1) / 2
    return u / (n_positive * n_negative)


def _bin_edges(length: int, bins: int) -> list[tuple[int, int]]:
    # nannyml/calibration.py, _get_bin_index_edges: equal-count bins, the last one takes the rest.
    if length <= 2 * bins:
        bins = length // 2
        if bins < 2:
            raise EstimationError(f"{length} held-out scores cannot make two calibration bins; "
                                  "give a larger reference")
    width = length // bins
    edges = list(range(0, length + 1, width))
    edges[-1] = length
    return list(itertools.pairwise(edges))


def _expected_calibration_error(y_true: npt.NDArray[Any], scores: FloatArray,
                                edges: list[tuple[int, int]]) -> float:
    # np.argsort's default sort, as NannyML's: tied scores are binned in that order.
    order = scores.argsort()
    sorted_scores, sorted_truth = scores[order], y_true[order]
    terms = [(right - left) / len(scores)
             * abs(np.mean(sorted_scores[left:right]) - np.mean(sorted_truth[left:right]))
             for left, right in edges]
    return float(np.sum(terms))


def _isotonic_regression() -> Any:
    isotonic_regression, _ = _sklearn()
    return isotonic_regression(out_of_bounds="clip", increasing=True)


def _stratified_splitter() -> Any:
    _, stratified_shuffle_split = _sklearn()
    return stratified_shuffle_split(n_splits=SPLITS, test_size=TEST_SHARE,
                                    random_state=SPLIT_SEED)


def _sklearn() -> tuple[Any, Any]:
    # Imported only while fitting: a fitted estimator holds plain arrays.
    try:
        from sklearn.isotonic import IsotonicRegression
        from sklearn.model_selection import StratifiedShuffleSplit
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise MissingDependencyError(
            "CBPE's calibration needs scikit-learn: pip install scikit-learn") from exc
    return IsotonicRegression, StratifiedShuffleSplit
