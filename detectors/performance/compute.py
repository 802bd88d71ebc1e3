"""`compute_performance`: realized performance of one window from its labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors.errors import PerformanceInputError
from detectors.performance.classification import (
    classification_metrics,
    confusion_matrix,
    metric_names,
)
from detectors.performance.inputs import (
    ClassArrays,
    Columns,
    RegressionArrays,
    Rows,
    columns,
    encode_classes,
    encode_regression,
    resolve_classes,
)
from detectors.performance.options import PerformanceOptions
from detectors.performance.regression import REGRESSION_METRICS, regression_metrics
from detectors.performance.result import ConfusionMatrix, PerformanceReport


@dataclass(frozen=True, slots=True)
class Prepared:
    """A window's columns with its labelled rows encoded once, for the window or its parts.

    `data` is None for a classification window without a labelled row (its classes may
    be unknown); `names` are the metric keys every report of this window carries.
    """

    columns: Columns
    data: ClassArrays | RegressionArrays | None
    names: tuple[str, ...]


def prepare(y_true: Any, y_pred: Any, scores: Any, options: PerformanceOptions) -> Prepared:
    """Check and encode the inputs (see `compute_performance` for what they may be).

    Examples:
        >>> prepared = prepare([0, 1, None], [0, 1, 1], None, PerformanceOptions("classification"))
        >>> prepared.data.classes, prepared.columns.labelled.tolist()
        ((0, 1), [True, True, False])
    """
    data_columns = columns(y_true, y_pred, scores)
    if options.task == "regression":
        return Prepared(data_columns, encode_regression(data_columns), REGRESSION_METRICS)
    if not data_columns.labelled.any():
        scores_array = data_columns.scores
        if options.classes is not None:
            n_classes = len(options.classes)
        elif scores_array is not None and scores_array.ndim == 2:
            n_classes = scores_array.shape[1]
        else:
            n_classes = 2
        return Prepared(data_columns, None, metric_names(n_classes))
    classes = resolve_classes(data_columns, options)
    data = encode_classes(data_columns, options, classes)
    return Prepared(data_columns, data, metric_names(len(classes)))


def rows_by_group(codes: npt.NDArray[np.intp], n_groups: int) -> list[Rows]:
    """The row indices of each group code 0..n_groups-1, in row order.

    Examples:
        >>> [rows.tolist() for rows in rows_by_group(np.array([1, 0, 1]), 3)]
        [[1], [0, 2], []]
    """
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(n_groups + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n_groups)]


def summarize(data: ClassArrays | RegressionArrays | None, *, options: PerformanceOptions,
              names: tuple[str, ...], n_total: int) -> PerformanceReport:
    """The report of encoded labelled rows out of `n_total` rows.

    Examples:
        >>> from detectors.performance.inputs import RegressionArrays
        >>> import numpy as np
        >>> empty = RegressionArrays(np.array([]), np.array([]))
        >>> summarize(empty, options=PerformanceOptions("regression"),
        ...           names=("mae",), n_total=5).to_dict()["metrics"]
        {'mae': None}
    """
    n_labelled = 0 if data is None else len(data.true)
    if n_labelled > n_total:
        raise PerformanceInputError(f"n_total {n_total} is below the {n_labelled} labelled rows")
    coverage = n_labelled / n_total if n_total > 0 else None
    if data is None or n_labelled == 0:
        return PerformanceReport(
            options.task, 0, n_total, coverage, dict.fromkeys(names),
            dict.fromkeys(names, "no_labels"), None, "no_labels")
    matrix: ConfusionMatrix | None = None
    if isinstance(data, ClassArrays):
        metrics, statuses = classification_metrics(data, options.n_bins_ece)
        matrix = confusion_matrix(data)
    else:
        metrics, statuses = regression_metrics(data)
    ordered = {name: metrics[name] for name in names}
    return PerformanceReport(options.task, n_labelled, n_total, coverage, ordered,
                             {name: statuses[name] for name in names if name in statuses},
                             matrix, "ok")


def compute_performance(y_true: Any, y_pred: Any = None, scores: Any = None, *,
                        options: PerformanceOptions,
                        n_total: int | None = None) -> PerformanceReport:
    """Realized performance of a window: labels against predictions and scores.

    Rows whose label is missing (None or NaN) are dropped; `label_coverage` is the share of
    `n_total` rows (default: every row given) that carry a label. Metric definitions and
    where they depart from scikit-learn: detectors/performance/classification.py,
    regression.py and scores.py.

    Args:
        y_true: One label per row, None or NaN when not (yet) known.
        y_pred: Class predictions (classification) or predicted values (regression).
            Classification derives it from `scores` when absent.
        scores: Classification only: 1-D positive-class scores (binary), or one row of
            class scores per prediction, in `options.classes` order (a 2-D array, a
            DataFrame, or a pandas Series of lists).
        options: Task, positive label, threshold, class order.
        n_total: Predictions in the window when the labelled ones were given alone.

    Returns:
        The frozen report; `to_dict()` is its JSON.

    Raises:
        PerformanceInputError: Lengths differ, a label or prediction is not one of the
            classes, a labelled row lacks its prediction or score, or classification got
            neither `y_pred` nor `scores`.

    Examples:
        >>> options = PerformanceOptions("classification", positive_label="yes")
        >>> report = compute_performance(["yes", "no", "yes", None],
        ...                              scores=[0.9, 0.3, 0.4, 0.8], options=options)
        >>> report.n_labelled, report.label_coverage, report.metrics["recall"]
        (3, 0.75, 0.5)
        >>> report.confusion_matrix.to_dict()
        {'labels': ['no', 'yes'], 'matrix': [[1, 0], [1, 1]]}
    """
    prepared = prepare(y_true, y_pred, scores, options)
    total = len(prepared.columns.y_true) if n_total is None else n_total
    return summarize(prepared.data, options=options, names=prepared.names, n_total=total)
