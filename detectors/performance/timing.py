"""Performance over time: label delay, and realized performance per time bucket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from detectors.errors import OptionsError, PerformanceInputError
from detectors.performance.compute import prepare, rows_by_group, summarize
from detectors.performance.options import PerformanceOptions
from detectors.performance.result import PerformanceReport


def _utc(values: Any, name: str) -> pd.DatetimeIndex:
    if isinstance(values, pd.DatetimeIndex):
        # What to_datetime(utc=True) makes of it, without the Timestamp per row that its
        # cache check builds (20 ms for 2 x 100k times, bench/run.py).
        return values.tz_localize("UTC") if values.tz is None else values.tz_convert("UTC")
    try:
        return pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    except (TypeError, ValueError) as exc:
        raise PerformanceInputError(f"{name} must be timestamps") from exc


@dataclass(frozen=True, slots=True)
class LabelDelay:
    """How long labels took to arrive after their predictions, in seconds.

    `n` counts the pairs where both times are known; the quantiles are None when n is 0.
    """

    n: int
    median_seconds: float | None
    p95_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        """`{"n": .., "median_seconds": .., "p95_seconds": ..}`."""
        return {"n": self.n, "median_seconds": self.median_seconds,
                "p95_seconds": self.p95_seconds}


def label_delay(prediction_times: Any, label_times: Any) -> LabelDelay:
    """Median and 95th percentile of label time minus prediction time.

    Quantiles use numpy's default `percentile` (the "linear" method: interpolation between
    the two nearest order statistics). Naive timestamps are read as UTC; a label earlier
    than its prediction (clock skew) counts as a negative delay. Pairs with a missing time
    are left out.

    Args:
        prediction_times: When each prediction was made.
        label_times: When its label arrived (None or NaT when it has not).

    Returns:
        The delay summary.

    Examples:
        >>> label_delay(["2026-01-01T00:00Z", "2026-01-01T00:00Z", "2026-01-01T00:00Z"],
        ...             ["2026-01-01T00:01Z", "2026-01-01T00:03Z", None])
        LabelDelay(n=2, median_seconds=120.0, p95_seconds=174.0)
    """
    predicted = _utc(prediction_times, "prediction_times")
    labelled = _utc(label_times, "label_times")
    if len(predicted) != len(labelled):
        raise PerformanceInputError(
            f"label_times has {len(labelled)} rows but prediction_times has {len(predicted)}")
    known = ~(predicted.isna() | labelled.isna())
    if not known.any():
        return LabelDelay(0, None, None)
    delays = (labelled[known] - predicted[known]) / pd.Timedelta(seconds=1)
    median, p95 = np.percentile(np.asarray(delays, dtype=np.float64), [50.0, 95.0])
    return LabelDelay(int(known.sum()), float(median), float(p95))


@dataclass(frozen=True, slots=True)
class BucketPerformance:
    """Realized performance of the predictions made in [start, start + bucket)."""

    start: datetime
    report: PerformanceReport

    def to_dict(self) -> dict[str, Any]:
        """The report's JSON with the bucket's start (ISO 8601, UTC, "Z")."""
        return {"start": self.start.isoformat().replace("+00:00", "Z"), **self.report.to_dict()}


def performance_by_bucket(timestamps: Any, y_true: Any, y_pred: Any = None, scores: Any = None,
                          *, options: PerformanceOptions,
                          bucket: str = "1D") -> tuple[BucketPerformance, ...]:
    """Realized performance per time bucket of the prediction timestamps.

    Buckets are the timestamps floored to `bucket` (a fixed pandas frequency: "15min",
    "1h", "1D"), in UTC. Only buckets that hold predictions appear, oldest first; each
    report's coverage is its labelled share of the bucket's predictions. Classes are
    resolved once over the whole window, so every bucket has the same metric keys.

    Args:
        timestamps: When each prediction was made (naive timestamps are read as UTC).
        y_true: Labels, as for `compute_performance`.
        y_pred: Predictions, as for `compute_performance`.
        scores: Scores, as for `compute_performance`.
        options: Task, positive label, threshold, class order.
        bucket: The bucket width.

    Returns:
        One `BucketPerformance` per non-empty bucket.

    Raises:
        OptionsError: `bucket` is not a fixed frequency.
        PerformanceInputError: A timestamp is missing, or the other inputs are unusable.

    Examples:
        >>> times = ["2026-01-01T10:00Z", "2026-01-01T11:30Z", "2026-01-02T09:00Z"]
        >>> buckets = performance_by_bucket(times, [1, 0, 1], [1, 1, 1],
        ...                                 options=PerformanceOptions("classification"))
        >>> [(b.start.day, b.report.metrics["accuracy"]) for b in buckets]
        [(1, 0.5), (2, 1.0)]
    """
    moments = _utc(timestamps, "timestamps")
    if moments.isna().any():
        raise PerformanceInputError("timestamps has missing values")
    try:
        starts = moments.floor(bucket)
    except ValueError as exc:
        raise OptionsError(f"bucket must be a fixed frequency like '1h' or '1D', got {bucket!r}"
                           ) from exc
    prepared = prepare(y_true, y_pred, scores, options)
    if len(starts) != len(prepared.columns.y_true):
        raise PerformanceInputError(
            f"timestamps has {len(starts)} rows but y_true has {len(prepared.columns.y_true)}")
    codes, uniques = pd.factorize(starts, sort=True)
    totals = np.bincount(codes, minlength=len(uniques))
    groups = rows_by_group(codes[prepared.columns.labelled], len(uniques))
    result = []
    for index, (start, rows) in enumerate(zip(uniques, groups, strict=True)):
        data = None if prepared.data is None else prepared.data.take(rows)
        report = summarize(data, options=options, names=prepared.names,
                           n_total=int(totals[index]))
        result.append(BucketPerformance(start.to_pydatetime(), report))
    return tuple(result)
