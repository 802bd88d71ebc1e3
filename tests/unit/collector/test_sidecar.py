"""The sidecar logger without a broker: log() never raises or waits, every event is accounted for.

Must-show 6. Timing is measured by bench/sidecar.py, never asserted here: "never blocks" is
shown structurally (log() returns while the background thread is stuck inside the producer).
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
import pytest
from kafka.errors import (
    IllegalStateError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NotLeaderForPartitionError,
)
from kafka.future import Future
from prometheus_client import CollectorRegistry

import driftline_sidecar.logger as sidecar_module
from driftline_sidecar import (
    DROP_REASONS,
    LabelEvent,
    PredictionEvent,
    PredictionLogger,
    decode_event,
    new_event_id,
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def nowhere() -> str:
    """A bootstrap address where nothing listens."""
    return f"127.0.0.1:{_closed_port()}"


class FakeProducer:
    """Stands in for KafkaProducer: records what is sent and settles each future at once."""

    instances: ClassVar[list[FakeProducer]] = []
    fail_with: ClassVar[Exception | None] = None
    send_raises: ClassVar[Exception | None] = None
    send_raises_once: ClassVar[Exception | None] = None
    gate: ClassVar[threading.Event | None] = None

    def __init__(self, **config: Any) -> None:
        if FakeProducer.gate is not None:
            FakeProducer.gate.wait()
        self.config = config
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.closed = False
        FakeProducer.instances.append(self)

    def send(self, topic: str, *, key: bytes, value: bytes) -> Future:
        if FakeProducer.send_raises is not None:
            raise FakeProducer.send_raises
        if FakeProducer.send_raises_once is not None:
            error, FakeProducer.send_raises_once = FakeProducer.send_raises_once, None
            raise error
        future = Future()
        if FakeProducer.fail_with is not None:
            return future.failure(FakeProducer.fail_with)
        self.sent.append((topic, key, value))
        return future.success(None)

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def fake_kafka(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeProducer]]:
    """A reachable 'broker' served by FakeProducer."""
    FakeProducer.instances = []
    FakeProducer.fail_with = None
    FakeProducer.send_raises = None
    FakeProducer.send_raises_once = None
    FakeProducer.gate = None
    monkeypatch.setattr(sidecar_module, "KafkaProducer", FakeProducer)
    monkeypatch.setattr(sidecar_module, "kafka_reachable", lambda *_a, **_k: True)
    yield FakeProducer
    if FakeProducer.gate is not None:
        FakeProducer.gate.set()


def _sent(fake: type[FakeProducer]) -> list[tuple[str, bytes, bytes]]:
    return [item for producer in fake.instances for item in producer.sent]


def test_constructor_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="buffer_size must be at least 1, got 0"):
        PredictionLogger("127.0.0.1:1", model="m", buffer_size=0)
    with pytest.raises(ValueError, match="max_unsent_seconds must be positive"):
        PredictionLogger("127.0.0.1:1", model="m", max_unsent_seconds=0)


def test_no_broker_log_never_raises_and_every_event_is_counted(nowhere: str) -> None:
    registry = CollectorRegistry()
    logger = PredictionLogger(nowhere, model="m", buffer_size=100, max_unsent_seconds=60,
                              registry=registry)
    ids = [logger.log(features={"x": float(i), "c": "a"}, prediction=0.5, request_id=str(i))
           for i in range(1000)]
    label_id = logger.log_label(request_id="1", label=1)
    accepted = [i for i in ids if i is not None]
    assert len(accepted) == 100  # the first 100 fill the buffer; nothing can leave it
    assert label_id is None
    stats = logger.stats
    assert (stats.enqueued, stats.sent, stats.pending) == (100, 0, 100)
    assert stats.dropped["buffer_full"] == 901
    logger.close(timeout_seconds=0.2)
    stats = logger.stats
    assert stats.dropped == {"buffer_full": 901, "broker_unavailable": 0, "encode_error": 0,
                             "closed": 100}
    assert stats.sent + stats.dropped_total == 1001
    assert stats.pending == 0

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("driftline_sidecar_dropped_total", reason="buffer_full") == 901
    assert sample("driftline_sidecar_dropped_total", reason="closed") == 100
    assert sample("driftline_sidecar_events_total", kind="prediction", outcome="dropped") == 1000
    assert sample("driftline_sidecar_events_total", kind="label", outcome="dropped") == 1
    assert sample("driftline_sidecar_events_total", kind="prediction", outcome="sent") == 0


def test_every_metric_label_set_exists_at_zero(nowhere: str) -> None:
    registry = CollectorRegistry()
    with PredictionLogger(nowhere, model="m", registry=registry, max_unsent_seconds=1):
        for reason in DROP_REASONS:
            assert registry.get_sample_value("driftline_sidecar_dropped_total",
                                             {"reason": reason}) == 0
        for kind in ("prediction", "label"):
            for outcome in ("sent", "dropped"):
                assert registry.get_sample_value("driftline_sidecar_events_total",
                                                 {"kind": kind, "outcome": outcome}) == 0


def test_unsent_events_expire_as_broker_unavailable(nowhere: str) -> None:
    logger = PredictionLogger(nowhere, model="m", max_unsent_seconds=0.05)
    for i in range(10):
        assert logger.log(features={"x": float(i)}, prediction=1) is not None
    assert logger.log_label(request_id="r", label=0) is not None
    assert logger.flush(timeout_seconds=30)  # returns once the expired events are dropped
    logger.close(timeout_seconds=1)
    assert logger.stats.dropped["broker_unavailable"] == 11
    assert logger.stats.sent == 0


@pytest.mark.timeout(60)
def test_close_is_bounded_and_drops_what_is_left(nowhere: str) -> None:
    # With 60 s before expiry, only close() can end these events: they must be counted "closed",
    # which shows close() did not wait for the expiry.
    logger = PredictionLogger(nowhere, model="m", max_unsent_seconds=60)
    for i in range(5):
        logger.log(features={"x": float(i)}, prediction=1)
    logger.close(timeout_seconds=0.2)
    assert logger.stats.dropped["closed"] == 5
    logger.close(timeout_seconds=0.2)  # twice is harmless
    assert logger.log(features={"x": 1.0}, prediction=1) is None
    assert logger.log_label(request_id="r", label=1) is None
    assert logger.stats.dropped["closed"] == 7


def test_bad_input_at_log_time_is_an_encode_error(nowhere: str) -> None:
    with PredictionLogger(nowhere, max_unsent_seconds=0.1) as logger:
        assert logger.log(features={"x": 1.0}, prediction=1) is None  # no model name anywhere
        assert logger.log(features=[1, 2], prediction=1, model="m") is None  # type: ignore[arg-type]
        naive = datetime(2026, 11, 24, 10, 0)  # noqa: DTZ001 - the point of the test
        assert logger.log(features={}, prediction=1, model="m", timestamp=naive) is None
        assert logger.log_label(request_id="", label=1, model="m") is None
        assert logger.log_label(request_id="r", label=1, model="m", timestamp=naive) is None
    assert logger.stats.dropped["encode_error"] == 5
    assert logger.stats.enqueued == 0


@pytest.mark.timeout(60)
def test_log_returns_while_the_background_thread_is_stuck(fake_kafka: type[FakeProducer]) -> None:
    # The producer's constructor hangs until the gate opens; if log() waited on the background
    # thread in any way, this test would hang instead of reaching the gate.
    fake_kafka.gate = threading.Event()
    logger = PredictionLogger("fake:9092", model="m", buffer_size=5000, max_unsent_seconds=60)
    ids = [logger.log(features={"x": float(i)}, prediction=i, request_id=f"r{i}")
           for i in range(2000)]
    assert None not in ids
    assert logger.stats.sent == 0
    fake_kafka.gate.set()
    assert logger.flush(timeout_seconds=30)
    logger.close()
    assert logger.stats.sent == 2000
    assert [decode_event(value).event_id for _t, _k, value in _sent(fake_kafka)] == ids


def test_events_are_sent_keyed_by_model_and_decode(fake_kafka: type[FakeProducer]) -> None:
    registry = CollectorRegistry()
    stamp = datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)
    with PredictionLogger("fake:9092", model="fraud", model_version="7",
                          predictions_topic="p", labels_topic="l", registry=registry) as logger:
        prediction_id = logger.log(features={"amount": 12.5, "country": "DE"}, prediction=0.93,
                                   request_id="r-81", tags={"region": "eu"}, latency_ms=4,
                                   timestamp=stamp)
        other_id = logger.log(features={"a": 1}, prediction="yes", model="churn",
                              model_version=3)  # type: ignore[arg-type]
        label_id = logger.log_label(request_id="r-81", label=1)
    sent = _sent(fake_kafka)
    assert [(topic, key) for topic, key, _v in sent] == [("p", b"fraud"), ("p", b"churn"),
                                                         ("l", b"fraud")]
    first, second, label = (decode_event(value) for _t, _k, value in sent)
    assert first == PredictionEvent(prediction_id, "fraud", stamp,  # type: ignore[arg-type]
                                    {"amount": 12.5, "country": "DE"}, 0.93, "7", "r-81",
                                    {"region": "eu"}, 4.0)
    assert isinstance(second, PredictionEvent)
    assert (second.event_id, second.model, second.model_version) == (other_id, "churn", "3")
    assert isinstance(label, LabelEvent)
    assert (label.event_id, label.request_id, label.label) == (label_id, "r-81", 1)
    assert label.timestamp.tzinfo is UTC
    assert uuid.UUID(hex=label.event_id).version == 4
    assert logger.stats.sent == 3
    assert registry.get_sample_value("driftline_sidecar_events_total",
                                     {"kind": "prediction", "outcome": "sent"}) == 2
    assert fake_kafka.instances[0].config["acks"] == "all"
    assert fake_kafka.instances[0].closed


def test_features_are_copied_at_log_time(fake_kafka: type[FakeProducer]) -> None:
    fake_kafka.gate = threading.Event()  # hold sending back until the caller has mutated
    features = {"x": 1.0}
    logger = PredictionLogger("fake:9092", model="m")
    logger.log(features=features, prediction=1)
    features["x"] = 2.0
    features["y"] = 3.0
    fake_kafka.gate.set()
    logger.close()
    event = decode_event(_sent(fake_kafka)[0][2])
    assert isinstance(event, PredictionEvent)
    assert event.features == {"x": 1.0}


def test_numpy_values_are_sent_as_plain_numbers(fake_kafka: type[FakeProducer]) -> None:
    with PredictionLogger("fake:9092", model="m") as logger:
        logger.log(features={"a": np.float32(0.5), "b": np.int64(3), "c": np.bool_(True)},
                   prediction=np.array([0.25, 0.75]))
        logger.log_label(request_id="r", label=np.int64(1))
    prediction, label = (decode_event(value) for _t, _k, value in _sent(fake_kafka))
    assert isinstance(prediction, PredictionEvent)
    assert prediction.features == {"a": 0.5, "b": 3, "c": True}
    assert prediction.prediction == [0.25, 0.75]
    assert isinstance(label, LabelEvent)
    assert label.label == 1


@pytest.mark.parametrize(("features", "extra"), [
    ({"x": float("nan")}, {}),
    ({"x": float("inf")}, {}),
    ({"x": {"nested": 1}}, {}),
    ({"x": object()}, {}),
    ({"x": 1.0}, {"tags": {"region": 7}}),
    ({"x": 1.0}, {"latency_ms": -1.0}),
    ({"x": 1.0}, {"request_id": ""}),
    ({"x": "a" * 1_100_000}, {}),
    ({"x": 1.0}, {"model": "m" * 201}),
])
def test_values_the_collector_would_reject_are_encode_errors(
        fake_kafka: type[FakeProducer], features: dict[str, Any], extra: dict[str, Any]) -> None:
    with PredictionLogger("fake:9092", model="m") as logger:
        assert logger.log(features=features, prediction=1, **extra) is not None
        logger.log(features={"ok": 1.0}, prediction=1)  # the event behind it still goes
    assert logger.stats.dropped["encode_error"] == 1
    assert logger.stats.sent == 1
    assert len(_sent(fake_kafka)) == 1


def test_delivery_failure_is_broker_unavailable(fake_kafka: type[FakeProducer]) -> None:
    fake_kafka.fail_with = NotLeaderForPartitionError()
    with PredictionLogger("fake:9092", model="m") as logger:
        for i in range(3):
            logger.log(features={"x": float(i)}, prediction=1)
    assert logger.stats.dropped["broker_unavailable"] == 3
    assert logger.stats.sent == 0


def test_message_too_large_for_the_broker_is_an_encode_error(
        fake_kafka: type[FakeProducer]) -> None:
    fake_kafka.fail_with = MessageSizeTooLargeError()
    with PredictionLogger("fake:9092", model="m") as logger:
        logger.log(features={"x": 1.0}, prediction=1)
    assert logger.stats.dropped["encode_error"] == 1


@pytest.mark.timeout(60)
def test_send_without_metadata_is_retried_then_expires(fake_kafka: type[FakeProducer]) -> None:
    fake_kafka.send_raises = KafkaTimeoutError("no metadata")
    logger = PredictionLogger("fake:9092", model="m", max_unsent_seconds=0.2)
    for i in range(4):
        logger.log(features={"x": float(i)}, prediction=1)
    assert logger.flush(timeout_seconds=30)
    logger.close(timeout_seconds=1)
    assert logger.stats.dropped["broker_unavailable"] == 4


def test_a_broken_producer_is_replaced(fake_kafka: type[FakeProducer]) -> None:
    fake_kafka.send_raises_once = IllegalStateError("KafkaProducer already closed!")
    with PredictionLogger("fake:9092", model="m", max_unsent_seconds=60) as logger:
        logger.log(features={"x": 1.0}, prediction=1)
        assert logger.flush(timeout_seconds=30)
    assert logger.stats.sent == 1
    assert len(fake_kafka.instances) == 2
    assert fake_kafka.instances[0].closed


def test_an_unexpected_send_failure_drops_the_event_not_the_thread(
        fake_kafka: type[FakeProducer]) -> None:
    fake_kafka.send_raises_once = RuntimeError("a bug in the client")
    with PredictionLogger("fake:9092", model="m") as logger:
        logger.log(features={"x": 1.0}, prediction=1)
        logger.log(features={"x": 2.0}, prediction=1)
    assert logger.stats.dropped["broker_unavailable"] == 1
    assert logger.stats.sent == 1


def test_connects_after_the_broker_appears(monkeypatch: pytest.MonkeyPatch,
                                           fake_kafka: type[FakeProducer]) -> None:
    probes: list[int] = []

    def reachable_on_third_probe(*_args: object, **_kwargs: object) -> bool:
        probes.append(1)
        return len(probes) >= 3

    monkeypatch.setattr(sidecar_module, "kafka_reachable", reachable_on_third_probe)
    with PredictionLogger("fake:9092", model="m", max_unsent_seconds=60) as logger:
        logger.log(features={"x": 1.0}, prediction=1)
        assert logger.flush(timeout_seconds=30)
    assert len(probes) == 3
    assert logger.stats.sent == 1


def test_concurrent_serving_threads_keep_exact_counts(nowhere: str) -> None:
    logger = PredictionLogger(nowhere, model="m", buffer_size=1000, max_unsent_seconds=60)
    start = threading.Barrier(4)

    def serve() -> None:
        start.wait()
        for i in range(2500):
            logger.log(features={"x": float(i)}, prediction=1)

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = logger.stats
    assert stats.enqueued == 1000
    assert stats.dropped["buffer_full"] == 9000
    logger.close(timeout_seconds=0.1)
    assert logger.stats.sent + logger.stats.dropped_total == 10_000


def test_event_ids_are_uuid4_hex() -> None:
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    for event_id in ids:
        parsed = uuid.UUID(hex=event_id)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == event_id


def test_stats_is_a_frozen_snapshot(nowhere: str) -> None:
    with PredictionLogger(nowhere, model="m", max_unsent_seconds=0.1) as logger:
        before = logger.stats
        logger.log(features={}, prediction=1)
        with pytest.raises(AttributeError):
            before.sent = 5  # type: ignore[misc]
        assert before.enqueued == 0
        assert logger.stats.enqueued == 1
    assert json.loads(json.dumps(dict(logger.stats.dropped))) == dict(logger.stats.dropped)


def test_buffered_events_leave_the_garbage_collectors_tracking(nowhere: str) -> None:
    # A backlog the collector tracks makes every full collection walk it (see bench/sidecar.py).
    import gc

    logger = PredictionLogger(nowhere, model="m", max_unsent_seconds=60)
    for i in range(100):
        logger.log(features={"x": float(i), "c": "a"}, prediction=0.5, request_id=str(i),
                   tags={"t": "v"})
        logger.log_label(request_id=str(i), label=1)
    for _ in range(4):  # each collection untracks one more level of nested tuples
        gc.collect()
    assert sum(gc.is_tracked(record) for record in logger._buffer) == 0
    logger.close(timeout_seconds=0.1)
