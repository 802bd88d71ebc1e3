"""KServe's and Seldon Core v1's payload loggers into driftline on the real broker (issue 13).

The real service (`collector.app.Service` on SQLite, roles ingest + api + sources) receives
the loggers' traffic as they send it:

- KServe's InferenceService logger: CloudEvents 1.0 in binary mode (pkg/logger/worker.go: one
  `ce-id` for a request and its response, extensions `inferenceservicename`, `namespace`,
  `component`, `endpoint`, `metadata`), bodies of the v1 and v2 protocols, plus an event in
  structured mode;
- Seldon Core v1's SeldonDeployment logger over HTTP (executor/logger/worker.go: a new
  `ce-id` per message, `ce-requestid` the inference's puid, `ce-modelid`, `ce-protocol`), in
  the Seldon and TensorFlow protocols, with feedback carrying a `truth`;
- Seldon Core v1's logger straight to Kafka: the raw payload as the value, no key, the
  headers `type`, `content-type`, `modelid`, `requestid`, `inferenceservicename`,
  `namespace`, `endpoint`, `protocol`, produced here with kafka-python.

in every order: request before response, response before request, duplicated halves, a
response that never comes (counted once the pairing timeout passes, and bounded), feedback
before its prediction; exactly the right predictions and labels are stored, labels joined.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from collector.app import Service
from collector.config import KafkaSettings, Settings, parse_settings
from collector.config_sources import CloudEventsSource, SeldonKafkaLoggerSource
from collector.sources.base import Part
from collector.sources.bridge import Bridge
from collector.sources.cloudevents import RawWriter, cloudevents_router, received_counter
from collector.sources.logger import LoggerDecoder
from collector.sources.metrics import SourceMetrics
from collector.store.queries import count_predictions
from collector.store.window import read_window
from tests.integration.pipeline import count_labels, new_topics
from tests.integration.spine import wait_for

pytestmark = pytest.mark.integration

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
KSERVE_TYPE = "org.kubeflow.serving.inference."
SELDON_TYPE = "io.seldon.serving."


def _settings(tmp_path: Path, bootstrap: str, topics: dict[str, str], raw: str,
              seldon_topic: str, *, timeout: float = 3.0) -> Settings:
    reference = tmp_path / "reference.csv"
    pd.DataFrame({f: [1.0, 2.0, 3.0] for f in FEATURES}).to_csv(reference, index=False)
    model = {"features": dict.fromkeys(FEATURES, "numeric"), "reference": {"path": str(reference)}}
    return parse_settings({
        "database_url": f"sqlite+pysqlite:///{tmp_path / 'driftline.db'}",
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"g-{uuid.uuid4().hex[:8]}",
                  **topics},
        "http": {"host": "127.0.0.1", "port": 0},
        "models": [{"name": name, **model} for name in ("iris", "iris-seldon", "iris-kafka")],
        "sources": [
            {"name": "loggers", "kind": "cloudevents", "topic": raw,
             "models": {"sklearn-iris": "iris", "sklearn": "iris-seldon"},
             "pairing_timeout_seconds": timeout, "max_pending": 1000},
            {"name": "seldon-kafka", "kind": "seldon_kafka_logger", "topics": [seldon_topic],
             "models": {"sklearn": "iris-kafka"}, "pairing_timeout_seconds": timeout},
        ],
    }, environ={})


@pytest.fixture
def service_factory() -> Iterator[Callable[[Settings], Service]]:
    started: list[Service] = []

    def start(settings: Settings) -> Service:
        # Topics created a moment ago may not be in the broker's metadata yet; a group leader
        # that assigns before they are leaves them out until its next refresh (minutes).
        kafka = settings.kafka
        names = [kafka.predictions_topic, kafka.labels_topic, kafka.deadletter_topic]
        names += [t for s in settings.sources for t in s.kafka_topics()]
        probe = KafkaConsumer(bootstrap_servers=kafka.bootstrap_servers)
        try:
            wait_for(lambda: all(probe.partitions_for_topic(t) for t in names), timeout=30,
                     interval=0.2, message=f"metadata of {names}")
        finally:
            probe.close()
        service = Service(settings, roles=frozenset({"ingest", "api", "sources"}),
                          health_interval_seconds=0.5)
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        if not service.stop_event.is_set():
            service.stop()


# -- what the loggers send ---------------------------------------------------------------------
def kserve_headers(kind: str, event_id: str, *, service: str = "sklearn-iris") -> dict[str, str]:
    """The HTTP headers of KServe's logger (binary mode, sdk-go v2)."""
    return {
        "ce-specversion": "1.0", "ce-id": event_id, "ce-type": KSERVE_TYPE + kind,
        "ce-source": "http://localhost:9081/", "ce-time": datetime.now(UTC).isoformat(),
        "ce-inferenceservicename": service, "ce-namespace": "default",
        "ce-component": "predictor", "ce-endpoint": "default", "ce-metadata": "{}",
        "content-type": "application/json",
    }


def seldon_attributes(kind: str, puid: str, protocol: str = "seldon") -> dict[str, str]:
    """The attributes of Seldon Core v1's logger (executor/logger/worker.go)."""
    return {"type": SELDON_TYPE + kind, "content-type": "application/json",
            "modelid": "classifier", "requestid": puid, "inferenceservicename": "sklearn",
            "namespace": "seldon", "endpoint": "default", "protocol": protocol}


def seldon_http_headers(kind: str, puid: str, protocol: str = "seldon") -> dict[str, str]:
    attributes = seldon_attributes(kind, puid, protocol)
    headers = {f"ce-{k}": v for k, v in attributes.items() if k != "content-type"}
    headers.update({"ce-id": str(uuid.uuid4()), "ce-specversion": "1.0",
                    "ce-source": "http://0.0.0.0:8000/", "content-type": "application/json"})
    return headers


def seldon_request(*rows: list[float]) -> dict[str, Any]:
    return {"data": {"names": FEATURES, "ndarray": [list(r) for r in rows]}}


def seldon_response(puid: str, *rows: list[float]) -> dict[str, Any]:
    return {"data": {"names": ["t:0", "t:1", "t:2"], "ndarray": [list(r) for r in rows]},
            "meta": {"puid": puid, "requestPath": {"classifier": "seldonio/sklearnserver:1.18"}}}


def feedback(*truth_rows: Any) -> dict[str, Any]:
    return {"reward": 1, "truth": {"data": {"names": ["t:0", "t:1", "t:2"],
                                            "ndarray": list(truth_rows)}}}


def post(service: Service, headers: dict[str, str], body: Any) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(f"http://127.0.0.1:{service.http_port}/v1/ingest/cloudevents",
                          headers=headers, content=content, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 1}


# -- what driftline stores ---------------------------------------------------------------------
def stored(service: Service, model: str) -> Counter[tuple[Any, ...]]:
    """(features, prediction, label) of every stored prediction of `model`."""
    with service.sessions() as session:
        window = read_window(session, model, now=datetime.now(UTC), last_events=10_000)
    rows = window.features.reindex(columns=FEATURES).itertuples(index=False, name=None)
    return Counter((tuple(row), json.dumps(prediction), label)
                   for row, prediction, label in zip(rows, window.predictions, window.labels,
                                                     strict=True))


def expect(*rows: tuple[list[float], Any, Any]) -> Counter[tuple[Any, ...]]:
    return Counter((tuple(features), json.dumps(prediction), label)
                   for features, prediction, label in rows)


def wait_counts(service: Service, model: str, predictions: int, labels: int) -> None:
    def done() -> bool:
        with service.sessions() as session:
            n = count_predictions(session, model)
        return n == predictions and count_labels(service, model) == labels

    wait_for(done, timeout=90, interval=0.2,
             message=f"{predictions} predictions and {labels} labels of {model}")


def sample(service: Service, name: str, **labels: str) -> float:
    value = service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_kserve_and_seldon_loggers_over_http_and_kafka(
        tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[[str], str],
        service_factory: Callable[[Settings], Service]) -> None:
    topics = new_topics(topic_factory)
    raw, seldon_topic = topic_factory("cloudevents"), topic_factory("seldon-logs")
    service = service_factory(_settings(tmp_path, kafka_bootstrap, topics, raw, seldon_topic))

    # KServe, v1 protocol: a batch of two, request before response.
    a = str(uuid.uuid4())
    post(service, kserve_headers("request", a),
         {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]})
    post(service, kserve_headers("response", a), {"predictions": [1, 1]})
    # Response before request.
    b = str(uuid.uuid4())
    post(service, kserve_headers("response", b), {"predictions": [0]})
    post(service, kserve_headers("request", b), {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    # Both halves sent twice.
    c = str(uuid.uuid4())
    for kind, body in (("request", {"instances": [[7.7, 3.0, 6.1, 2.3]]}),
                       ("request", {"instances": [[7.7, 3.0, 6.1, 2.3]]}),
                       ("response", {"predictions": [2]}), ("response", {"predictions": [2]})):
        post(service, kserve_headers(kind, c), body)
    # A response that never comes.
    post(service, kserve_headers("request", str(uuid.uuid4())),
         {"instances": [[5.0, 3.6, 1.4, 0.2]]})
    # The v2 protocol (KServe's sklearnserver with protocolVersion v2).
    f = str(uuid.uuid4())
    post(service, kserve_headers("request", f), {"inputs": [
        {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [[6.1, 2.8, 4.7, 1.2]]}]})
    post(service, kserve_headers("response", f), {
        "model_name": "sklearn-iris", "model_version": "v3", "id": f, "parameters": {},
        "outputs": [{"name": "output-0", "shape": [1], "datatype": "INT64", "data": [1]}]})
    # Structured mode.
    e = str(uuid.uuid4())
    for kind, data in (("request", {"instances": [[6.3, 2.5, 5.0, 1.9]]}),
                       ("response", {"predictions": [2]})):
        structured = {"specversion": "1.0", "id": e, "type": KSERVE_TYPE + kind,
                      "source": "http://localhost:9081/", "inferenceservicename": "sklearn-iris",
                      "datacontenttype": "application/json", "data": data}
        post(service, {"content-type": "application/cloudevents+json"}, structured)

    # Seldon Core v1 over HTTP, Seldon protocol, feedback after the prediction.
    s1 = str(uuid.uuid4())
    post(service, seldon_http_headers("inference.request", s1),
         seldon_request([5.1, 3.5, 1.4, 0.2]))
    post(service, seldon_http_headers("inference.response", s1),
         seldon_response(s1, [0.97, 0.02, 0.01]))
    post(service, seldon_http_headers("feedback", s1), feedback([1, 0, 0]))
    # Feedback first, then the response, then the request.
    s2 = str(uuid.uuid4())
    post(service, seldon_http_headers("feedback", s2), feedback([0, 1, 0]))
    post(service, seldon_http_headers("inference.response", s2),
         seldon_response(s2, [0.01, 0.9, 0.09]))
    post(service, seldon_http_headers("inference.request", s2),
         seldon_request([6.4, 3.2, 4.5, 1.5]))
    # The TensorFlow protocol, and feedback with a reward but no truth.
    s3 = str(uuid.uuid4())
    post(service, seldon_http_headers("inference.request", s3, "tensorflow"),
         {"instances": [[6.9, 3.1, 5.4, 2.1]]})
    post(service, seldon_http_headers("inference.response", s3, "tensorflow"),
         {"predictions": [[0.0, 0.1, 0.9]]})
    post(service, seldon_http_headers("feedback", s3), {"reward": 1})

    # Seldon Core v1 straight to Kafka: no key, attributes as headers.
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")

    def log(kind: str, puid: str, body: Any) -> None:
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = [(k, v.encode()) for k, v in seldon_attributes(kind, puid).items()]
        producer.send(seldon_topic, value=value, headers=headers).get(timeout=30)

    k1, k2, k3, k4, k7 = (str(uuid.uuid4()) for _ in range(5))
    log("inference.request", k1, seldon_request([4.9, 3.0, 1.4, 0.2]))
    log("inference.response", k1, seldon_response(k1, [0.9, 0.05, 0.05]))
    log("feedback", k1, {"truth": {"data": {"ndarray": [0]}}})
    log("inference.response", k2, seldon_response(k2, [0.1, 0.8, 0.1]))
    log("inference.request", k2, seldon_request([5.9, 3.0, 4.2, 1.5]))
    for kind, body in (("inference.request", seldon_request([6.5, 3.0, 5.8, 2.2])),
                       ("inference.response", seldon_response(k3, [0.0, 0.2, 0.8]))) * 2:
        log(kind, k3, body)
    log("inference.request", k4, seldon_request([5.4, 3.9, 1.7, 0.4]))  # never answered
    log("inference.request", k7, seldon_request([5.0, 2.0, 3.5, 1.0], [6.0, 2.2, 5.0, 1.5]))
    log("inference.response", k7, seldon_response(k7, [0.1, 0.7, 0.2], [0.0, 0.3, 0.7]))
    log("feedback", k7, feedback([0, 1, 0], [0, 0, 1]))
    log("inference.request", str(uuid.uuid4()), b"{not json")  # dead-lettered
    producer.close()

    wait_counts(service, "iris", 6, 0)
    wait_counts(service, "iris-seldon", 3, 2)
    wait_counts(service, "iris-kafka", 5, 3)
    assert stored(service, "iris") == expect(
        ([6.8, 2.8, 4.8, 1.4], 1, None), ([6.0, 3.4, 4.5, 1.6], 1, None),
        ([5.1, 3.5, 1.4, 0.2], 0, None), ([7.7, 3.0, 6.1, 2.3], 2, None),
        ([6.1, 2.8, 4.7, 1.2], 1, None), ([6.3, 2.5, 5.0, 1.9], 2, None))
    assert stored(service, "iris-seldon") == expect(
        ([5.1, 3.5, 1.4, 0.2], [0.97, 0.02, 0.01], 0),
        ([6.4, 3.2, 4.5, 1.5], [0.01, 0.9, 0.09], 1),
        ([6.9, 3.1, 5.4, 2.1], [0.0, 0.1, 0.9], None))
    assert stored(service, "iris-kafka") == expect(
        ([4.9, 3.0, 1.4, 0.2], [0.9, 0.05, 0.05], 0), ([5.9, 3.0, 4.2, 1.5], [0.1, 0.8, 0.1], None),
        ([6.5, 3.0, 5.8, 2.2], [0.0, 0.2, 0.8], None),
        ([5.0, 2.0, 3.5, 1.0], [0.1, 0.7, 0.2], 1), ([6.0, 2.2, 5.0, 1.5], [0.0, 0.3, 0.7], 2))
    with service.sessions() as session:
        versions = read_window(session, "iris", now=datetime.now(UTC), last_events=100).versions
        tags = read_window(session, "iris-kafka", now=datetime.now(UTC), last_events=100).tags
    assert sorted(v for v in versions if v is not None) == ["v3"]
    assert [dict(t) for t in tags] == [{"endpoint": "default"}] * 5  # the Seldon predictor

    # The responses that never came are counted once the pairing timeout passed, and no
    # half waits any longer (the wait is bounded).
    def unpaired() -> bool:
        return (sample(service, "driftline_sources_pairs_total", source="loggers",
                       outcome="unpaired_request") == 1
                and sample(service, "driftline_sources_pairs_total", source="seldon-kafka",
                           outcome="unpaired_request") == 1)

    wait_for(unpaired, timeout=30, message="the two unanswered requests counted")
    for source in ("loggers", "seldon-kafka"):
        assert sample(service, "driftline_sources_pending_halves", source=source) == 0
        assert sample(service, "driftline_sources_pairs_total", source=source,
                      outcome="duplicate") == 2
    assert sample(service, "driftline_sources_pairs_total", source="loggers",
                  outcome="paired") == 8
    assert sample(service, "driftline_sources_feedback_total", source="loggers",
                  outcome="no_truth") == 1
    assert sample(service, "driftline_sources_cloudevents_received_total", source="loggers",
                  outcome="accepted") == 22
    assert sample(service, "driftline_sources_deadletters_total", source="seldon-kafka",
                  reason="invalid_json") == 1

    # The bad message is in the dead-letter topic with its bytes and its headers.
    consumer = KafkaConsumer(topics["deadletter_topic"], bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    dead = [m for m in consumer]
    consumer.close()
    assert [m.value for m in dead] == [b"{not json"]
    headers = dict(dead[0].headers)
    assert headers["driftline.error.reason"] == b"invalid_json"
    assert headers["driftline.source.topic"] == seldon_topic.encode()
    assert headers["driftline.source.name"] == b"seldon-kafka"
    assert headers["type"] == b"io.seldon.serving.inference.request"
    # Nothing else is pending or uncounted: every prediction came once.
    with service.sessions() as session:
        assert count_predictions(session) == 14


def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def _position_of(bootstrap: str, topic: str, key: bytes) -> tuple[int, int]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    try:
        return next((m.partition, m.offset) for m in consumer if m.key == key)
    finally:
        consumer.close()


def test_a_waiting_half_survives_a_restart(
        tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[[str], str],
        service_factory: Callable[[Settings], Service]) -> None:
    topics = new_topics(topic_factory)
    raw, seldon_topic = topic_factory("cloudevents"), topic_factory("seldon-logs")
    settings = _settings(tmp_path, kafka_bootstrap, topics, raw, seldon_topic, timeout=600)
    first = service_factory(settings)
    done, waiting = str(uuid.uuid4()), str(uuid.uuid4())
    post(first, kserve_headers("request", done), {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    post(first, kserve_headers("response", done), {"predictions": [0]})
    post(first, kserve_headers("request", waiting), {"instances": [[6.7, 3.1, 4.4, 1.4]]})
    wait_counts(first, "iris", 1, 0)
    partition, offset = _position_of(kafka_bootstrap, raw, waiting.encode())
    group = first.bridge.group_id if first.bridge else ""
    # The commit stops at the waiting request: a crash now would read it again.
    wait_for(lambda: _committed(kafka_bootstrap, group, raw).get(partition) == offset,
             timeout=30, message="the commit held below the waiting request")
    first.stop()

    second = service_factory(settings)
    post(second, kserve_headers("response", waiting), {"predictions": [1]})
    wait_counts(second, "iris", 2, 0)
    assert stored(second, "iris") == expect(([5.1, 3.5, 1.4, 0.2], 0, None),
                                            ([6.7, 3.1, 4.4, 1.4], 1, None))
    wait_for(lambda: _committed(kafka_bootstrap, group, raw).get(partition, -1) > offset,
             timeout=30, message="the commit moved past the pair")


def test_the_endpoint_answers_503_when_kafka_is_down() -> None:
    """Nothing listens on the bootstrap port: nothing is acknowledged, and the answer is fast."""
    source = CloudEventsSource(name="kserve", kind="cloudevents", write_timeout_seconds=2)
    writer = RawWriter("127.0.0.1:9", max_event_bytes=1000, timeout_seconds=2)
    registry = CollectorRegistry()
    received = received_counter(registry)
    app = FastAPI()
    app.include_router(cloudevents_router([source], {"kserve": writer}, received))
    headers = kserve_headers("request", "r1")
    bad = {**headers, "ce-type": "io.seldon.serving.inference.outlier"}

    async def calls() -> list[tuple[int, float]]:
        transport = httpx.ASGITransport(app=app)
        answers = []
        async with httpx.AsyncClient(transport=transport, base_url="http://driftline") as client:
            for path, h, body in (
                    ("/v1/ingest/cloudevents", headers, b'{"instances": []}'),
                    ("/v1/ingest/cloudevents", headers, b'{"instances": []}'),
                    ("/v1/ingest/cloudevents/kserve", headers, b"x" * 1001),
                    ("/v1/ingest/cloudevents/nope", headers, b"{}"),
                    ("/v1/ingest/cloudevents", bad, b"{}")):
                started = time.monotonic()
                status = (await client.post(path, headers=h, content=body)).status_code
                answers.append((status, time.monotonic() - started))
        return answers

    answers = asyncio.run(calls())
    assert [status for status, _ in answers] == [503, 503, 413, 404, 400]
    assert answers[0][1] < 10  # bounded by write_timeout_seconds (2 s here) and the close
    # Right after a failure: refused at once, not after waiting out the 2 s write timeout.
    assert answers[1][1] < 1.9
    assert registry.get_sample_value("driftline_sources_cloudevents_received_total",
                                     {"source": "kserve", "outcome": "unavailable"}) == 2
    assert registry.get_sample_value("driftline_sources_cloudevents_received_total",
                                     {"source": "kserve", "outcome": "accepted"}) == 0
    writer.close()


def test_unpaired_requests_can_be_stored_without_a_prediction(
        tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[[str], str],
        service_factory: Callable[[Settings], Service]) -> None:
    """A logger in `request` mode sends no responses: `unpaired_requests: store` keeps them."""
    topics = new_topics(topic_factory)
    raw, seldon_topic = topic_factory("cloudevents"), topic_factory("seldon-logs")
    settings = _settings(tmp_path, kafka_bootstrap, topics, raw, seldon_topic, timeout=1)
    sources = [s.model_copy(update={"unpaired_requests": "store"}) for s in settings.sources]
    service = service_factory(settings.model_copy(update={"sources": sources}))
    post(service, kserve_headers("request", str(uuid.uuid4())),
         {"instances": [[5.0, 3.6, 1.4, 0.2], [4.6, 3.4, 1.4, 0.3]]})
    wait_counts(service, "iris", 2, 0)
    assert stored(service, "iris") == expect(([5.0, 3.6, 1.4, 0.2], None, None),
                                             ([4.6, 3.4, 1.4, 0.3], None, None))
    assert sample(service, "driftline_sources_pairs_total", source="loggers",
                  outcome="unpaired_request") == 1



def test_two_bridges_pair_an_unkeyed_logger_topic_through_its_pairing_topic(
        kafka_bootstrap: str, topic_factory: Callable[[str], str]) -> None:
    """Seldon's Kafka logger writes without a key: halves land on any partition, and the
    partitions are shared by two bridge processes; the pairing topic brings them together."""
    topics = new_topics(topic_factory)
    logs, pairing = topic_factory("seldon-logs"), topic_factory("seldon-pairing")
    kafka = KafkaSettings.model_validate({
        "bootstrap_servers": kafka_bootstrap, "group_id": f"g-{uuid.uuid4().hex[:8]}", **topics})
    source = SeldonKafkaLoggerSource(name="seldon-kafka", kind="seldon_kafka_logger",
                                     topics=[logs], pairing_topic=pairing,
                                     models={"sklearn": "iris"}, pairing_timeout_seconds=600)
    bridges = [Bridge(kafka, [source], SourceMetrics.create(CollectorRegistry()),
                      poll_timeout_ms=100) for _ in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=b.run, args=(stop,)) for b in bridges]
    for thread in threads:
        thread.start()
    try:
        def assigned() -> bool:
            owned = [b._consumer.assignment() if b._consumer else set() for b in bridges]
            return all(owned) and len(owned[0] | owned[1]) == 6

        wait_for(assigned, timeout=60, message="both bridges own partitions")
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        puids = [str(uuid.uuid4()) for _ in range(40)]
        for i, puid in enumerate(puids):
            for kind, body, partition in (
                    ("inference.request", seldon_request([5.0 + i / 10, 3.0, 1.4, 0.2]), i % 3),
                    ("inference.response", seldon_response(puid, [0.8, 0.1, 0.1]), (i + 1) % 3)):
                headers = [(k, v.encode()) for k, v in seldon_attributes(kind, puid).items()]
                producer.send(logs, value=json.dumps(body).encode(), headers=headers,
                              partition=partition)
        producer.flush()
        producer.close()
        consumer = KafkaConsumer(topics["predictions_topic"], bootstrap_servers=kafka_bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=1000)
        seen: list[Any] = []

        def all_paired() -> bool:
            seen.extend(json.loads(m.value) for m in consumer)
            return len(seen) >= 40

        wait_for(all_paired, timeout=90, message="40 predictions")
        consumer.close()
        assert sorted(e["request_id"] for e in seen) == sorted(puids)
        assert {e["model"] for e in seen} == {"iris"}
        registries = [b._metrics for b in bridges]
        assert sum(m.messages.labels("seldon-kafka", "forwarded")._value.get()
                   for m in registries) == 80
        assert sum(m.pairs.labels("seldon-kafka", "paired")._value.get() for m in registries) == 40
        assert all(b.batches > 0 for b in bridges)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


class _FailingOnBoom:
    """The Seldon logger's decoder, failing unexpectedly (as a bug would) on the value b"boom"."""

    def __init__(self, topic: str) -> None:
        self.name = "seldon-kafka"
        self._inner = LoggerDecoder(self.name, [topic])

    def topics(self) -> list[str]:
        return self._inner.topics()

    def decode(self, record: Any) -> list[Part]:
        if record.value == b"boom":
            raise RuntimeError("a decoder bug")
        return self._inner.decode(record)


def test_a_decoder_bug_is_a_dead_letter_and_the_bridge_goes_on(
        kafka_bootstrap: str, topic_factory: Callable[[str], str]) -> None:
    topics = new_topics(topic_factory)
    logs = topic_factory("seldon-logs")
    kafka = KafkaSettings.model_validate({
        "bootstrap_servers": kafka_bootstrap, "group_id": f"g-{uuid.uuid4().hex[:8]}", **topics})
    source = SeldonKafkaLoggerSource(name="seldon-kafka", kind="seldon_kafka_logger",
                                     topics=[logs], model="iris")
    bridge = Bridge(kafka, [source], SourceMetrics.create(CollectorRegistry()),
                    decoders=[_FailingOnBoom(logs)], poll_timeout_ms=100)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    puid = str(uuid.uuid4())
    for kind, value in (("inference.request", b"boom"),
                        ("inference.request", json.dumps(seldon_request([5.0, 3.0, 1.6, 0.2]))),
                        ("inference.response", json.dumps(seldon_response(puid, [0.7, 0.2, 0.1])))):
        headers = [(k, v.encode()) for k, v in seldon_attributes(kind, puid).items()]
        producer.send(logs, value=value if isinstance(value, bytes) else value.encode(),
                      headers=headers, partition=0)
    producer.flush()
    producer.close()
    stop = threading.Event()
    thread = threading.Thread(target=bridge.run, args=(stop,))
    thread.start()
    try:
        def read(topic: str) -> list[Any]:
            consumer = KafkaConsumer(topic, bootstrap_servers=kafka_bootstrap,
                                     auto_offset_reset="earliest", consumer_timeout_ms=1000)
            try:
                return list(consumer)
            finally:
                consumer.close()

        dead = wait_for(lambda: read(topics["deadletter_topic"]), timeout=60,
                        message="the dead letter")
        assert [dict(m.headers)["driftline.error.reason"] for m in dead] == [b"decoder_error"]
        assert dead[0].value == b"boom"
        predictions = wait_for(lambda: read(topics["predictions_topic"]), timeout=60,
                               message="the prediction after the bug")
        assert [json.loads(m.value)["request_id"] for m in predictions] == [puid]
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.mark.slow
def test_a_broker_outage_loses_no_accepted_event(tmp_path: Path) -> None:
    """The broker stops with a request waiting for its response: the endpoint answers 503
    (nothing accepted) until it is back; the bridge reconnects, reads the waiting request again
    from the committed offset and pairs it with the response accepted after the outage."""
    from tests.integration.test_broker_outage import _broker, _free_port

    port = _free_port()
    bootstrap = f"127.0.0.1:{port}"
    data = tmp_path / "kafka"
    topics = {"predictions_topic": "o.predictions", "labels_topic": "o.labels",
              "deadletter_topic": "o.deadletter"}
    _broker("start", port, data)
    service: Service | None = None
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(t, num_partitions=1, replication_factor=1)
                             for t in [*topics.values(), "o.raw", "o.seldon"]])
        admin.close()
        settings = _settings(tmp_path, bootstrap, topics, "o.raw", "o.seldon", timeout=600)
        service = Service(settings, roles=frozenset({"ingest", "api", "sources"}),
                          health_interval_seconds=0.3)
        service.start()
        before, waiting = str(uuid.uuid4()), str(uuid.uuid4())
        wait_for(lambda: httpx.post(
            f"http://127.0.0.1:{service.http_port}/v1/ingest/cloudevents",
            headers=kserve_headers("request", before), timeout=30,
            content=b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}').status_code == 200, timeout=60,
            message="the endpoint accepting once the bridge is up")
        post(service, kserve_headers("response", before), {"predictions": [0]})
        post(service, kserve_headers("request", waiting), {"instances": [[6.2, 2.9, 4.3, 1.3]]})
        wait_counts(service, "iris", 1, 0)

        _broker("stop", port, data)
        refused = httpx.post(f"http://127.0.0.1:{service.http_port}/v1/ingest/cloudevents",
                             headers=kserve_headers("response", waiting), timeout=30,
                             content=b'{"predictions": [1]}')
        assert refused.status_code == 503
        assert any(t.name == "driftline-sources" and t.is_alive() for t in service._threads)

        _broker("start", port, data)
        wait_for(lambda: httpx.post(
            f"http://127.0.0.1:{service.http_port}/v1/ingest/cloudevents",
            headers=kserve_headers("response", waiting), timeout=30,
            content=b'{"predictions": [1]}').status_code == 200, timeout=90,
            message="the response accepted once the broker is back")
        wait_counts(service, "iris", 2, 0)
        assert stored(service, "iris") == expect(([5.1, 3.5, 1.4, 0.2], 0, None),
                                                 ([6.2, 2.9, 4.3, 1.3], 1, None))
    finally:
        if service is not None:
            service.stop()
        _broker("stop", port, data)
