"""Issue 5 on real Prometheus and Alertmanager: every panel and rule selector has data, the
dataset-drift alert reaches a webhook through Alertmanager and resolves, cardinality is bounded.

The model scores its predictions and gets labels, two versions and a segment key, so that the
performance, estimate, label, data-quality and segment series (issue 10) exist too.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from collector.app import Service
from collector.config import PerformanceSettings, SegmentSettings, parse_settings
from collector.config_alerts import RuleSettings
from collector.events import LabelEvent, PredictionEvent, encode_event
from tests.integration.observability import (
    Processes,
    dashboard_queries,
    query,
    rule_expressions,
    selectors,
    series,
    start_alertmanager,
    start_prometheus,
    substitute,
)
from tests.integration.spine import (
    Receiver,
    encode_all,
    make_frame,
    new_secret,
    prediction_events,
    produce,
    settings_for,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class AlertSink:
    """Receives Alertmanager's webhook notifications (payload version 4)."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                sink.notifications.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, status: str, name: str) -> list[dict[str, Any]]:
        return [a for n in self.notifications for a in n["alerts"]
                if a["status"] == status and a["labels"]["alertname"] == name]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    yield procs
    procs.stop()


def _score(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """The model's score of the positive class: calibrated, as labels are drawn from it."""
    return np.asarray(1 / (1 + np.exp(-(frame["a"].to_numpy() - 10.0))), dtype=np.float64)


def _events(frame: pd.DataFrame, *, batch: str, errors: bool = False) -> list[bytes]:
    """Scored predictions of versions 1 and 2 in turn, request ids unique across batches."""
    events = [replace(e, prediction=float(score), request_id=f"{batch}-{i}",
                      model_version=str(1 + i % 2))
              for i, (e, score) in enumerate(zip(prediction_events(frame, "m"), _score(frame),
                                                 strict=True))]
    if errors:  # a few failed requests, tagged by the model server
        events = [replace(e, tags={"status": "error"}) if i % 25 == 0 else e
                  for i, e in enumerate(events)]
    return encode_all(events)


def _labels(rng: np.random.Generator, frame: pd.DataFrame, *, batch: str) -> list[bytes]:
    """Labels, drawn from the score, for two in three predictions of `_events(batch=batch)`."""
    outcome = rng.uniform(size=len(frame)) < _score(frame)
    now = datetime.now(UTC)
    return [encode_event(LabelEvent(uuid.uuid4().hex, "m", f"{batch}-{i}", now, int(outcome[i])))
            for i in range(len(frame)) if i % 3]


def test_prometheus_alertmanager_and_dashboards_on_a_drifting_service(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Any, processes: Processes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(17)
    secret = new_secret()
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", secret)
    topics = {"predictions_topic": topic_factory("predictions"),
              "labels_topic": topic_factory("labels"),
              "deadletter_topic": topic_factory("deadletter")}
    reference = make_frame(rng, 2000)
    reference["prediction"] = _score(reference)
    reference["label"] = (rng.uniform(size=len(reference)) < reference["prediction"]).astype(int)
    retrain = Receiver()
    sink = AlertSink()
    settings = settings_for(tmp_path, database_url=f"sqlite+pysqlite:///{tmp_path / 'd.db'}",
                            bootstrap=kafka_bootstrap, topics=topics, reference=reference,
                            webhook_url=retrain.url, window_events=300)
    model = settings.models[0].model_copy(update={
        "prediction": "numeric", "performance": PerformanceSettings(prediction_type="score"),
        "segments": SegmentSettings(by=["color"]),
        # A rule of driftline's own (no channel): its instances feed the Pipeline dashboard.
        "alerts": [RuleSettings(name="drift", kind="dataset_drift")]})
    settings = settings.model_copy(update={"models": [model]})
    service = Service(settings, health_interval_seconds=0.5)
    service.start()
    try:
        alertmanager = start_alertmanager(processes, tmp_path, sink.url)
        prometheus = start_prometheus(processes, tmp_path, f"127.0.0.1:{service.http_port}",
                                      alertmanager)
        before, drifted = make_frame(rng, 300), make_frame(rng, 300, drift=True)
        produce(kafka_bootstrap, topics["predictions_topic"],
                [*_events(before, batch="before", errors=True), b"{not json",
                 *_events(drifted, batch="drifted", errors=True)])
        produce(kafka_bootstrap, topics["labels_topic"],
                [*_labels(rng, before, batch="before"), *_labels(rng, drifted, batch="drifted")])

        # Alert fires in Prometheus and reaches the webhook through Alertmanager.
        wait_for(lambda: sink.alerts("firing", "DriftlineDatasetDrift"), timeout=120,
                 message="the firing dataset-drift notification")
        firing = sink.alerts("firing", "DriftlineDatasetDrift")[0]
        assert firing["labels"]["model"] == "m"
        assert firing["labels"]["severity"] == "critical"
        assert firing["annotations"]["runbook_url"].endswith("#driftlinedatasetdrift")
        # Inhibition: feature-level alerts for the same model are held back.
        assert query(prometheus, 'ALERTS{alertname="DriftlineFeatureDrift",alertstate="firing"}')
        assert not sink.alerts("firing", "DriftlineFeatureDrift")

        # The runs after the labels landed exported what needs labels.
        wait_for(lambda: all(query(prometheus, f'{name}{{model="m"}}') for name in (
            "driftline_performance_metric", "driftline_performance_estimated_upper",
            "driftline_labels_delay_seconds", "driftline_segment_metric",
            "driftline_segment_disparity", "driftline_fairness")),
            timeout=60, message="the series computed from labels")
        wait_for(lambda: query(prometheus, 'driftline_ingest_events_total{kind="label"}'),
                 timeout=60, message="the stored labels' counter")

        # Every dashboard panel returns data.
        empty = [(board, title, expr) for board, title, expr in dashboard_queries()
                 if not query(prometheus, substitute(expr, "m"))]
        assert empty == []
        # Every selector in every panel and rule matches a scraped series.
        exprs = [substitute(e, "m") for _, _, e in dashboard_queries()]
        exprs += [e for _, e in rule_expressions()]
        unmatched = sorted({s for e in exprs for s in selectors(e) if not series(prometheus, s)})
        assert unmatched == []

        # Drift ends: the window refills from the reference distribution; the alert resolves.
        produce(kafka_bootstrap, topics["predictions_topic"],
                _events(make_frame(rng, 300), batch="after"))
        wait_for(lambda: sink.alerts("resolved", "DriftlineDatasetDrift"), timeout=120,
                 message="the resolved notification")
        assert sink.alerts("resolved", "DriftlineDatasetDrift")[0]["labels"]["model"] == "m"
    finally:
        service.stop()
        retrain.close()
        sink.close()


FEATURES = 200


def test_cardinality_three_models_two_hundred_features(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Any, processes: Processes,
) -> None:
    rng = np.random.default_rng(3)
    columns = {f"f{i:03d}": "numeric" for i in range(FEATURES)}
    reference = pd.DataFrame(rng.normal(size=(200, FEATURES)), columns=list(columns))
    ref_path = tmp_path / "reference.csv"
    reference.to_csv(ref_path, index=False)
    topic = topic_factory("predictions")
    cap = 150
    models = [{"name": f"model{k}", "features": columns, "reference": {"path": str(ref_path)},
               "schedule": {"every_seconds": 1}, "window": {"last_events": 100},
               "drift": {"numeric_method": "ks"}} for k in range(3)]
    settings = parse_settings({
        "database_url": f"sqlite+pysqlite:///{tmp_path / 'd.db'}",
        "kafka": {"bootstrap_servers": kafka_bootstrap, "predictions_topic": topic,
                  "labels_topic": topic_factory("labels"),
                  "deadletter_topic": topic_factory("deadletter"),
                  "group_id": f"g-{uuid.uuid4().hex[:6]}"},
        "http": {"port": 0}, "metrics": {"max_features_per_model": cap}, "models": models,
    }, environ={})
    service = Service(settings)
    service.start()
    try:
        current = pd.DataFrame(rng.normal(size=(100, FEATURES)), columns=list(columns))
        payloads = []
        for k in range(3):
            for row in current.to_dict("records"):
                payloads.append(encode_event(PredictionEvent(
                    uuid.uuid4().hex, f"model{k}", pd.Timestamp.now("UTC").to_pydatetime(),
                    {c: float(v) for c, v in row.items()}, 0.5, "1")))
        produce(kafka_bootstrap, topic, payloads)
        prometheus = start_prometheus(processes, tmp_path, f"127.0.0.1:{service.http_port}",
                                      None, job="driftline")

        def count(selector: str) -> int:
            result = query(prometheus, f"count({selector})")
            return int(float(result[0]["value"][1])) if result else 0

        # docs/metrics.md: statistic, p_value (p-value methods) and drifted per exported
        # feature, five data-quality shares per exported feature, and at most
        # metrics.max_features_per_model features per model.
        drift = 3 * 3 * cap
        wait_for(lambda: count('{__name__=~"driftline_drift_feature_.*"}') == drift,
                 timeout=120, message=f"{drift} per-feature drift series")
        quality = 3 * 5 * cap
        wait_for(lambda: count("driftline_quality_feature_share_ratio") == quality,
                 timeout=60, message=f"{quality} per-feature data-quality series")
        expected = drift + quality
        total = int(float(query(prometheus, 'count({job="driftline"})')[0]["value"][1]))
        not_exported = query(prometheus, "driftline_monitor_features_not_exported")
        assert sorted(float(s["value"][1]) for s in not_exported) == [FEATURES - cap] * 3
        # Everything else is bounded by models, reasons and buckets, not by features.
        assert total - expected < 400, total
    finally:
        service.stop()
