"""Prometheus gauges from a `RunResult`: drift, performance, estimate, quality, segments.

Series are bounded: metric names come from the detectors' fixed lists, per-feature series
are capped per model (`metrics.max_features_per_model`), segment groups by
`segments.max_groups` (docs/metrics.md).
"""

from __future__ import annotations

from collector.metrics import Metrics
from collector.reference import PREDICTION_COLUMN
from collector.run import RunResult
from detectors.quality import CHECKS
from detectors.report import finite_or_none


def export_run(metrics: Metrics, result: RunResult, *, max_features: int) -> None:
    """Set the model's gauges from one finished run."""
    _export_drift(metrics, result, max_features)
    _export_performance(metrics, result)
    _export_quality(metrics, result, max_features)
    _export_segments(metrics, result)


def _export_drift(m: Metrics, result: RunResult, max_features: int) -> None:
    name = result.model
    report = result.drift
    m.window_events.labels(name).set(report.n_current)
    if report.status != "ok":
        return
    exported = 0
    for feature, drift in report.features.items():
        statistic = finite_or_none(drift.statistic)
        if feature == PREDICTION_COLUMN:
            if drift.status != "ok":
                continue
            m.prediction_drifted.labels(name).set(1 if drift.drifted else 0)
            if statistic is not None:
                m.prediction_statistic.labels(name, drift.method).set(statistic)
            continue
        if drift.status not in ("ok", "type_mismatch", "missing"):
            continue
        if exported >= max_features:
            continue  # the cap bounds series per model (docs/metrics.md)
        exported += 1
        if statistic is not None:
            m.feature_statistic.labels(name, feature, drift.method).set(statistic)
        p_value = finite_or_none(drift.p_value)
        if p_value is not None:
            m.feature_p_value.labels(name, feature, drift.method).set(p_value)
        m.feature_drifted.labels(name, feature, drift.method).set(1 if drift.drifted else 0)
    counted = sum(1 for k, r in report.features.items()
                  if k != PREDICTION_COLUMN and r.status in ("ok", "type_mismatch", "missing"))
    m.features_not_exported.labels(name).set(max(counted - max_features, 0))
    m.dataset_drifted.labels(name).set(1 if result.dataset_drifted else 0)
    share = finite_or_none(report.share_drifted)
    if share is not None:
        m.share_drifted.labels(name).set(share)
    m.drifted_features.labels(name).set(len(result.drifted_features))


def _export_performance(m: Metrics, result: RunResult) -> None:
    name = result.model
    window = result.window
    m.labelled_events.labels(name).set(window.n_labelled)
    coverage = finite_or_none(window.label_coverage)
    if coverage is not None:
        m.label_coverage.labels(name).set(coverage)
    for quantile, value in (("0.5", window.label_delay_median_seconds),
                            ("0.95", window.label_delay_p95_seconds)):
        clean = finite_or_none(value)
        if clean is not None:
            m.label_delay.labels(name, quantile).set(clean)
    for report, gauge in ((result.performance, m.performance),
                          (result.reference_performance, m.performance_reference)):
        if report is None:
            continue
        for metric, value in report.metrics.items():
            clean = finite_or_none(value)
            if clean is not None:
                gauge.labels(name, metric).set(clean)
    estimated = result.estimated_performance
    if estimated is not None:
        for metric, est in estimated.metrics.items():
            for gauge, value in ((m.performance_estimated, est.value),
                                 (m.performance_estimated_lower, est.lower),
                                 (m.performance_estimated_upper, est.upper)):
                clean = finite_or_none(value)
                if clean is not None:
                    gauge.labels(name, metric).set(clean)


def _export_quality(m: Metrics, result: RunResult, max_features: int) -> None:
    quality = result.data_quality
    if quality is None:
        return
    name = result.model
    for index, (feature, found) in enumerate(quality.features.items()):
        if index >= max_features:
            break
        for check in CHECKS:
            value = finite_or_none(found.share(check))
            if value is not None:
                m.quality_share.labels(name, feature, check.removesuffix("_share")).set(value)
    m.quality_breaches.labels(name).set(len(quality.breaches))
    m.quality_unknown_fields.labels(name).set(len(quality.unknown_columns))
    m.quality_missing_features.labels(name).set(len(quality.missing_columns))


def _export_segments(m: Metrics, result: RunResult) -> None:
    name = result.model
    reports = ([result.versions] if result.versions is not None else []) + list(result.segments)
    for segment in reports:
        for group, report in segment.groups.items():
            for metric, value in report.metrics.items():
                clean = finite_or_none(value)
                if clean is not None:
                    m.segment_metric.labels(name, segment.by, group, metric).set(clean)
        for metric, disparity in segment.disparity.items():
            for kind, value in (("difference", disparity.difference),
                                ("ratio", disparity.ratio)):
                clean = finite_or_none(value)
                if clean is not None:
                    m.segment_disparity.labels(name, segment.by, metric, kind).set(clean)
        for measure, value in (
                ("demographic_parity_difference", segment.demographic_parity_difference),
                ("equalized_odds_difference", segment.equalized_odds_difference)):
            clean = finite_or_none(value)
            if clean is not None:
                m.fairness.labels(name, segment.by, measure).set(clean)
