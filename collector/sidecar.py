"""The sidecar logger a model server imports: `log()` returns at once and never raises.

Events go into a bounded in-memory buffer; a background thread encodes them
and produces them to Kafka, keyed by model name. When the broker is down or
the buffer is full, events are dropped and counted, never raised into the
serving thread (like KServe's payload logger, the sidecar is fire-and-forget:
monitoring must not take the model down).

Examples:
    >>> with PredictionLogger("127.0.0.1:1", model="fraud", max_unsent_seconds=0.1) as logger:
    ...     event_id = logger.log(features={"amount": 12.5}, prediction=0.93)
    >>> len(event_id), logger.stats.enqueued
    (32, 1)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter as Tally
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kafka import KafkaProducer
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter

from collector.errors import EventDecodeError
from collector.events import LabelEvent, PredictionEvent, encode_event
from collector.reach import kafka_reachable

logger = logging.getLogger(__name__)

DropReason = Literal["buffer_full", "broker_unavailable", "encode_error", "closed", "invalid"]


@dataclass(frozen=True)
class SidecarStats:
    """Counts since the logger was created."""

    enqueued: int
    sent: int
    dropped: Mapping[str, int] = field(default_factory=dict)

    @property
    def dropped_total(self) -> int:
        """All dropped events, whatever the reason."""
        return sum(self.dropped.values())


@dataclass(frozen=True, slots=True)
class _Pending:
    event: PredictionEvent | LabelEvent
    topic: str
    enqueued_at: float


class PredictionLogger:
    """Logs predictions and labels to Kafka from a model server.

    Args:
        bootstrap_servers: Kafka bootstrap servers, "host:port[,host:port]".
        model: Default model name for `log()` and `log_label()`.
        model_version: Default model version.
        predictions_topic: Topic for predictions.
        labels_topic: Topic for labels.
        buffer_size: Events held while waiting to be sent; beyond it new events are dropped.
        max_unsent_seconds: Events not sent within this long (broker down) are dropped.
        registry: Optional Prometheus registry for the sidecar's counters.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        model: str | None = None,
        model_version: str | None = None,
        *,
        predictions_topic: str = "driftline.predictions",
        labels_topic: str = "driftline.labels",
        buffer_size: int = 10_000,
        max_unsent_seconds: float = 30.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, got {buffer_size}")
        if max_unsent_seconds <= 0:
            raise ValueError(f"max_unsent_seconds must be positive, got {max_unsent_seconds}")
        self._servers = bootstrap_servers.split(",")
        self._model = model
        self._version = model_version
        self._topics = {"prediction": predictions_topic, "label": labels_topic}
        self._capacity = buffer_size
        self._max_unsent = max_unsent_seconds
        self._buffer: deque[_Pending] = deque()
        self._wake = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._enqueued = 0
        self._sent = 0
        self._dropped: Tally[str] = Tally()
        self._in_flight = 0
        self._producer: KafkaProducer | None = None
        self._metrics_sent: Counter | None = None
        self._metrics_dropped: Counter | None = None
        if registry is not None:
            self._metrics_sent = Counter("driftline_sidecar_events_total",
                                         "Events the sidecar sent, by kind.", ["kind"],
                                         registry=registry)
            self._metrics_dropped = Counter("driftline_sidecar_dropped_total",
                                            "Events the sidecar dropped, by reason.", ["reason"],
                                            registry=registry)
        self._thread = threading.Thread(target=self._run, name="driftline-sidecar", daemon=True)
        self._thread.start()

    # -- the serving thread's side: cheap, never raises ------------------------------------------
    def log(
        self,
        *,
        features: Mapping[str, Any],
        prediction: Any,
        request_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        latency_ms: float | None = None,
        timestamp: datetime | None = None,
        model: str | None = None,
        model_version: str | None = None,
    ) -> str | None:
        """Log one prediction; returns its event id, or None when it was dropped."""
        try:
            event = PredictionEvent(
                event_id=uuid.uuid4().hex,
                model=model or self._model or "",
                timestamp=timestamp or datetime.now(UTC),
                features=features,
                prediction=prediction,
                model_version=model_version or self._version,
                request_id=request_id,
                tags=tags or {},
                latency_ms=latency_ms,
            )
            if not event.model or not isinstance(features, Mapping):
                self._drop("invalid")
                return None
            return event.event_id if self._enqueue(event, "prediction") else None
        except Exception:  # never into the serving thread
            self._drop("invalid")
            return None

    def log_label(
        self,
        *,
        request_id: str,
        label: Any,
        timestamp: datetime | None = None,
        model: str | None = None,
    ) -> str | None:
        """Log the ground truth of an earlier prediction; returns its event id or None."""
        try:
            event = LabelEvent(
                event_id=uuid.uuid4().hex,
                model=model or self._model or "",
                request_id=request_id,
                timestamp=timestamp or datetime.now(UTC),
                label=label,
            )
            if not event.model or not request_id:
                self._drop("invalid")
                return None
            return event.event_id if self._enqueue(event, "label") else None
        except Exception:
            self._drop("invalid")
            return None

    def _enqueue(self, event: PredictionEvent | LabelEvent, kind: str) -> bool:
        if self._closed:
            self._drop("closed")
            return False
        if len(self._buffer) >= self._capacity:
            self._drop("buffer_full")
            return False
        self._buffer.append(_Pending(event, self._topics[kind], time.monotonic()))
        self._enqueued += 1
        if not self._wake.is_set():
            self._wake.set()
        return True

    def _drop(self, reason: DropReason, count: int = 1) -> None:
        with self._lock:
            self._dropped[reason] += count
        if self._metrics_dropped is not None:
            self._metrics_dropped.labels(reason).inc(count)

    @property
    def stats(self) -> SidecarStats:
        """Counts so far (enqueued, sent, dropped by reason)."""
        with self._lock:
            return SidecarStats(self._enqueued, self._sent, dict(self._dropped))

    # -- the background thread -------------------------------------------------------------------
    def _connect(self) -> bool:
        if not kafka_reachable(self._servers, timeout_seconds=0.5):
            return False
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=self._servers,
                client_id="driftline-sidecar",
                acks="all",
                linger_ms=5,
                max_block_ms=2000,
                request_timeout_ms=max(1000, int(self._max_unsent * 1000) // 3),
                delivery_timeout_ms=max(3000, int(self._max_unsent * 1000)),
                bootstrap_timeout_ms=2000,
            )
        except (KafkaError, OSError, ValueError):
            logger.debug("sidecar cannot reach Kafka yet", exc_info=True)
            return False
        return True

    def _expire(self) -> None:
        limit = time.monotonic() - self._max_unsent
        expired = 0
        while self._buffer and self._buffer[0].enqueued_at < limit:
            self._buffer.popleft()
            expired += 1
        if expired:
            self._drop("broker_unavailable", expired)

    def _on_sent(self, kind: str) -> None:
        with self._lock:
            self._sent += 1
            self._in_flight -= 1
        if self._metrics_sent is not None:
            self._metrics_sent.labels(kind).inc()

    def _on_failed(self, _error: Exception) -> None:
        with self._lock:
            self._in_flight -= 1
        self._drop("broker_unavailable")

    def _run(self) -> None:
        backoff = 0.1
        while True:
            if self._closed and not self._buffer:
                return
            if self._producer is None:
                self._expire()
                if not self._connect():
                    self._wake.wait(backoff)
                    self._wake.clear()
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.1
            if not self._buffer:
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            self._send_some()

    def _send_some(self) -> None:
        producer = self._producer
        if producer is None:
            return
        for _ in range(min(len(self._buffer), 1000)):
            # Hand the GIL back after every event: a serving thread calling log() otherwise
            # waits up to the interpreter's switch interval (5 ms) behind this loop.
            time.sleep(0)
            try:
                pending = self._buffer.popleft()
            except IndexError:  # close() dropped the rest meanwhile
                return
            kind = "prediction" if isinstance(pending.event, PredictionEvent) else "label"
            try:
                value = encode_event(pending.event)
            except EventDecodeError:
                self._drop("encode_error")
                continue
            try:
                with self._lock:
                    self._in_flight += 1
                future = producer.send(pending.topic, key=pending.event.model.encode(),
                                       value=value)
                future.add_callback(lambda _meta, k=kind: self._on_sent(k))
                future.add_errback(self._on_failed)
            except KafkaError:
                with self._lock:
                    self._in_flight -= 1
                self._buffer.appendleft(pending)  # metadata not available yet: keep order
                self._expire()
                time.sleep(0.05)
                return

    # -- shutdown --------------------------------------------------------------------------------
    def flush(self, timeout_seconds: float = 10.0) -> bool:
        """Wait until every buffered event is sent or dropped; True when nothing is left."""
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            with self._lock:
                busy = self._in_flight
            if not self._buffer and busy <= 0:
                return True
            self._wake.set()
            if self._producer is not None and not self._buffer:
                try:
                    self._producer.flush(timeout=max(deadline - time.monotonic(), 0.01))
                except KafkaError:
                    logger.debug("flush timed out", exc_info=True)
            time.sleep(0.01)
        return not self._buffer

    def close(self, timeout_seconds: float = 10.0) -> None:
        """Flush what can be sent within the timeout, drop the rest (counted), stop."""
        if self._closed:
            return
        deadline = time.monotonic() + timeout_seconds
        self.flush(timeout_seconds)
        self._closed = True
        left = len(self._buffer)
        self._buffer.clear()
        if left:
            self._drop("closed", left)
        self._wake.set()
        self._thread.join(timeout=max(deadline - time.monotonic(), 0.1))
        if self._producer is not None:
            try:
                self._producer.close(timeout=max(deadline - time.monotonic(), 0.1))
            except KafkaError:
                logger.debug("producer close failed", exc_info=True)

    def __enter__(self) -> PredictionLogger:
        """Use as a context manager; `close()` on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close, flushing what can be sent."""
        self.close()
