"""The logging proxy in front of real model servers (issue 13, item 2, must-show).

MLServer's REST API (Open Inference Protocol v2, scikit-learn iris), a KServe Python
`ModelServer` (a custom v1 model) and `mlflow models serve` (an sklearn pyfunc), each in its own
venv (scripts/model-servers). Every request goes to the server directly and through a real
`driftline proxy` process: status, body bytes and headers (but Date and the x-request-id the
proxy adds) must be the same. Every row of every successful inference request must then be on
the predictions topic, decoded by the collector's own decoder, with the features and
prediction read from the request and response here, the request id the caller sent or was
given back, and one deterministic event id per row. A broker stopped mid-run (our own, on a
free port) must fail no request, and every row logged while it is down must be counted dropped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from kafka import KafkaConsumer

from collector.app import Service
from collector.config import Settings, parse_settings
from collector.events import PredictionEvent, decode_event
from collector.store.queries import stored_event_ids
from driftline_sidecar.asgi import row_request_id
from driftline_sidecar.payloads import row_event_id
from tests import services
from tests.integration import model_servers
from tests.integration.model_servers import FEATURES, ModelServer, ModelServerError, ProxyProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SKIPPED_HEADERS = {"date", "x-request-id"}


def _server(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    try:
        server = model_servers.start(name, tmp_path_factory.mktemp(name))
    except (ModelServerError, subprocess.SubprocessError, OSError) as exc:
        pytest.fail(f"{name} could not be installed or started: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    yield from _server("mlserver", tmp_path_factory)


@pytest.fixture(scope="module")
def kserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    yield from _server("kserve", tmp_path_factory)


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    yield from _server("mlflow", tmp_path_factory)


def _proxy(server: ModelServer, model: str, bootstrap: str, topic: str, workdir: Path,
           extra: list[str] | None = None) -> ProxyProcess:
    try:
        return model_servers.start_proxy(server.url, model=model, bootstrap=bootstrap,
                                         topic=topic, workdir=workdir, extra=extra)
    except ModelServerError as exc:
        pytest.fail(str(exc), pytrace=False)


def _rows(rng: np.random.Generator, n: int) -> list[list[float]]:
    low, high = np.array([4.3, 2.0, 1.0, 0.1]), np.array([7.9, 4.4, 6.9, 2.5])
    return np.round(rng.uniform(low, high, size=(n, 4)), 1).tolist()


def _headers(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items()
            if name not in SKIPPED_HEADERS}


def _same(direct: httpx.Response, proxied: httpx.Response) -> None:
    assert proxied.status_code == direct.status_code
    assert proxied.content == direct.content
    assert _headers(proxied) == _headers(direct)


def _consume(bootstrap: str, topic: str, expected: int, timeout: float = 90.0
             ) -> list[PredictionEvent]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
    events: list[PredictionEvent] = []
    deadline = time.monotonic() + timeout
    settle: float | None = None
    try:
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    event = decode_event(record.value)
                    assert isinstance(event, PredictionEvent)
                    events.append(event)
            if len(events) >= expected:
                # One more second: anything beyond the expected count would be a duplicate.
                settle = settle or time.monotonic() + 1.0
                if time.monotonic() > settle:
                    break
    finally:
        consumer.close()
    return events


def _check_events(events: list[PredictionEvent], expected: dict[str, dict[str, Any]],
                  model: str) -> None:
    """`expected`: event id -> {"request_id", "features", "prediction", "version"}."""
    assert len(events) == len(expected)
    by_id = {event.event_id: event for event in events}
    assert set(by_id) == set(expected)
    for event_id, want in expected.items():
        event = by_id[event_id]
        assert event.model == model
        assert event.request_id == want["request_id"]
        assert dict(event.features) == want["features"]
        assert event.prediction == want["prediction"]
        assert event.model_version == want["version"]
        assert event.latency_ms is not None
        assert event.latency_ms >= 0


def test_mlserver_v2_through_the_proxy(mlserver: ModelServer, kafka_bootstrap: str,
                                       topic_factory: Any, tmp_path: Path) -> None:
    topic = topic_factory("proxy-mlserver")
    model = "iris-mlserver"
    # No --features: the names of the [n, 4] tensor's columns come from GET /v2/models/iris.
    proxy = _proxy(mlserver, model, kafka_bootstrap, topic, tmp_path)
    rng = np.random.default_rng(13)
    expected: dict[str, dict[str, Any]] = {}
    try:
        with httpx.Client(timeout=30) as client:
            for i in range(41):
                # The last one is answered gzipped (MLServer compresses past 1,000 bytes).
                rows = _rows(rng, 60 if i == 40 else 1 + i % 4)
                n = len(rows)
                if i % 2 == 0:  # one tensor of four unnamed columns
                    inputs = [{"name": "input-0", "datatype": "FP64", "shape": [n, 4],
                               "data": [value for row in rows for value in row]}]
                    body: dict[str, Any] = {"id": f"mls-{i}", "inputs": inputs}
                else:  # MLServer's pandas codec: one named tensor per column
                    body = {"id": f"mls-{i}", "parameters": {"content_type": "pd"},
                            "inputs": [{"name": name, "datatype": "FP64", "shape": [n, 1],
                                        "data": [row[j] for row in rows]}
                                       for j, name in enumerate(FEATURES)]}
                headers = {"x-request-id": f"hdr-{i}"} if i % 4 == 0 else {}
                content = json.dumps(body).encode()
                direct = client.post(f"{mlserver.url}/v2/models/iris/infer", content=content,
                                     headers={"content-type": "application/json", **headers})
                proxied = client.post(f"{proxy.url}/v2/models/iris/infer", content=content,
                                      headers={"content-type": "application/json", **headers})
                _same(direct, proxied)
                assert direct.status_code == 200
                assert (proxied.headers.get("content-encoding") == "gzip") == (i == 40)
                request_id = headers.get("x-request-id", f"mls-{i}")
                assert proxied.headers["x-request-id"] == request_id
                output = direct.json()["outputs"][0]
                assert output["name"] == "predict_proba"
                scores = np.reshape(output["data"], output["shape"]).tolist()
                for j, row in enumerate(rows):
                    expected[row_event_id(model, request_id, j)] = {
                        "request_id": row_request_id(request_id, j, len(rows)),
                        "features": dict(zip(FEATURES, row, strict=True)),
                        "prediction": scores[j], "version": "v1"}
            # Not inference, or not answered 200: passed through as they are, and not logged.
            for method, path, payload in [
                ("GET", "/v2/models/iris", None), ("GET", "/v2/health/ready", None),
                ("GET", "/v2/models/iris/ready", None), ("GET", "/v2/models/nope", None),
                ("POST", "/v2/models/nope/infer", b'{"inputs": []}'),
                ("POST", "/v2/models/iris/infer", b'{"id": "bad", "inputs": [{"name": "x", '
                                                  b'"datatype": "FP64", "shape": [1, 4], '
                                                  b'"data": [1, 2]}]}'),
            ]:
                direct = client.request(method, mlserver.url + path, content=payload)
                proxied = client.request(method, proxy.url + path, content=payload)
                _same(direct, proxied)
        events = _consume(kafka_bootstrap, topic, len(expected))
        _check_events(events, expected, model)
        metrics = proxy.metrics()
        assert metrics["driftline_proxy_rows_logged_total"] == len(expected)
        assert metrics['driftline_proxy_requests_total{kind="infer"}'] == 43
        assert metrics['driftline_proxy_unlogged_total{reason="error_status"}'] == 2
        assert metrics['driftline_sidecar_events_total{kind="prediction",outcome="sent"}'] == len(
            expected)
    finally:
        proxy.stop()


def _collector_settings(tmp_path: Path, *, model: str, names: list[str], bootstrap: str,
                        topics: dict[str, str]) -> tuple[Settings, Path]:
    """The collector's settings, and the same written as driftline.yaml (features in order)."""
    reference = pd.DataFrame(_rows(np.random.default_rng(1), 300), columns=names)
    reference_path = tmp_path / "reference.csv"
    reference.to_csv(reference_path, index=False)
    data = {
        "database_url": f"sqlite+pysqlite:///{tmp_path / 'driftline.db'}",
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"g-{model}-{time.time_ns()}",
                  **topics},
        "http": {"host": "127.0.0.1", "port": 0},
        "models": [{"name": model, "features": dict.fromkeys(names, "numeric"),
                    "reference": {"path": str(reference_path)},
                    "schedule": {"every_seconds": 3600}}],
    }
    path = tmp_path / "driftline.yaml"
    # sort_keys=False: the proxy names unnamed columns in the order the features are listed.
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return parse_settings(data, environ={}), path


def test_kserve_v1_through_the_proxy_into_the_collector(
        kserve: ModelServer, kafka_bootstrap: str, topic_factory: Any, tmp_path: Path) -> None:
    model = "iris-kserve"
    names = ["sl", "sw", "pl", "pw"]
    topics = {"predictions_topic": topic_factory("proxy-kserve"),
              "labels_topic": topic_factory("proxy-kserve-labels"),
              "deadletter_topic": topic_factory("proxy-kserve-dead")}
    settings, config = _collector_settings(tmp_path, model=model, names=names,
                                           bootstrap=kafka_bootstrap, topics=topics)
    # The proxy takes Kafka, the topic and the feature names from the collector's own config.
    proxy = _proxy(kserve, model, kafka_bootstrap, topics["predictions_topic"], tmp_path,
                   ["--config", str(config)])
    service = Service(settings)
    service.start()
    rng = np.random.default_rng(14)
    expected: dict[str, dict[str, Any]] = {}
    try:
        with httpx.Client(timeout=30) as client:
            for i in range(30):
                rows = _rows(rng, 1 + i % 5)
                content = json.dumps({"instances": rows}).encode()
                headers = {"x-request-id": f"ks-{i}"} if i % 3 else {}
                direct = client.post(f"{kserve.url}/v1/models/iris:predict", content=content,
                                     headers=headers)
                proxied = client.post(f"{proxy.url}/v1/models/iris:predict", content=content,
                                      headers=headers)
                _same(direct, proxied)
                assert direct.status_code == 200
                # Without a header the proxy makes one up and tells the caller.
                request_id = headers.get("x-request-id") or proxied.headers["x-request-id"]
                assert proxied.headers["x-request-id"] == request_id
                if not headers:
                    assert len(request_id) == 32
                for j, (row, scores) in enumerate(zip(rows, direct.json()["predictions"],
                                                      strict=True)):
                    expected[row_event_id(model, request_id, j)] = {
                        "request_id": row_request_id(request_id, j, len(rows)),
                        "features": dict(zip(names, row, strict=True)),
                        "prediction": scores, "version": None}
            for method, path, payload in [
                ("GET", "/v1/models/iris", None), ("GET", "/v1/models", None),
                ("GET", "/v1/models/iris/metadata", None),
                ("POST", "/v1/models/iris:predict", b'{"inputs": [[1, 2, 3, 4]]}'),  # a 500
                ("POST", "/v1/models/iris:predict", b"not json"),
            ]:
                direct = client.request(method, kserve.url + path, content=payload)
                proxied = client.request(method, proxy.url + path, content=payload)
                _same(direct, proxied)
        events = _consume(kafka_bootstrap, topics["predictions_topic"], len(expected))
        _check_events(events, expected, model)
        # And the collector stored every one of them, once.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with service.sessions() as session:
                stored = stored_event_ids(session, model)
            if len(stored) >= len(expected):
                break
            time.sleep(0.5)
        assert sorted(stored) == sorted(expected)
        metrics = proxy.metrics()
        assert metrics["driftline_proxy_rows_logged_total"] == len(expected)
        assert metrics['driftline_proxy_unlogged_total{reason="error_status"}'] == 2
    finally:
        service.stop()
        proxy.stop()


def test_mlflow_through_the_proxy(mlflow: ModelServer, kafka_bootstrap: str, topic_factory: Any,
                                  tmp_path: Path) -> None:
    topic = topic_factory("proxy-mlflow")
    model = "iris-mlflow"
    proxy = _proxy(mlflow, model, kafka_bootstrap, topic, tmp_path)
    rng = np.random.default_rng(15)
    expected: dict[str, dict[str, Any]] = {}
    try:
        with httpx.Client(timeout=30) as client:
            for i in range(20):
                rows = _rows(rng, 1 + i % 3)
                if i % 2 == 0:
                    body: dict[str, Any] = {"dataframe_split": {"columns": list(FEATURES),
                                                                "data": rows}}
                else:
                    body = {"dataframe_records": [dict(zip(FEATURES, row, strict=True))
                                                  for row in rows]}
                content = json.dumps(body).encode()
                headers = {"content-type": "application/json", "x-request-id": f"mlf-{i}"}
                direct = client.post(f"{mlflow.url}/invocations", content=content,
                                     headers=headers)
                proxied = client.post(f"{proxy.url}/invocations", content=content,
                                      headers=headers)
                _same(direct, proxied)
                assert direct.status_code == 200
                for j, (row, label) in enumerate(zip(rows, direct.json()["predictions"],
                                                     strict=True)):
                    expected[row_event_id(model, f"mlf-{i}", j)] = {
                        "request_id": row_request_id(f"mlf-{i}", j, len(rows)),
                        "features": dict(zip(FEATURES, row, strict=True)),
                        "prediction": label, "version": None}
            csv = ",".join(FEATURES) + "\n5.1,3.5,1.4,0.2\n"
            for content_type, payload in [("text/csv", csv.encode()),  # 200, not JSON: counted
                                          ("application/json", b'[{"a": 1}]')]:  # a 400
                direct = client.post(f"{mlflow.url}/invocations", content=payload,
                                     headers={"content-type": content_type})
                proxied = client.post(f"{proxy.url}/invocations", content=payload,
                                      headers={"content-type": content_type})
                _same(direct, proxied)
            for path in ("/ping", "/health", "/version"):
                _same(client.get(mlflow.url + path), client.get(proxy.url + path))
        events = _consume(kafka_bootstrap, topic, len(expected))
        _check_events(events, expected, model)
        metrics = proxy.metrics()
        assert metrics['driftline_proxy_unlogged_total{reason="invalid_json"}'] == 1
        assert metrics['driftline_proxy_unlogged_total{reason="error_status"}'] == 1
    finally:
        proxy.stop()


def _broker(action: str, port: int, data: Path) -> None:
    services._run(["bash", str(services.ROOT / "scripts" / "kafka-local"), action],
                  env={"KAFKA_PORT": str(port),
                       "KAFKA_CONTROLLER_PORT": str(model_servers.free_port()),
                       "KAFKA_DATA_DIR": str(data)})


def test_broker_stopped_mid_run_fails_no_request(kserve: ModelServer, tmp_path: Path) -> None:
    port = model_servers.free_port()
    data = tmp_path / "kafka"
    bootstrap = f"127.0.0.1:{port}"
    try:
        _broker("start", port, data)
    except services.ServiceError as exc:
        pytest.fail(f"our own broker could not start: {exc}", pytrace=False)
    model, topic = "iris-outage", "proxy.outage.predictions"
    proxy = _proxy(kserve, model, bootstrap, topic, tmp_path, ["--max-unsent-seconds", "3"])
    rng = np.random.default_rng(16)
    try:
        with httpx.Client(timeout=30) as client:

            def send(count: int, prefix: str) -> int:
                rows_sent = 0
                for i in range(count):
                    rows = _rows(rng, 2)
                    content = json.dumps({"instances": rows}).encode()
                    headers = {"x-request-id": f"{prefix}-{i}"}
                    direct = client.post(f"{kserve.url}/v1/models/iris:predict", content=content,
                                         headers=headers)
                    proxied = client.post(f"{proxy.url}/v1/models/iris:predict",
                                          content=content, headers=headers)
                    _same(direct, proxied)
                    assert proxied.status_code == 200
                    rows_sent += len(rows)
                return rows_sent

            before = send(30, "up")
            assert len(_consume(bootstrap, topic, before)) == before
            _broker("stop", port, data)
            during = send(60, "down")
            # Every row logged while the broker is down is dropped within max-unsent-seconds,
            # and counted; none is lost silently, none fails or waits for the broker.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                metrics = proxy.metrics()
                dropped = metrics['driftline_sidecar_dropped_total{reason="broker_unavailable"}']
                if dropped >= during:
                    break
                time.sleep(0.5)
            assert metrics["driftline_proxy_rows_logged_total"] == before + during
            assert dropped == during
            assert metrics['driftline_sidecar_events_total{kind="prediction",outcome="sent"}'] \
                == before
    finally:
        proxy.stop()
        _broker("stop", port, data)
        shutil.rmtree(data, ignore_errors=True)
