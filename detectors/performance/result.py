"""Result types of realized performance: frozen dataclasses whose `to_dict()` is the JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from detectors.performance.options import Task
from detectors.report import finite_or_none

ReportStatus = Literal["ok", "no_labels"]
# Why a metric is None. `single_class`: one class among the labels (ROC AUC, average
# precision); `no_scores`: only class predictions were given; `not_probabilities`: scores
# outside [0, 1] or rows not summing to 1 (log loss, Brier, ECE); `constant_target`: R² has
# a zero denominator; `out_of_domain`: a value <= -1 for the log errors; `zero_target`:
# a zero label for MAPE.
MetricStatus = Literal[
    "no_labels",
    "single_class",
    "no_scores",
    "not_probabilities",
    "constant_target",
    "out_of_domain",
    "zero_target",
]


def json_label(label: Any) -> Any:
    """A class label as a plain JSON value (numpy scalars become Python ones).

    Examples:
        >>> json_label(np.int64(3)), json_label("yes")
        (3, 'yes')
    """
    if isinstance(label, np.generic):
        return label.item()
    if label is None or isinstance(label, str | int | float | bool):
        return label
    return str(label)


@dataclass(frozen=True, slots=True)
class ConfusionMatrix:
    """Counts of (true class, predicted class); rows are true classes, as scikit-learn's."""

    labels: tuple[Any, ...]
    matrix: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        """`{"labels": [...], "matrix": [[...], ...]}`."""
        return {
            "labels": [json_label(label) for label in self.labels],
            "matrix": [list(row) for row in self.matrix],
        }


@dataclass(frozen=True, slots=True)
class PerformanceReport:
    """Realized performance of one window (or bucket, or group) from its labels.

    `metrics` always holds every metric name of the task (multiclass adds the weighted
    variants); a metric that is not defined for the window is None and `metric_status`
    says why. Values are finite by construction, so `to_dict()` is valid JSON.
    """

    task: Task
    n_labelled: int
    n_total: int
    label_coverage: float | None
    metrics: Mapping[str, float | None]
    metric_status: Mapping[str, MetricStatus]
    confusion_matrix: ConfusionMatrix | None
    status: ReportStatus

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON: task, counts, metrics (None when undefined) and the matrix."""
        return {
            "task": self.task,
            "status": self.status,
            "n_labelled": self.n_labelled,
            "n_total": self.n_total,
            "label_coverage": self.label_coverage,
            "metrics": {name: finite_or_none(value) for name, value in self.metrics.items()},
            "metric_status": dict(self.metric_status),
            "confusion_matrix": (
                None if self.confusion_matrix is None else self.confusion_matrix.to_dict()
            ),
        }
