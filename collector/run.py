"""One monitoring run of a model as one frozen result, the same in the service and offline.

`compute_run` takes the model's settings, its fitted reference (`ModelReference`) and a
window, and returns a `RunResult`: the drift report, data quality, realized performance from
the labels joined to the window, estimated performance (CBPE) and segments. It does no I/O:
the service's monitor stores, exports and alerts on the result; `driftline analyze --config X
--model M` prints it. Both call this function, so they give one verdict on the same data.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from collector.config import ModelSettings
from collector.reference import PREDICTION_COLUMN, ModelReference, class_key
from detectors import (
    DriftOptions,
    DriftReport,
    EstimatedPerformance,
    PerformanceOptions,
    PerformanceReport,
    QualityReport,
    QualityThresholds,
    ReferenceProfile,
    SegmentReport,
    assess_quality,
    compute_performance,
    compute_segments,
    detect_drift,
    label_delay,
)
from detectors.report import finite_or_none

PredictionType = Literal["score", "class", "scores", "value"]
RESULT_SCHEMA = "driftline.run-result/v1"


def drift_options(model: ModelSettings, *, min_samples: int | None = None) -> DriftOptions:
    """Detector options from a model's drift settings."""
    drift = model.drift
    return DriftOptions(
        numeric_method=drift.numeric_method,
        categorical_method=drift.categorical_method,
        methods=dict(drift.methods),
        p_value_threshold=drift.p_value_threshold,
        distance_threshold=drift.distance_threshold,
        threshold=drift.threshold,
        thresholds=dict(drift.thresholds),
        drift_share=drift.drift_share,
        min_samples=drift.min_samples if min_samples is None else min_samples,
        correction=drift.correction,
        min_effect_size=drift.min_effect_size,
    )


def performance_options(model: ModelSettings, classes: Sequence[Any] | None = None
                        ) -> PerformanceOptions:
    """Realized-performance options from a model's settings (classes: config, else given)."""
    perf = model.performance
    configured = tuple(perf.classes) if perf.classes is not None else None
    return PerformanceOptions(
        model.task, positive_label=perf.positive_label, threshold=perf.threshold,
        classes=configured if configured is not None else (
            tuple(classes) if classes is not None else None))


def quality_thresholds(model: ModelSettings) -> QualityThresholds:
    """Data-quality thresholds from a model's settings."""
    quality = model.quality
    return QualityThresholds(
        missing_share=quality.missing_share, type_mismatch_share=quality.type_mismatch_share,
        non_finite_share=quality.non_finite_share,
        out_of_range_share=quality.out_of_range_share,
        new_category_share=quality.new_category_share)


def detect_model_drift(
    model: ModelSettings, profile: ReferenceProfile, frame: pd.DataFrame,
    options: DriftOptions | None = None,
) -> DriftReport:
    """The drift report of a model's window.

    The features decide the dataset verdict (and share the multiple-testing correction);
    the prediction column is tested beside them and reported as `prediction`, but is not
    a feature: the model's output moving is prediction drift, reported on its own.
    """
    options = options or drift_options(model)
    features = [c for c in model.features if c in profile.columns]
    present = [c for c in features if c in frame.columns]
    report = detect_drift(subset(profile, features), frame[present], options)
    if PREDICTION_COLUMN in profile.columns:
        own = frame[[c for c in (PREDICTION_COLUMN,) if c in frame.columns]]
        outputs = detect_drift(subset(profile, [PREDICTION_COLUMN]), own, options)
        merged = {**report.features, PREDICTION_COLUMN: outputs.features[PREDICTION_COLUMN]}
        report = dataclasses.replace(report, features=merged)
    return report


def subset(profile: ReferenceProfile, columns: list[str]) -> ReferenceProfile:
    """The profile of some of its columns (sharing the fitted arrays, nothing copied)."""
    kinds = {c: profile.kinds[c] for c in columns}
    return ReferenceProfile(
        kinds,
        {c: profile.numeric[c] for c in columns if kinds[c] == "numeric"},
        {c: profile.categorical[c] for c in columns if kinds[c] == "categorical"},
        profile.n_rows,
    )


# -- the window as the run sees it ------------------------------------------------------------
@dataclass(frozen=True)
class RunInput:
    """What a run computes on: features, predictions as sent, joined labels, times.

    The service builds it from the store's `Window`, `driftline analyze` from a file.
    """

    features: pd.DataFrame
    predictions: Sequence[Any]
    labels: Sequence[Any] | None = None
    prediction_at: pd.DatetimeIndex | None = None
    label_at: pd.DatetimeIndex | None = None
    versions: Sequence[str | None] | None = None
    segment_values: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    absent: Mapping[str, Any] = field(default_factory=dict)
    unknown_fields: Mapping[str, int] = field(default_factory=dict)
    # Label coverage is also given over the predictions older than each of these delays
    # at `at` (the run's time): labels that had time to arrive (the labels_missing rule).
    at: datetime | None = None
    label_ages_seconds: tuple[float, ...] = ()

    @property
    def n(self) -> int:
        """Rows in the window."""
        return len(self.features) if len(self.features.columns) else len(self.predictions)

    def frame(self) -> pd.DataFrame:
        """Features plus a `prediction` column of the scalar predictions.

        The feature columns are `features`' own arrays (a shallow copy, to which the new
        column is added): read the frame, do not write into it.
        """
        # A deep copy of 100k rows of 50 columns cost 10-30 ms a run (bench/run.py).
        frame = self.features.copy(deep=False)
        predictions = self.predictions
        if any(issubclass(t, list | tuple | dict) for t in set(map(type, predictions))):
            frame[PREDICTION_COLUMN] = [p if not isinstance(p, list | tuple | dict) else None
                                        for p in predictions]
        else:
            frame[PREDICTION_COLUMN] = list(predictions)
        return frame


@dataclass(frozen=True)
class WindowFacts:
    """Size, time span, versions and label arrival of a window."""

    n_events: int
    first_at: datetime | None
    last_at: datetime | None
    versions: Mapping[str, int]
    n_labelled: int
    label_coverage: float | None
    label_delay_median_seconds: float | None
    label_delay_p95_seconds: float | None
    coverage_after: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "coverage_after": {k: dict(v) for k, v in self.coverage_after.items()},
            "n_events": self.n_events,
            "first_at": _iso(self.first_at), "last_at": _iso(self.last_at),
            "versions": dict(self.versions), "n_labelled": self.n_labelled,
            "label_coverage": finite_or_none(self.label_coverage),
            "label_delay_median_seconds": finite_or_none(self.label_delay_median_seconds),
            "label_delay_p95_seconds": finite_or_none(self.label_delay_p95_seconds),
        }


def age_key(seconds: float) -> str:
    """The key of a label age in `window.coverage_after` (e.g. "3600").

    Examples:
        >>> age_key(3600.0), age_key(90.5)
        ('3600', '90.5')
    """
    return f"{seconds:g}"


def _coverage_after(data: RunInput, labelled: np.ndarray[Any, np.dtype[np.bool_]]
                    ) -> dict[str, dict[str, Any]]:
    """Coverage over the predictions older than each requested age at the run's time."""
    if data.at is None or data.prediction_at is None or not data.label_ages_seconds:
        return {}
    at = pd.Timestamp(data.at)
    out: dict[str, dict[str, Any]] = {}
    for age in data.label_ages_seconds:
        old = np.asarray(data.prediction_at <= at - pd.Timedelta(seconds=age))
        n_old = int(old.sum())
        n_done = int((old & labelled).sum())
        out[age_key(age)] = {"n": n_old, "n_labelled": n_done,
                             "label_coverage": n_done / n_old if n_old else None}
    return out


def _iso(moment: datetime | None) -> str | None:
    from alerts.clock import iso_z

    return iso_z(moment) if moment is not None else None


@dataclass(frozen=True)
class RunResult:
    """Everything one run found, frozen; stored, exported and alerted on as it is.

    `to_dict()` is the drift report's JSON (`driftline.drift-report/v1`, its keys at the
    top level) with `window`, `performance`, `reference_performance`,
    `estimated_performance`, `data_quality`, `versions` and `segments` beside them: the
    JSON `driftline analyze` prints and `GET /v1/models/{name}/runs` serves.
    """

    model: str
    drift: DriftReport
    window: WindowFacts
    performance: PerformanceReport | None = None
    reference_performance: PerformanceReport | None = None
    estimated_performance: EstimatedPerformance | None = None
    data_quality: QualityReport | None = None
    versions: SegmentReport | None = None
    segments: tuple[SegmentReport, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """`ok`, or `insufficient_data` when nothing could be tested."""
        return self.drift.status

    @property
    def features_drift(self) -> Mapping[str, Any]:
        """Per-feature drift results without the prediction."""
        return {k: v for k, v in self.drift.features.items() if k != PREDICTION_COLUMN}

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Features (not the prediction) that drifted or changed kind."""
        return tuple(k for k, v in self.features_drift.items() if v.drifted)

    @property
    def dataset_drifted(self) -> bool:
        """The dataset verdict (features only)."""
        return bool(self.drift.dataset_drifted) and self.drift.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """The run's JSON (see the class docstring)."""
        data = self.drift.to_dict()
        data["model"] = self.model
        data["window"] = self.window.to_dict()
        data["performance"] = _dict(self.performance)
        data["reference_performance"] = _dict(self.reference_performance)
        data["estimated_performance"] = _dict(self.estimated_performance)
        data["data_quality"] = _dict(self.data_quality)
        data["versions"] = _dict(self.versions)
        data["segments"] = [s.to_dict() for s in self.segments]
        data["notes"] = list(self.notes)
        return data


def _dict(value: Any) -> Any:
    return None if value is None else value.to_dict()


# -- predictions ------------------------------------------------------------------------------
def prediction_type(model: ModelSettings, predictions: Sequence[Any],
                    classes: Sequence[Any] | None) -> PredictionType:
    """How to read the predictions (see `PerformanceSettings`)."""
    if model.task == "regression":
        return "value"
    configured = model.performance.prediction_type
    if configured != "auto":
        return configured
    # The set of types decides the kind in one C-speed pass over the window.
    types = set(map(type, predictions)) - {type(None)}
    if any(issubclass(t, list | tuple) for t in types):
        return "scores"
    if types and all(issubclass(t, int | float) and not issubclass(t, bool) for t in types):
        known = {str(c) for c in classes} if classes else {"0", "1"}
        if any(str(p) not in known and not (float(p).is_integer()
                                            and str(int(p)) in known)
               for p in predictions if p is not None):
            return "score"
    return "class"


def split_predictions(kind: PredictionType, predictions: Sequence[Any],
                      n_classes: int | None) -> tuple[Any, Any]:
    """(y_pred, scores) for `compute_performance` from the predictions as sent."""
    if kind == "scores":
        width = n_classes or max((len(p) for p in predictions
                                  if isinstance(p, list | tuple)), default=0)
        rows = np.full((len(predictions), width), np.nan)
        for i, p in enumerate(predictions):
            if isinstance(p, list | tuple) and len(p) == width:
                rows[i] = [float(v) if isinstance(v, int | float) else math.nan for v in p]
        return None, rows
    if kind == "score":
        if set(map(type, predictions)) <= {float, int, type(None)}:
            # numpy reads None as NaN, as the loop below does.
            return None, np.array(predictions, dtype=np.float64)
        return None, np.array([float(p) if isinstance(p, int | float) else math.nan
                               for p in predictions])
    return list(predictions), None


# -- the computation ----------------------------------------------------------------------------
def compute_run(model: ModelSettings, reference: ModelReference, data: RunInput,
                *, min_samples: int | None = None) -> RunResult:
    """The whole result of one run of `model` on `data` (pure: no I/O).

    Realized performance needs labels; estimated performance needs CBPE fitted on a
    reference with scores and labels (classification) and scores in the window;
    segments need labels too. What cannot be computed is None, with a note saying why.
    """
    notes: list[str] = list(reference.notes)
    frame = data.frame()
    drift = detect_model_drift(model, reference.profile, frame,
                               drift_options(model, min_samples=min_samples))
    quality = assess_quality(
        subset(reference.profile, [c for c in model.features if c in reference.profile.columns]),
        data.features, expected=list(model.features), absent=data.absent or None,
        extra_columns=data.unknown_fields or None, thresholds=quality_thresholds(model))
    prepared = prepare_labels(model, reference, data.predictions, data.labels, data.n)
    notes.extend(prepared.notes)
    options, kind, labels = prepared.options, prepared.kind, prepared.labels
    y_pred, scores, usable = prepared.y_pred, prepared.scores, prepared.usable
    n_labelled = prepared.n_labelled
    pick = prepared.pick
    performance = prepared.performance()
    estimated = None
    if reference.cbpe is not None and kind in ("score", "scores") and data.n:
        estimated = reference.cbpe.estimate(*_cbpe_inputs(kind, scores, options))
    labelled = np.fromiter((v is not None for v in labels), bool, len(labels))
    delay = (label_delay(data.prediction_at[labelled], data.label_at[labelled])
             if n_labelled and data.prediction_at is not None and data.label_at is not None
             else None)
    counts: dict[str, int] = {}
    for v, count in Counter(data.versions or ()).items():
        key = "(none)" if v is None else str(v)
        counts[key] = counts.get(key, 0) + count
    versions = None
    if len(counts) > 1 and usable.any():
        versions = compute_segments(
            pick(["(none)" if v is None else str(v) for v in (data.versions or ())]),
            pick(labels), pick(y_pred), pick(scores), options=options, by="model_version",
            max_groups=model.segments.max_groups)
    segments: list[SegmentReport] = []
    for key in model.segments.by:
        values = data.segment_values.get(key)
        if values is None or not usable.any():
            continue
        segments.append(compute_segments(pick(list(values)), pick(labels), pick(y_pred),
                                         pick(scores), options=options, by=key,
                                         max_groups=model.segments.max_groups))
    times = data.prediction_at
    facts = WindowFacts(
        n_events=data.n,
        first_at=times.min().to_pydatetime() if times is not None and len(times) else None,
        last_at=times.max().to_pydatetime() if times is not None and len(times) else None,
        versions=counts, n_labelled=n_labelled,
        label_coverage=n_labelled / data.n if data.n else None,
        label_delay_median_seconds=delay.median_seconds if delay is not None else None,
        label_delay_p95_seconds=delay.p95_seconds if delay is not None else None,
        coverage_after=_coverage_after(data, labelled),
    )
    return RunResult(
        model=model.name, drift=drift, window=facts, performance=performance,
        reference_performance=reference.performance, estimated_performance=estimated,
        data_quality=quality, versions=versions, segments=tuple(segments), notes=tuple(notes))


@dataclass(frozen=True)
class PreparedLabels:
    """Predictions and joined labels read for performance, and which rows are usable."""

    options: PerformanceOptions
    kind: PredictionType
    labels: list[Any]
    y_pred: Any
    scores: Any
    usable: np.ndarray[Any, np.dtype[np.bool_]]
    n_labelled: int
    n_total: int
    notes: tuple[str, ...]

    def pick(self, values: Any) -> Any:
        """The usable rows (labelled, with a prediction) of a per-row sequence."""
        if values is None:
            return None
        if isinstance(values, np.ndarray):
            return values[self.usable]
        if len(values) != len(self.usable):
            raise ValueError(f"{len(values)} values for {len(self.usable)} rows")
        # An object array keeps each value as it is (a list stays one value).
        return np.fromiter(values, dtype=object, count=len(values))[self.usable]

    def performance(self) -> PerformanceReport | None:
        """Realized performance over the usable rows (None when there are none)."""
        if not self.usable.any():
            return None
        return compute_performance(self.pick(self.labels), self.pick(self.y_pred),
                                   self.pick(self.scores), options=self.options,
                                   n_total=self.n_total)


def prepare_labels(model: ModelSettings, reference: ModelReference,
                   predictions: Sequence[Any], labels: Sequence[Any] | None,
                   n_total: int) -> PreparedLabels:
    """Read predictions and labels as the model's performance settings say."""
    options = performance_options(model, reference.classes)
    kind = prediction_type(model, predictions, options.classes)
    y_pred, scores = split_predictions(kind, predictions,
                                       len(options.classes) if options.classes else None)
    canon = {class_key(c): c for c in options.classes} if options.classes else {}
    normal = _normal_all(labels if labels is not None else [None] * len(predictions), canon)
    if kind == "class" and y_pred is not None:
        y_pred = _normal_all(y_pred, canon)
    labelled = np.fromiter((v is not None for v in normal), bool, len(normal))
    usable = labelled & _has_prediction(kind, y_pred, scores)
    n_labelled = int(labelled.sum())
    notes: tuple[str, ...] = ()
    if n_labelled > int(usable.sum()):
        notes = (f"{n_labelled - int(usable.sum())} labelled events have no usable "
                 "prediction and are left out of performance",)
    return PreparedLabels(options, kind, normal, y_pred, scores, usable, n_labelled, n_total,
                          notes)


_PLAIN_LABELS = frozenset({int, float, str, bool, type(None)})
_ITSELF = object()


def _normal_all(values: Sequence[Any], canon: Mapping[str, Any]) -> list[Any]:
    """`_normal` of each value, worked out once per distinct label (a window has few)."""
    found: dict[tuple[type, Any], Any] = {}
    out: list[Any] = []
    for value in values:
        kind = type(value)
        if kind not in _PLAIN_LABELS:
            out.append(_normal(value, canon))
            continue
        # The type is in the key: 1, 1.0 and True are equal but are not the same class.
        key = (kind, value)
        normal = found.get(key, found)
        if normal is found:
            normal = _normal(value, canon)
            found[key] = _ITSELF if normal is value else normal
        out.append(value if normal is _ITSELF else normal)
    return out


def _normal(value: Any, canon: Mapping[str, Any]) -> Any:
    """A label or class as the configured class it names (None for missing)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return canon.get(class_key(value), value) if canon else value


def _has_prediction(kind: PredictionType, y_pred: Any, scores: Any
                    ) -> np.ndarray[Any, np.dtype[np.bool_]]:
    if kind == "scores":
        return ~np.isnan(scores).any(axis=1)  # type: ignore[no-any-return]
    if kind == "score":
        return ~np.isnan(scores)  # type: ignore[no-any-return]
    if kind == "value":
        return np.fromiter((isinstance(v, int | float) and not isinstance(v, bool)
                            and math.isfinite(v) for v in y_pred), bool, len(y_pred))
    return np.fromiter((v is not None for v in y_pred), bool, len(y_pred))


def _cbpe_inputs(kind: PredictionType, scores: Any, options: PerformanceOptions
                 ) -> tuple[Any, Any]:
    if kind == "score":
        y_pred = np.where(np.isnan(scores), np.nan, (scores >= options.threshold).astype(float))
        return scores, y_pred
    classes = list(options.classes or ())
    filled = np.where(np.isnan(scores), -np.inf, scores)
    picks = np.argmax(filled, axis=1)
    y_pred = np.array([classes[i] if np.isfinite(filled[r, i]) else None
                       for r, i in enumerate(picks)], dtype=object)
    return scores, y_pred
