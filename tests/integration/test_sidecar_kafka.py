"""The sidecar against the real broker: every logged event arrives, decodes, keyed by model."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kafka import KafkaConsumer

from collector.events import LabelEvent, PredictionEvent, decode_event
from collector.sidecar import PredictionLogger

pytestmark = pytest.mark.integration


def test_logged_events_arrive_and_decode(kafka_bootstrap: str, topic_factory: Any) -> None:
    predictions, labels = topic_factory("predictions"), topic_factory("labels")
    with PredictionLogger(kafka_bootstrap, model="fraud", model_version="3",
                          predictions_topic=predictions, labels_topic=labels) as logger:
        ids = {logger.log(features={"amount": float(i), "country": "DE"}, prediction=i % 2,
                          request_id=f"r{i}", latency_ms=1.5) for i in range(1000)}
        ids |= {logger.log_label(request_id=f"r{i}", label=1) for i in range(100)}
    assert None not in ids
    assert logger.stats.sent == 1100
    assert logger.stats.dropped_total == 0
    consumer = KafkaConsumer(predictions, labels, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", group_id=None,
                             enable_auto_commit=False)
    records = []
    deadline = time.monotonic() + 60
    while len(records) < 1100 and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
    consumer.close()
    assert len(records) == 1100
    events = [decode_event(r.value) for r in records]
    assert {r.key for r in records} == {b"fraud"}
    assert {e.event_id for e in events} == ids
    assert sum(isinstance(e, PredictionEvent) for e in events) == 1000
    assert sum(isinstance(e, LabelEvent) for e in events) == 100
    first = next(e for e in events if isinstance(e, PredictionEvent))
    assert first.model_version == "3"
    assert first.latency_ms == 1.5


def test_broker_down_then_up_is_not_an_error(topic_factory: Any, kafka_bootstrap: str) -> None:
    # With the broker address wrong, events are dropped after max_unsent_seconds and counted.
    with PredictionLogger("127.0.0.1:1", model="m", max_unsent_seconds=0.3) as logger:
        for i in range(50):
            assert logger.log(features={"x": float(i)}, prediction=1) is not None
        time.sleep(1.0)
    assert logger.stats.sent == 0
    assert logger.stats.dropped.get("broker_unavailable", 0) + \
        logger.stats.dropped.get("closed", 0) == 50
