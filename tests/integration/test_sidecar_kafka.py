"""The sidecar against the real broker: every logged event arrives once, decodes, keyed by model."""

from __future__ import annotations

import socket
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from prometheus_client import CollectorRegistry

from collector.events import LabelEvent, PredictionEvent, decode_event
from collector.sidecar import PredictionLogger
from tests import services

pytestmark = pytest.mark.integration


def _consume(bootstrap: str, topics: list[str], expected: int) -> list[Any]:
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, enable_auto_commit=False, consumer_timeout_ms=1000)
    records: list[Any] = []
    try:
        for _ in range(60):  # up to about a minute; stops as soon as everything is in
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
            if len(records) >= expected:
                # one more poll shows that nothing beyond the expected events was written
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
                break
    finally:
        consumer.close()
    return records


def test_logged_events_arrive_once_decode_and_are_keyed_by_model(
        kafka_bootstrap: str, topic_factory: Callable[[str], str]) -> None:
    predictions, labels = topic_factory("sidecar.predictions"), topic_factory("sidecar.labels")
    registry = CollectorRegistry()
    logged: list[tuple[str | None, str]] = []
    with PredictionLogger(kafka_bootstrap, model="fraud", model_version="3",
                          predictions_topic=predictions, labels_topic=labels,
                          registry=registry) as logger:
        for i in range(1000):
            model = "fraud" if i % 4 else "churn"
            event_id = logger.log(features={"amount": float(i), "country": "DE"},
                                  prediction=i % 2, request_id=f"r{i}", latency_ms=1.5,
                                  tags={"shard": str(i % 3)}, model=model)
            logged.append((event_id, model))
        for i in range(100):
            logged.append((logger.log_label(request_id=f"r{i}", label=i % 2), "fraud"))
        assert logger.flush(timeout_seconds=60)
    stats = logger.stats
    assert None not in {event_id for event_id, _model in logged}
    assert (stats.enqueued, stats.sent, stats.dropped_total, stats.pending) == (1100, 1100, 0, 0)
    assert registry.get_sample_value("driftline_sidecar_events_total",
                                     {"kind": "prediction", "outcome": "sent"}) == 1000
    assert registry.get_sample_value("driftline_sidecar_events_total",
                                     {"kind": "label", "outcome": "sent"}) == 100

    records = _consume(kafka_bootstrap, [predictions, labels], 1100)
    assert len(records) == 1100
    events = [decode_event(record.value) for record in records]  # every one decodes
    assert sorted(e.event_id for e in events) == sorted(str(i) for i, _m in logged)
    for record, event in zip(records, events, strict=True):
        assert record.key == event.model.encode()
        assert record.topic == (predictions if isinstance(event, PredictionEvent) else labels)
    # Keyed by model: each model's predictions sit in one partition, in the order logged.
    partitions: dict[str, set[int]] = defaultdict(set)
    order: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for record, event in zip(records, events, strict=True):
        if isinstance(event, PredictionEvent):
            partitions[event.model].add(record.partition)
            order[event.model].append((record.offset, event.event_id))
    assert {model: len(p) for model, p in partitions.items()} == {"fraud": 1, "churn": 1}
    for model, offsets in order.items():
        assert [event_id for _o, event_id in sorted(offsets)] == \
            [event_id for event_id, m in logged[:1000] if m == model]
    predictions_by_request = {e.request_id: e for e in events if isinstance(e, PredictionEvent)}
    first = predictions_by_request["r1"]
    assert (first.model, first.model_version, first.latency_ms, first.features["amount"],
            dict(first.tags)) == ("fraud", "3", 1.5, 1.0, {"shard": "1"})
    assert {e.request_id for e in events if isinstance(e, LabelEvent)} == \
        {f"r{i}" for i in range(100)}


def test_bad_events_are_counted_and_do_not_stop_the_good_ones(
        kafka_bootstrap: str, topic_factory: Callable[[str], str]) -> None:
    predictions = topic_factory("sidecar.bad")
    with PredictionLogger(kafka_bootstrap, model="m", predictions_topic=predictions) as logger:
        for i in range(20):
            logger.log(features={"x": float("nan") if i % 2 else float(i)}, prediction=1)
        assert logger.flush(timeout_seconds=60)
    assert logger.stats.sent == 10
    assert logger.stats.dropped["encode_error"] == 10
    records = _consume(kafka_bootstrap, [predictions], 10)
    events = [decode_event(r.value) for r in records]
    values = [e.features["x"] for e in events if isinstance(e, PredictionEvent)]
    assert sorted(v for v in values if isinstance(v, float)) == [float(i) for i in range(0, 20, 2)]



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker(action: str, port: int, controller_port: int, data: Path) -> None:
    services._run(["bash", str(services.ROOT / "scripts" / "kafka-local"), action],
                  env={"KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(controller_port),
                       "KAFKA_DATA_DIR": str(data)})


@pytest.mark.slow
def test_broker_missing_then_up_then_gone(tmp_path: Path) -> None:
    port, controller_port = _free_port(), _free_port()
    bootstrap, data = f"127.0.0.1:{port}", tmp_path / "kafka"
    topic = "sidecar.outage"
    # 1. No broker yet: log() still returns ids at once and the events wait in the buffer.
    waiting = PredictionLogger(bootstrap, model="m", predictions_topic=topic,
                               max_unsent_seconds=240)
    ids = [waiting.log(features={"x": float(i)}, prediction=1) for i in range(100)]
    assert None not in ids
    assert (waiting.stats.sent, waiting.stats.pending) == (0, 100)
    try:
        # 2. The broker comes up: the buffered events go out, without any call from the server.
        _broker("start", port, controller_port, data)
        assert waiting.flush(timeout_seconds=120)
        waiting.close(timeout_seconds=10)
        assert (waiting.stats.sent, waiting.stats.dropped_total) == (100, 0)
        records = _consume(bootstrap, [topic], 100)
        assert sorted(decode_event(r.value).event_id for r in records) == sorted(map(str, ids))
        # 3. The broker goes away under a connected logger: drops are counted, close() is bounded.
        with PredictionLogger(bootstrap, model="m", predictions_topic=topic,
                              max_unsent_seconds=3) as connected:
            connected.log(features={"x": 0.0}, prediction=1)
            assert connected.flush(timeout_seconds=30)
            _broker("stop", port, controller_port, data)
            later = [connected.log(features={"x": float(i)}, prediction=1) for i in range(50)]
            assert None not in later
            assert connected.flush(timeout_seconds=60)  # ends when the 50 are dropped
        assert connected.stats.sent == 1
        assert connected.stats.dropped["broker_unavailable"] == 50
    finally:
        waiting.close(timeout_seconds=1)
        _broker("stop", port, controller_port, data)
