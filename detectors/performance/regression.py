"""Regression metrics of one window's labelled rows.

Definitions follow scikit-learn (sklearn.metrics user guide, "Regression metrics"):
`mean_absolute_error`, `mean_squared_error`, `root_mean_squared_error`,
`mean_absolute_percentage_error` (a fraction, not per cent), `mean_squared_log_error`,
`root_mean_squared_log_error`, `median_absolute_error`, `r2_score`; `mean_error` is
mean(y_pred - y_true), so a positive bias means the model over-predicts.

Where scikit-learn gives a number we do not trust, the metric is None with a status:
R² of a constant target (`constant_target`; scikit-learn returns 1.0 or 0.0 with
`force_finite=True`, NaN or -inf without), MAPE with a zero label (`zero_target`;
scikit-learn divides by float64's eps and reports a huge number), and the log errors with
a value <= -1 (`out_of_domain`; scikit-learn raises).
"""

from __future__ import annotations

import numpy as np

from detectors.performance.classification import Metrics, Statuses
from detectors.performance.inputs import RegressionArrays

REGRESSION_METRICS = (
    "mae", "mse", "rmse", "mape", "msle", "rmsle", "median_ae", "r2", "mean_error",
)

_EPS = float(np.finfo(np.float64).eps)


def regression_metrics(data: RegressionArrays) -> tuple[Metrics, Statuses]:
    """Every regression metric of a window with at least one labelled row.

    Examples:
        >>> from detectors.performance.inputs import RegressionArrays
        >>> data = RegressionArrays(np.array([3.0, -0.5, 2.0, 7.0]),
        ...                         np.array([2.5, 0.0, 2.0, 8.0]))
        >>> metrics, statuses = regression_metrics(data)
        >>> metrics["mae"], metrics["mse"], round(metrics["r2"], 6), statuses
        (0.5, 0.375, 0.948608, {})
    """
    true, predicted = data.true, data.predicted
    error = predicted - true
    mse = float(np.mean(error**2))
    metrics: Metrics = {
        "mae": float(np.mean(np.abs(error))),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mape": None,
        "msle": None,
        "rmsle": None,
        "median_ae": float(np.median(np.abs(error))),
        "r2": None,
        "mean_error": float(np.mean(error)),
    }
    statuses: Statuses = {}
    if np.any(true == 0.0):
        statuses["mape"] = "zero_target"
    else:
        metrics["mape"] = float(np.mean(np.abs(error) / np.maximum(np.abs(true), _EPS)))
    if np.any(true <= -1.0) or np.any(predicted <= -1.0):
        statuses["msle"] = statuses["rmsle"] = "out_of_domain"
    else:
        msle = float(np.mean((np.log1p(predicted) - np.log1p(true)) ** 2))
        metrics["msle"], metrics["rmsle"] = msle, float(np.sqrt(msle))
    # Equal labels, tested directly: their float mean may differ from them by an ulp,
    # which would leave a tiny nonzero denominator.
    if float(np.ptp(true)) == 0.0:
        statuses["r2"] = "constant_target"
    else:
        total = float(np.sum((true - np.mean(true)) ** 2))
        metrics["r2"] = 1.0 - float(np.sum(error**2)) / total
    return metrics, statuses
