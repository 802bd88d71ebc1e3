"""Prometheus metrics of the collector, on a registry built by the wiring code.

Every name here is part of the metrics contract in docs/metrics.md. Labels are
bounded: model, model_version, feature, method, reason, outcome, kind, channel,
status, topic, partition. Never request ids or values.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

RUN_STATUSES = ("ok", "insufficient_data", "failed")
DELIVERY_OUTCOMES = ("delivered", "retry", "failed")
RUN_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Metrics:
    """All collector metrics, registered on one registry."""

    registry: CollectorRegistry
    # ingest
    events: Counter
    deadletters: Counter
    ingest_batches: Counter
    store_deleted: Counter
    store_compacted: Counter
    last_event_timestamp: Gauge
    consumer_lag: Gauge
    kafka_up: Gauge
    store_up: Gauge
    # serving (derived from prediction events)
    serving_predictions: Counter
    serving_latency: Histogram
    serving_errors: Counter
    # monitoring runs
    runs: Counter
    run_duration: Histogram
    last_run_timestamp: Gauge
    window_events: Gauge
    schedule_seconds: Gauge
    features_not_exported: Gauge
    feature_statistic: Gauge
    feature_p_value: Gauge
    feature_drifted: Gauge
    dataset_drifted: Gauge
    share_drifted: Gauge
    drifted_features: Gauge
    prediction_drifted: Gauge
    prediction_statistic: Gauge
    # performance, data quality, segments (issue 10)
    performance: Gauge
    performance_estimated: Gauge
    performance_estimated_lower: Gauge
    performance_estimated_upper: Gauge
    performance_reference: Gauge
    label_coverage: Gauge
    label_delay: Gauge
    labelled_events: Gauge
    quality_share: Gauge
    quality_breaches: Gauge
    quality_unknown_fields: Gauge
    quality_missing_features: Gauge
    segment_metric: Gauge
    segment_disparity: Gauge
    fairness: Gauge
    # alerts
    alert_instances: Gauge
    deliveries: Counter
    outbox_pending: Gauge
    build_info: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        """Create every metric on `registry` (a new one when None)."""
        # `_created` samples double the series of every counter and histogram and no dashboard
        # or rule of ours reads them (the switch is process-wide in prometheus-client).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        reg = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=reg,
            events=Counter(
                "driftline_ingest_events_total",
                "Events read from Kafka by kind, model and outcome (stored, duplicate).",
                ["kind", "model", "outcome"],
                registry=reg,
            ),
            deadletters=Counter(
                "driftline_ingest_deadletters_total",
                "Events sent to the dead-letter topic, by reason.",
                ["reason"],
                registry=reg,
            ),
            ingest_batches=Counter(
                "driftline_ingest_batches_total",
                "Batches written to the store and committed to Kafka.",
                registry=reg,
            ),
            store_deleted=Counter(
                "driftline_store_retention_deleted_total",
                "Raw events deleted by retention, by kind (prediction, label).",
                ["kind"],
                registry=reg,
            ),
            store_compacted=Counter(
                "driftline_store_batches_compacted_total",
                "Small event batches merged into larger ones by compaction.",
                registry=reg,
            ),
            last_event_timestamp=Gauge(
                "driftline_ingest_last_event_timestamp_seconds",
                "Unix time at which the last event of each model was stored.",
                ["model"],
                registry=reg,
            ),
            consumer_lag=Gauge(
                "driftline_ingest_consumer_lag_messages",
                "Messages behind the partition's high watermark.",
                ["topic", "partition"],
                registry=reg,
            ),
            kafka_up=Gauge(
                "driftline_kafka_up", "1 when the Kafka consumer is connected.", registry=reg
            ),
            store_up=Gauge(
                "driftline_store_up", "1 when the store answered its last query.", registry=reg
            ),
            serving_predictions=Counter(
                "driftline_serving_predictions_total",
                "Predictions served, counted from the logged events.",
                ["model", "model_version"],
                registry=reg,
            ),
            serving_latency=Histogram(
                "driftline_serving_latency_seconds",
                "Serving latency reported by the model server (latency_ms of the events).",
                ["model", "model_version"],
                buckets=LATENCY_BUCKETS,
                registry=reg,
            ),
            serving_errors=Counter(
                "driftline_serving_errors_total",
                "Predictions the model server tagged as failed (tags.status = \"error\").",
                ["model", "model_version"],
                registry=reg,
            ),
            runs=Counter(
                "driftline_monitor_runs_total",
                "Monitoring runs by model and status (ok, insufficient_data, failed).",
                ["model", "status"],
                registry=reg,
            ),
            run_duration=Histogram(
                "driftline_monitor_run_duration_seconds",
                "Wall time of one monitoring run.",
                ["model"],
                buckets=RUN_DURATION_BUCKETS,
                registry=reg,
            ),
            last_run_timestamp=Gauge(
                "driftline_monitor_last_run_timestamp_seconds",
                "Unix time at which the model's last run finished.",
                ["model"],
                registry=reg,
            ),
            window_events=Gauge(
                "driftline_monitor_window_events",
                "Events in the current window of the model's last run.",
                ["model"],
                registry=reg,
            ),
            schedule_seconds=Gauge(
                "driftline_monitor_schedule_seconds",
                "Configured interval between the model's runs.",
                ["model"],
                registry=reg,
            ),
            features_not_exported=Gauge(
                "driftline_monitor_features_not_exported",
                "Features of the model's last run left out of the per-feature series by the cap "
                "metrics.max_features_per_model.",
                ["model"],
                registry=reg,
            ),
            feature_statistic=Gauge(
                "driftline_drift_feature_statistic",
                "Drift statistic of each feature in the last run.",
                ["model", "feature", "method"],
                registry=reg,
            ),
            feature_p_value=Gauge(
                "driftline_drift_feature_p_value",
                "p-value of each feature's test in the last run (p-value methods only).",
                ["model", "feature", "method"],
                registry=reg,
            ),
            feature_drifted=Gauge(
                "driftline_drift_feature_drifted",
                "1 when the feature drifted in the last run.",
                ["model", "feature", "method"],
                registry=reg,
            ),
            dataset_drifted=Gauge(
                "driftline_drift_dataset_drifted",
                "1 when the dataset verdict of the last run is drift.",
                ["model"],
                registry=reg,
            ),
            share_drifted=Gauge(
                "driftline_drift_share_drifted_ratio",
                "Share of features that drifted in the last run (0 to 1).",
                ["model"],
                registry=reg,
            ),
            drifted_features=Gauge(
                "driftline_drift_drifted_features",
                "Number of features that drifted in the last run.",
                ["model"],
                registry=reg,
            ),
            prediction_drifted=Gauge(
                "driftline_drift_prediction_drifted",
                "1 when the model's outputs (prediction column) drifted in the last run.",
                ["model"],
                registry=reg,
            ),
            prediction_statistic=Gauge(
                "driftline_drift_prediction_statistic",
                "Drift statistic of the model's outputs in the last run.",
                ["model", "method"],
                registry=reg,
            ),
            performance=Gauge(
                "driftline_performance_metric",
                "Realized performance of the last run's window over its labelled predictions "
                "(metric: accuracy, f1, roc_auc, ..., mae, rmse, r2, ...).",
                ["model", "metric"],
                registry=reg,
            ),
            performance_estimated=Gauge(
                "driftline_performance_estimated",
                "Performance of the last run's window estimated without labels (CBPE).",
                ["model", "metric"],
                registry=reg,
            ),
            performance_estimated_lower=Gauge(
                "driftline_performance_estimated_lower",
                "Lower end of the estimate's sampling-error band (estimate - 3 SE, clipped).",
                ["model", "metric"],
                registry=reg,
            ),
            performance_estimated_upper=Gauge(
                "driftline_performance_estimated_upper",
                "Upper end of the estimate's sampling-error band (estimate + 3 SE, clipped).",
                ["model", "metric"],
                registry=reg,
            ),
            performance_reference=Gauge(
                "driftline_performance_reference",
                "Performance of the model on its reference dataset.",
                ["model", "metric"],
                registry=reg,
            ),
            label_coverage=Gauge(
                "driftline_labels_coverage_ratio",
                "Share of the last run's window that has labels (0 to 1).",
                ["model"],
                registry=reg,
            ),
            label_delay=Gauge(
                "driftline_labels_delay_seconds",
                "Label time minus prediction time over the window's labelled predictions.",
                ["model", "quantile"],
                registry=reg,
            ),
            labelled_events=Gauge(
                "driftline_labels_labelled_events",
                "Labelled predictions in the last run's window.",
                ["model"],
                registry=reg,
            ),
            quality_share=Gauge(
                "driftline_quality_feature_share_ratio",
                "Share of the window's events with a data-quality problem, per feature and "
                "check (missing, type_mismatch, non_finite, out_of_range, new_category).",
                ["model", "feature", "check"],
                registry=reg,
            ),
            quality_breaches=Gauge(
                "driftline_quality_breaches",
                "Data-quality checks over their threshold in the last run.",
                ["model"],
                registry=reg,
            ),
            quality_unknown_fields=Gauge(
                "driftline_quality_unknown_fields",
                "Fields events carried that the configuration does not name, in the last run.",
                ["model"],
                registry=reg,
            ),
            quality_missing_features=Gauge(
                "driftline_quality_missing_features",
                "Configured features without a single value in the last run's window.",
                ["model"],
                registry=reg,
            ),
            segment_metric=Gauge(
                "driftline_segment_metric",
                "Realized performance per group of a segment key (model_version or a "
                "configured key), groups capped by segments.max_groups.",
                ["model", "segment", "group", "metric"],
                registry=reg,
            ),
            segment_disparity=Gauge(
                "driftline_segment_disparity",
                "Disparity of a metric across a segment's groups (kind: difference = max - "
                "min, ratio = min / max).",
                ["model", "segment", "metric", "kind"],
                registry=reg,
            ),
            fairness=Gauge(
                "driftline_fairness",
                "Fairness across a segment's groups (measure: demographic_parity_difference, "
                "equalized_odds_difference).",
                ["model", "segment", "measure"],
                registry=reg,
            ),
            alert_instances=Gauge(
                "driftline_alerts_instances",
                "Alert instances of driftline's own rules by model, rule and state "
                "(inactive, pending, firing), after the model's last run.",
                ["model", "rule", "state"],
                registry=reg,
            ),
            deliveries=Counter(
                "driftline_alerts_deliveries_total",
                "Delivery attempts of every channel (alert channels and retraining webhooks) by "
                "outcome (delivered, retry, failed).",
                ["channel", "outcome"],
                registry=reg,
            ),
            outbox_pending=Gauge(
                "driftline_alerts_outbox_pending_deliveries",
                "Deliveries waiting in the outbox.",
                registry=reg,
            ),
            build_info=Gauge(
                "driftline_build_info", "Always 1; the version is a label.", ["version"],
                registry=reg,
            ),
        )

    def init_model(self, model: str, every_seconds: float) -> None:
        """Create a model's series at zero, so alert selectors match before anything happens."""
        self.schedule_seconds.labels(model).set(every_seconds)
        for status in RUN_STATUSES:
            self.runs.labels(model, status)

    def init_channel(self, channel: str) -> None:
        """Create a delivery channel's series at zero."""
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(channel, outcome)

    def init_reasons(self, reasons: tuple[str, ...]) -> None:
        """Create the dead-letter series at zero, one per reason."""
        for reason in reasons:
            self.deadletters.labels(reason)
