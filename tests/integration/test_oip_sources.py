"""Open Inference Protocol on Kafka into driftline: a real MLServer, JSON and protobuf.

JSON: MLServer 1.7.1 (from PyPI, serving a scikit-learn logistic regression) runs its Kafka
server on the broker; 1,000 requests go to its input topic and it answers each on its output
topic. driftline (`collector.app.Service` with an `mlserver_kafka` source) must store exactly
1,000 predictions whose features are the requests' and whose predictions are MLServer's
answers as read from the output topic; three bad messages go to the dead-letter topic with
their reasons counted.

Protobuf: MLServer's Kafka server reads JSON only (mlserver/kafka/message.py decodes every
value as JSON), so protobuf is shown on Seldon Core v2's topics. Seldon Core v2 itself runs
on Kubernetes and is not started here; tests/integration/seldon_v2_gateway.py does what its
model gateway does (worker.go): it writes 1,000 `ModelInferRequest`s built by MLServer's own
generated protobuf code (half with `raw_input_contents`, half with `contents`) to
`<prefix>.default.model.iris.inputs`, sends each to the same real MLServer over gRPC, and
writes MLServer's serialized `ModelInferResponse` (raw FP64 outputs for raw requests,
`fp64_contents` for the others) to `...outputs` with the input's key and headers. driftline
(a `seldon_v2` source) must store exactly 1,000 predictions matching both.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from sklearn.datasets import load_iris

from collector.app import Service
from collector.config import Settings, parse_settings
from collector.store.queries import count_predictions
from collector.store.window import read_window
from tests.integration.mlserver_oip import (
    ModelServer,
    mlserver_python,
    start_mlserver,
    write_models,
)
from tests.integration.model_servers import FEATURES as _FEATURES
from tests.integration.spine import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_REQUESTS = 1000
FEATURES = list(_FEATURES)
GATEWAY = Path(__file__).with_name("seldon_v2_gateway.py")
LOW, HIGH = np.array([4.3, 2.0, 1.0, 0.1]), np.array([7.9, 4.4, 6.9, 2.5])


@pytest.fixture(scope="module")
def mlserver_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    python = mlserver_python()
    models = tmp_path_factory.mktemp("mlserver-models")
    write_models(python, models)
    return python, models


@pytest.fixture
def driftline_topics(topic_factory: Callable[[str], str]) -> dict[str, str]:
    return {"predictions_topic": topic_factory("oip.predictions"),
            "labels_topic": topic_factory("oip.labels"),
            "deadletter_topic": topic_factory("oip.deadletter")}


def _settings(tmp_path: Path, database_url: str, bootstrap: str, topics: dict[str, str],
              source: dict[str, Any]) -> Settings:
    reference = tmp_path / "iris-reference.csv"
    pd.DataFrame(load_iris().data, columns=FEATURES).to_csv(reference, index=False)
    return parse_settings({
        "database_url": database_url,
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"g-{uuid.uuid4().hex[:8]}",
                  **topics},
        "http": {"host": "127.0.0.1", "port": 0},
        "models": [{"name": "iris", "features": dict.fromkeys(FEATURES, "numeric"),
                    "reference": {"path": str(reference)}}],
        "sources": [source],
    }, environ={})


@pytest.fixture
def running() -> Iterator[list[Any]]:
    """Services and servers to stop at the end, whatever happens."""
    started: list[Any] = []
    yield started
    for thing in reversed(started):
        thing.stop()


def _values(seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [list(row) for row in rng.uniform(LOW, HIGH, size=(N_REQUESTS, 4))]


def _stored(service: Service) -> tuple[list[tuple[Any, ...]], list[str | None]]:
    """(features..., prediction as JSON) of each stored `iris` prediction, sorted; versions."""
    with service.sessions() as session:
        window = read_window(session, "iris", now=datetime.now(UTC) + timedelta(days=1),
                             last_events=10 * N_REQUESTS, expected=FEATURES)
    rows = window.features[FEATURES].to_numpy().tolist()
    stored = sorted((*row, json.dumps(p)) for row, p in zip(rows, window.predictions,
                                                            strict=True))
    return stored, list(window.versions)


def _count(service: Service, model: str = "iris") -> int:
    with service.sessions() as session:
        return count_predictions(session, model)


def _settle(service: Service, expected: int) -> None:
    """Wait for `expected` stored predictions, then make sure no more arrive."""
    wait_for(lambda: _count(service) >= expected, timeout=180,
             message=f"{expected} stored predictions")
    time.sleep(3)
    assert _count(service) == expected


def _deadletters(bootstrap: str, topic: str, n: int) -> list[dict[str, str]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=5000, group_id=None)
    letters: list[dict[str, str]] = []
    deadline = time.monotonic() + 60
    while len(letters) < n and time.monotonic() < deadline:
        for record in consumer:
            letters.append({k: v.decode() for k, v in record.headers})
    consumer.close()
    return letters


def _sample(service: Service, name: str, labels: dict[str, str]) -> float:
    value = service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# -- MLServer's Kafka server, JSON ---------------------------------------------------------------

def _probe_until_answered(bootstrap: str, input_topic: str, output_topic: str) -> None:
    """MLServer's consumer has no group and starts at the latest offset: wait until it reads."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    consumer = KafkaConsumer(output_topic, bootstrap_servers=bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=2000)
    body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                                   "data": [5.1, 3.5, 1.4, 0.2]}]}).encode()
    deadline = time.monotonic() + 90
    attempt = 0
    while time.monotonic() < deadline:
        producer.send(input_topic, key=f"probe-{attempt}".encode(), value=body,
                      headers=[("mlserver-model", b"warmup")])
        producer.flush()
        attempt += 1
        if any(record.key.startswith(b"probe-") for record in consumer):
            break
    else:
        pytest.fail("MLServer's Kafka server answered no probe in 90 s", pytrace=False)
    producer.close()
    consumer.close()


def _responses(bootstrap: str, topic: str, keys: set[str]) -> dict[str, dict[str, Any]]:
    """MLServer's answers on its output topic, by key, as it wrote them."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=2000)
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 180
    while len(found) < len(keys) and time.monotonic() < deadline:
        for record in consumer:
            key = record.key.decode()
            if key in keys:
                found[key] = {"body": json.loads(record.value),
                              "headers": {k: v.decode() for k, v in record.headers}}
    consumer.close()
    return found


def test_mlserver_kafka_json_requests_are_stored_once_each_with_mlservers_answers(
    tmp_path: Path, kafka_bootstrap: str, database_url: str,
    topic_factory: Callable[[str], str], driftline_topics: dict[str, str],
    mlserver_models: tuple[Path, Path], running: list[Any],
) -> None:
    python, models = mlserver_models
    input_topic, output_topic = topic_factory("mlserver-input"), topic_factory("mlserver-output")
    server = start_mlserver(python, models, tmp_path / "mlserver",
                            kafka=(kafka_bootstrap, input_topic, output_topic))
    running.append(server)
    _probe_until_answered(kafka_bootstrap, input_topic, output_topic)
    settings = _settings(tmp_path, database_url, kafka_bootstrap, driftline_topics, {
        "name": "mlserver", "kind": "mlserver_kafka", "input_topic": input_topic,
        "output_topic": output_topic})
    service = Service(settings, roles=frozenset({"ingest", "sources"}),
                      health_interval_seconds=0.5)
    service.start()
    running.append(service)

    values = _values(seed=13)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
    for i, row in enumerate(values):
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": row}]}
        if i % 2:
            body["id"] = f"ignored-{i}"  # MLServer takes the key over the body's id
        producer.send(input_topic, key=f"req-{i}".encode(), value=json.dumps(body).encode(),
                      headers=[("mlserver-model", b"iris"), ("mlserver-version", b"v1")])
        if i == 500:  # bad messages among the good ones
            producer.send(input_topic, key=b"bad-json", value=b"{not json",
                          headers=[("mlserver-model", b"iris")])
            producer.send(input_topic, key=b"bad-array", value=b"[1, 2, 3]",
                          headers=[("mlserver-model", b"iris")])
            producer.send(input_topic, key=b"bad-header", value=json.dumps(body).encode())
    producer.flush()
    producer.close()

    keys = {f"req-{i}" for i in range(N_REQUESTS)}
    answers = _responses(kafka_bootstrap, output_topic, keys)
    assert len(answers) == N_REQUESTS, "MLServer did not answer every request"
    some = answers["req-1"]
    assert some["body"]["id"] == "req-1"
    assert some["headers"]["Ce-Modelid"] == "iris"
    assert "mlserver-model" not in some["headers"]  # the input's headers are not copied

    _settle(service, N_REQUESTS)
    stored, versions = _stored(service)
    expected = sorted(
        (*values[i], json.dumps(answers[f"req-{i}"]["body"]["outputs"][0]["data"][0]))
        for i in range(N_REQUESTS))
    assert stored == expected
    assert set(versions) == {"v1"}
    assert {row[-1] for row in stored} == {"0", "1", "2"}  # every class was predicted

    letters = _deadletters(kafka_bootstrap, driftline_topics["deadletter_topic"], 3)
    reasons = sorted(letter["driftline.error.reason"] for letter in letters)
    assert reasons == ["invalid_json", "missing_field", "not_an_object"]
    assert {letter["driftline.source.topic"] for letter in letters} == {input_topic}
    for reason in reasons:
        assert _sample(service, "driftline_sources_deadletters_total",
                       {"source": "mlserver", "reason": reason}) == 1


# -- Seldon Core v2's topics, protobuf ----------------------------------------------------------

@pytest.fixture
def seldon_topics(kafka_bootstrap: str) -> Iterator[tuple[str, str, str]]:
    prefix = f"seldon-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}.default.model.iris.{side}" for side in ("inputs", "outputs")]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="driftline-tests")
    admin.create_topics([NewTopic(n, num_partitions=3, replication_factor=1) for n in names])
    yield prefix, names[0], names[1]
    admin.delete_topics(names)
    admin.close()


def test_seldon_v2_protobuf_requests_are_stored_once_each_with_mlservers_answers(
    tmp_path: Path, kafka_bootstrap: str, database_url: str,
    driftline_topics: dict[str, str], seldon_topics: tuple[str, str, str],
    mlserver_models: tuple[Path, Path], running: list[Any],
) -> None:
    python, models = mlserver_models
    prefix, inputs, outputs = seldon_topics
    server: ModelServer = start_mlserver(python, models, tmp_path / "mlserver")
    running.append(server)
    settings = _settings(tmp_path, database_url, kafka_bootstrap, driftline_topics, {
        "name": "seldon", "kind": "seldon_v2", "topic_prefix": prefix,
        "namespace": "default", "seldon_models": ["iris"]})
    service = Service(settings, roles=frozenset({"ingest", "sources"}),
                      health_interval_seconds=0.5)
    service.start()
    running.append(service)

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    producer.send(inputs, key=b"0.iris.bad-proto", value=b"\x1a\x05r1")  # truncated
    producer.send(inputs, key=b"0.iris.bad-json", value=b"[1]",
                  headers=[("seldon-infer-type", b"json/inferModelRequest")])
    producer.flush()
    producer.close()

    values = _values(seed=29)
    requests = [{"key": f"{i % 3}.iris.cq-{i}", "request_id": f"cq-{i}", "values": row,
                 "raw": i % 2 == 0} for i, row in enumerate(values)]
    spec = tmp_path / "gateway.json"
    results_path = tmp_path / "gateway-results.json"
    spec.write_text(json.dumps({"bootstrap": kafka_bootstrap, "inputs": inputs,
                                "outputs": outputs, "grpc": server.extra["grpc"],
                                "model": "iris", "requests": requests}))
    done = subprocess.run([str(python), str(GATEWAY), str(spec), str(results_path)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    answers: dict[str, dict[str, Any]] = json.loads(results_path.read_text())
    assert len(answers) == N_REQUESTS
    # MLServer answers raw requests with raw outputs and the others with contents.
    assert all(answers[r["key"]]["raw"] == r["raw"] for r in requests)

    _settle(service, N_REQUESTS)
    stored, versions = _stored(service)
    as_float32 = [[float(np.float32(v)) for v in row] for row in values]
    expected = sorted((*as_float32[i], json.dumps(answers[r["key"]]["proba"]))
                      for i, r in enumerate(requests))
    assert stored == expected
    assert set(versions) == {"v1"}
    assert all(len(json.loads(row[-1])) == 3 for row in stored)

    letters = _deadletters(kafka_bootstrap, driftline_topics["deadletter_topic"], 2)
    assert sorted(letter["driftline.error.reason"] for letter in letters) == [
        "invalid_value", "not_an_object"]
    assert {letter["driftline.source.topic"] for letter in letters} == {inputs}
    for reason in ("invalid_value", "not_an_object"):
        assert _sample(service, "driftline_sources_deadletters_total",
                       {"source": "seldon", "reason": reason}) == 1
