"""The result of a performance estimate: frozen values, JSON without NaN."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from detectors.estimation.estimates import Metric
from detectors.report import finite_or_none


@dataclass(frozen=True, slots=True)
class EstimatedMetric:
    """One estimated metric of a window, with NannyML's sampling error and band.

    `lower` and `upper` are `value -/+ 3 * sampling_error` clipped to [0, 1]; `n` is the
    number of rows the estimate rests on. A field is None where it is undefined (no
    rows, or a reference that cannot give the sampling error).

    Examples:
        >>> EstimatedMetric(0.9, 0.01, 0.87, 0.93, 500).to_dict()["upper"]
        0.93
    """

    value: float | None
    sampling_error: float | None
    lower: float | None
    upper: float | None
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (non-finite numbers as null)."""
        return {"value": finite_or_none(self.value),
                "sampling_error": finite_or_none(self.sampling_error),
                "lower": finite_or_none(self.lower), "upper": finite_or_none(self.upper),
                "n": self.n}


@dataclass(frozen=True, slots=True)
class EstimatedPerformance:
    """The estimated performance of one window (`estimated_performance` in the report).

    `n` counts the window's rows as given; each metric's `n` the rows it used (rows
    with a missing score or prediction are left out). `calibrated` says whether the
    scores were calibrated (for a multiclass model: the scores of at least one class).

    Examples:
        >>> metric = EstimatedMetric(None, None, None, None, 0)
        >>> EstimatedPerformance(0, False, {"accuracy": metric}).to_dict()["metrics"]
        {'accuracy': {'value': None, 'sampling_error': None, 'lower': None, 'upper': None, 'n': 0}}
    """

    n: int
    calibrated: bool
    metrics: Mapping[Metric, EstimatedMetric]
    method: Literal["cbpe"] = "cbpe"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields: method, n, calibrated and one entry per metric."""
        return {"method": self.method, "n": self.n, "calibrated": self.calibrated,
                "metrics": {name: metric.to_dict() for name, metric in self.metrics.items()}}
