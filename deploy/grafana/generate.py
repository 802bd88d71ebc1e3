"""Generate driftline's Grafana dashboards (the JSON is committed; run this after changing it).

    python deploy/grafana/generate.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "driftline-prometheus"}
OUT = Path(__file__).with_name("dashboards")
RATE = "$__rate_interval"


def _target(expr: str, legend: str = "", instant: bool = False,
            ref_id: str = "A") -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref_id,
            "instant": instant, "range": not instant}


def panel(kind: str, title: str, expr: str, *, legend: str = "", unit: str = "short",
          width: int = 12, height: int = 8, description: str = "",
          extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """One panel with one query (its position is set by `layout`)."""
    instant = kind in {"table", "stat", "bargauge"}
    body: dict[str, Any] = {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "targets": [_target(expr, legend, instant)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {}, "gridPos": {"w": width, "h": height},
    }
    body.update(extra or {})
    return body


def with_queries(body: dict[str, Any], *queries: tuple[str, str]) -> dict[str, Any]:
    """Add queries (expression, legend) after a panel's first, as refIds B, C, ..."""
    instant = body["targets"][0]["instant"]
    for number, (expr, legend) in enumerate(queries, start=1):
        body["targets"].append(_target(expr, legend, instant, chr(ord("A") + number)))
    return body


def _override(name: str, color: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A fixed color and field properties for the series whose display name (legend) is `name`."""
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": color}},
                           *({"id": key, "value": value} for key, value in properties.items())]}


def estimate_panel(metric: str, title: str) -> dict[str, Any]:
    """Realized `metric` against its CBPE estimate, the estimate's band and the reference."""
    where = f'model="$model", metric="{metric}"'
    body = panel(
        "timeseries", title, f"driftline_performance_metric{{{where}}}", legend="realized",
        width=8, description="Realized: over the window's labelled predictions. Estimated: CBPE, "
        "without labels; the band is the estimate +- 3 standard errors. Reference: the model on "
        "its reference dataset.",
        extra={"fieldConfig": {"defaults": {"unit": "short", "decimals": 3}, "overrides": [
            _override("realized", "green", {}),
            _override("estimated", "blue", {}),
            _override("band upper", "blue", {"custom.lineWidth": 0, "custom.fillOpacity": 20,
                                             "custom.fillBelowTo": "band lower"}),
            _override("band lower", "blue", {"custom.lineWidth": 0, "custom.hideFrom": {
                "legend": True, "tooltip": False, "viz": False}}),
            _override("reference", "text", {"custom.lineStyle": {"fill": "dash",
                                                                 "dash": [10, 10]}}),
        ]}})
    return with_queries(
        body,
        (f"driftline_performance_estimated{{{where}}}", "estimated"),
        (f"driftline_performance_estimated_upper{{{where}}}", "band upper"),
        (f"driftline_performance_estimated_lower{{{where}}}", "band lower"),
        (f"driftline_performance_reference{{{where}}}", "reference"))


def layout(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each panel a unique id and flow them left to right, 24 columns wide."""
    x = y = row_height = 0
    for number, item in enumerate(panels, start=1):
        grid = item["gridPos"]
        if x + grid["w"] > 24:
            x, y, row_height = 0, y + row_height, 0
        grid.update(x=x, y=y)
        x += grid["w"]
        row_height = max(row_height, grid["h"])
        item["id"] = number
    return panels


def variable(name: str, query: str, *, multi: bool, include_all: bool,
             label: str) -> dict[str, Any]:
    """A query template variable over Prometheus label values."""
    return {
        "name": name, "label": label, "type": "query", "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"}, "definition": query,
        "refresh": 2, "multi": multi, "includeAll": include_all, "sort": 1,
        "current": {}, "options": [], "hide": 0,
    }


def dashboard(uid: str, title: str, panels: list[dict[str, Any]],
              variables: list[dict[str, Any]]) -> dict[str, Any]:
    """A complete dashboard document for file provisioning."""
    return {
        "uid": uid, "title": title, "tags": ["driftline"], "timezone": "utc",
        "schemaVersion": 39, "version": 1, "editable": False, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "id": None,
        "templating": {"list": variables}, "annotations": {"list": []},
        "panels": layout(panels),
    }


MODELS_ALL = variable("model", "label_values(driftline_monitor_schedule_seconds, model)",
                      multi=True, include_all=True, label="Model")
MODEL_ONE = variable("model", "label_values(driftline_monitor_schedule_seconds, model)",
                     multi=False, include_all=False, label="Model")
VERSION = variable(
    "version", 'label_values(driftline_serving_predictions_total{model="$model"}, model_version)',
    multi=True, include_all=True, label="Version")

OVERVIEW = dashboard("driftline-overview", "driftline / Overview", [
    panel("stat", "Dataset drift (last run)",
          'max by (model) (driftline_drift_dataset_drifted{model=~"$model"})',
          legend="{{model}}", width=8,
          extra={"options": {"colorMode": "background", "textMode": "value_and_name"},
                 "fieldConfig": {"defaults": {"unit": "short", "mappings": [
                     {"type": "value", "options": {"0": {"text": "no drift", "color": "green"},
                                                   "1": {"text": "DRIFT", "color": "red"}}}]},
                                 "overrides": []}}),
    panel("bargauge", "Share of features drifted",
          'driftline_drift_share_drifted_ratio{model=~"$model"}', legend="{{model}}",
          unit="percentunit", width=8),
    panel("stat", "Since last run", 'time() - driftline_monitor_last_run_timestamp_seconds'
          '{model=~"$model"}', legend="{{model}}", unit="s", width=8),
    panel("timeseries", "Share drifted over time",
          'driftline_drift_share_drifted_ratio{model=~"$model"}', legend="{{model}}",
          unit="percentunit"),
    panel("timeseries", "Predictions per second",
          f'sum by (model) (rate(driftline_serving_predictions_total{{model=~"$model"}}[{RATE}]))',
          legend="{{model}}", unit="reqps"),
    panel("table", "Firing alerts", 'ALERTS{alertstate="firing", alertname=~"Driftline.*"}',
          width=24, description="Alerts Prometheus evaluates from deploy/prometheus/rules."),
], [MODELS_ALL])

MODEL = dashboard("driftline-model", "driftline / Model", [
    panel("timeseries", "Drift statistic per feature",
          'driftline_drift_feature_statistic{model="$model"}', legend="{{feature}} ({{method}})"),
    panel("timeseries", "p-value per feature (p-value tests)",
          'driftline_drift_feature_p_value{model="$model"}', legend="{{feature}} ({{method}})"),
    panel("table", "Drifted features (last run)",
          'driftline_drift_feature_drifted{model="$model"} == 1', legend="{{feature}}"),
    panel("timeseries", "Model outputs: drift statistic",
          'driftline_drift_prediction_statistic{model="$model"}', legend="{{method}}"),
    panel("timeseries", "Serving latency p50 / p95",
          f'histogram_quantile(0.95, sum by (le, model_version) (rate(driftline_serving_latency_'
          f'seconds_bucket{{model="$model", model_version=~"$version"}}[{RATE}])))',
          legend="p95 v{{model_version}}", unit="s"),
    panel("timeseries", "Throughput",
          f'sum by (model_version) (rate(driftline_serving_predictions_total{{model="$model", '
          f'model_version=~"$version"}}[{RATE}]))', legend="v{{model_version}}", unit="reqps"),
    panel("timeseries", "Error rate",
          f'sum by (model_version) (rate(driftline_serving_errors_total{{model="$model", '
          f'model_version=~"$version"}}[{RATE}])) / clamp_min(sum by (model_version) '
          f'(rate(driftline_serving_predictions_total{{model="$model", '
          f'model_version=~"$version"}}[{RATE}])), 1e-9)', legend="v{{model_version}}",
          unit="percentunit"),
    panel("timeseries", "Runs by status",
          f'sum by (status) (increase(driftline_monitor_runs_total{{model="$model"}}[{RATE}]))',
          legend="{{status}}"),
    panel("timeseries", "Events in the window",
          'driftline_monitor_window_events{model="$model"}', legend="window"),
    panel("timeseries", "Realized performance, every metric",
          'driftline_performance_metric{model="$model"}', legend="{{metric}}",
          description="Classification: accuracy, precision, recall, f1, roc_auc, ... ; "
          "regression: mae, rmse, r2, ... (docs/metrics.md)."),
    estimate_panel("roc_auc", "ROC AUC: realized vs estimated"),
    estimate_panel("f1", "F1: realized vs estimated"),
    estimate_panel("accuracy", "Accuracy: realized vs estimated"),
    panel("timeseries", "Label coverage", 'driftline_labels_coverage_ratio{model="$model"}',
          legend="labelled share", unit="percentunit", width=8),
    panel("timeseries", "Label delay", 'driftline_labels_delay_seconds{model="$model"}',
          legend="quantile {{quantile}}", unit="s", width=8,
          description="Label time minus prediction time over the window's labelled predictions."),
    panel("timeseries", "Labelled predictions in the window",
          'driftline_labels_labelled_events{model="$model"}', legend="labelled", width=8),
    panel("timeseries", "Data quality: worst feature per check",
          'max by (check) (driftline_quality_feature_share_ratio{model="$model"})',
          legend="{{check}}", unit="percentunit"),
    with_queries(
        panel("timeseries", "Data quality: breaches, unknown fields, missing features",
              'driftline_quality_breaches{model="$model"}', legend="breaches"),
        ('driftline_quality_unknown_fields{model="$model"}', "unknown fields"),
        ('driftline_quality_missing_features{model="$model"}', "missing features")),
    panel("table", "Data quality per feature (last run)",
          'sort_desc(driftline_quality_feature_share_ratio{model="$model"})',
          legend="{{feature}} {{check}}", unit="percentunit", width=24,
          description="Share of the window's events per feature and check, worst first."),
    panel("timeseries", "Realized performance per model version",
          'driftline_segment_metric{model="$model", segment="model_version", '
          'group=~"$version", metric=~"accuracy|f1|roc_auc|mae|rmse|r2"}',
          legend="v{{group}} {{metric}}", width=8,
          description="Exported while the window holds more than one version."),
    panel("timeseries", "Segment disparity (max - min across groups)",
          'driftline_segment_disparity{model="$model", kind="difference"}',
          legend="{{segment}}: {{metric}}", width=8),
    panel("timeseries", "Fairness across segment groups", 'driftline_fairness{model="$model"}',
          legend="{{segment}}: {{measure}}", width=8,
          description="Binary classification: demographic parity difference and equalized "
          "odds difference (fairlearn's definitions; detectors/segments.py)."),
], [MODEL_ONE, VERSION])

PIPELINE = dashboard("driftline-pipeline", "driftline / Pipeline health", [
    panel("timeseries", "Events ingested per second",
          f'sum by (kind, outcome) (rate(driftline_ingest_events_total[{RATE}]))',
          legend="{{kind}} {{outcome}}", unit="ops"),
    panel("timeseries", "Consumer lag",
          'sum by (topic) (driftline_ingest_consumer_lag_messages)', legend="{{topic}}"),
    panel("timeseries", "Dead letters by reason",
          f'sum by (reason) (increase(driftline_ingest_deadletters_total[{RATE}]))',
          legend="{{reason}}"),
    panel("timeseries", "Run duration p95",
          f'histogram_quantile(0.95, sum by (le, model) '
          f'(rate(driftline_monitor_run_duration_seconds_bucket[{RATE}])))',
          legend="{{model}}", unit="s"),
    panel("timeseries", "Notifications by channel and outcome",
          f'sum by (channel, outcome) (increase(driftline_alerts_deliveries_total[{RATE}]))',
          legend="{{channel}} {{outcome}}",
          description="Delivery attempts of every channel (Slack, e-mail, webhooks, "
          "Alertmanager, retraining): delivered, retry (will be tried again), failed."),
    panel("timeseries", "driftline alert instances (own rules)",
          'sum by (model, rule, state) (driftline_alerts_instances{state=~"pending|firing"})',
          legend="{{model}} {{rule}} {{state}}",
          description="Instances of the alert rules declared in driftline.yaml, pending or "
          "firing after each model's last run (docs/alerts.md)."),
    panel("stat", "Outbox pending", "driftline_alerts_outbox_pending_deliveries", width=6),
    panel("stat", "Kafka reachable", "min(driftline_kafka_up)", width=6),
    panel("stat", "Store reachable", "min(driftline_store_up)", width=6),
    panel("stat", "Scrape up", 'min(up{job="driftline"})', width=6),
], [])


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for board in (OVERVIEW, MODEL, PIPELINE):
        path = OUT / f"{board['uid']}.json"
        path.write_text(json.dumps(board, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
