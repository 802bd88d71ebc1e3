"""Realized performance of a window from its labels (classification and regression).

`compute_performance` compares labels with class predictions, scores or predicted values
under `PerformanceOptions` and returns a frozen `PerformanceReport` whose `to_dict()` is
the JSON of the offline report. Undefined metrics are None with a status, never NaN.
`performance_by_bucket` splits a window by time, `label_delay` says how late labels come.

Examples:
    >>> from detectors.performance import PerformanceOptions, compute_performance
    >>> options = PerformanceOptions("regression")
    >>> compute_performance([1.0, 2.0, 4.0], [1.5, 2.0, 3.0], options=options).metrics["mae"]
    0.5
"""

from detectors.performance.compute import compute_performance
from detectors.performance.options import PerformanceOptions, Task
from detectors.performance.result import ConfusionMatrix, MetricStatus, PerformanceReport
from detectors.performance.timing import (
    BucketPerformance,
    LabelDelay,
    label_delay,
    performance_by_bucket,
)

__all__ = [
    "BucketPerformance",
    "ConfusionMatrix",
    "LabelDelay",
    "MetricStatus",
    "PerformanceOptions",
    "PerformanceReport",
    "Task",
    "compute_performance",
    "label_delay",
    "performance_by_bucket",
]
