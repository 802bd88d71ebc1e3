"""The sidecar logger a model server imports: `log()` returns at once and never raises.

`log()` checks its arguments cheaply, stamps the event (a uuid4 event id and the aware UTC
time) and appends it to a bounded in-memory buffer. A background daemon thread creates the
kafka-python producer lazily, builds and encodes each event with the schema v1 codec, checks it
with the same decoder the collector runs (so the sidecar never sends a future dead letter), and
produces it keyed by model name. Like KServe's payload logger the sidecar is fire-and-forget:
monitoring must never take the model down, so an event that cannot be delivered is dropped and
counted, never raised into the serving thread.

Drop reasons (`SidecarStats.dropped`, `driftline_sidecar_dropped_total{reason}`):

- ``buffer_full``: the buffer held `buffer_size` events already; the new one is dropped.
- ``broker_unavailable``: the event was not delivered within `max_unsent_seconds` (no broker,
  unknown topic, or the broker refused it).
- ``encode_error``: the event is not a valid v1 event: no model name, `features` not a mapping,
  a naive `timestamp`, NaN or infinite numbers, nested values, over `MAX_EVENT_BYTES`...
- ``closed``: logged after `close()`, or still unsent when `close()` ran out of time.

The buffer is a `collections.deque` guarded by one lock that also guards the counters, so the
bound and the counts stay exact when several serving threads log at once. A `queue.SimpleQueue`
with a locked counter costs the same: 0.25 to 0.5 us per append for either on Python 3.11 and
neither faster run after run (`bench/sidecar.py` times both), but it cannot show its oldest
event or take one back at the front, which expiry and a failed send need.

Create the logger in the process that serves (after a pre-fork server forks its workers) and
close it on shutdown; events still buffered when the interpreter exits without `close()` are
lost.

Examples:
    >>> with PredictionLogger("127.0.0.1:1", model="fraud", max_unsent_seconds=0.1) as sidecar:
    ...     event_id = sidecar.log(features={"amount": 12.5}, prediction=0.93)
    ...     empty = sidecar.log(features={"amount": 1.0}, prediction=1, model="")
    >>> len(event_id), empty, sidecar.stats.enqueued, sidecar.stats.dropped["encode_error"]
    (32, None, 1, 1)
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError

from driftline_sidecar.codec import (
    MAX_EVENT_BYTES,
    LabelEvent,
    PredictionEvent,
    decode_event,
    encode_event,
    new_event_id,
)
from driftline_sidecar.reach import kafka_reachable

if TYPE_CHECKING:  # prometheus_client is needed only by a caller that passes a registry
    from prometheus_client import CollectorRegistry

logger = logging.getLogger(__name__)

DropReason = Literal["buffer_full", "broker_unavailable", "encode_error", "closed"]
DROP_REASONS: Final[tuple[DropReason, ...]] = (
    "buffer_full", "broker_unavailable", "encode_error", "closed")
EventKind = Literal["prediction", "label"]
_KINDS: Final[tuple[EventKind, ...]] = ("prediction", "label")

_BACKOFF_MIN_SECONDS: Final = 0.1
_BACKOFF_MAX_SECONDS: Final = 5.0
_IDLE_WAIT_SECONDS: Final = 0.1
# How long the sending loop may hold the GIL before it hands it over (see _send_some): 0.5 ms
# keeps a serving thread's wait inside the 1 ms goal, and sends ~8,000 events/s on 2 cores
# where handing it over after every event sent ~4,000.
_YIELD_EVERY_SECONDS: Final = 0.0005


@dataclass(frozen=True, slots=True)
class SidecarStats:
    """Counts since the logger was created.

    Every call of `log()` or `log_label()` is sent, dropped for one reason, or still pending:
    once `close()` has returned, ``sent + dropped_total`` equals the number of calls.

    Attributes:
        enqueued: Events accepted into the buffer.
        sent: Events the broker acknowledged.
        dropped: Dropped events by reason; every reason in `DROP_REASONS` is present.
        pending: Events in the buffer or in flight to the broker.
    """

    enqueued: int
    sent: int
    dropped: Mapping[str, int]
    pending: int

    @property
    def dropped_total(self) -> int:
        """All dropped events, whatever the reason."""
        return sum(self.dropped.values())


def _plain(value: Any) -> Any:
    """Python scalars and lists for NumPy scalars and arrays, which model servers often hand in.

    Anything with a ``tolist()`` method is converted, so NumPy need not be imported here
    (tests/unit/collector/test_sidecar.py covers NumPy itself).

    Examples:
        >>> from array import array
        >>> _plain(array("d", [0.5, 1.0])), _plain((1, "a")), _plain("a")
        ([0.5, 1.0], [1, 'a'], 'a')
    """
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        converted = tolist()
        return converted if type(converted) is type(value) else _plain(converted)
    return value


# A buffered record: (kind, event id, model, timestamp, enqueued at (monotonic), payload).
_Record = tuple[EventKind, str, str, datetime, float, tuple[Any, ...]]


class PredictionLogger:
    """Logs predictions and labels to Kafka from a model server.

    Args:
        bootstrap_servers: Kafka bootstrap servers, "host:port[,host:port]".
        model: Default model name for `log()` and `log_label()`.
        model_version: Default model version for `log()`.
        predictions_topic: Topic for predictions.
        labels_topic: Topic for labels.
        buffer_size: Events held while waiting to be sent; beyond it new events are dropped.
        max_unsent_seconds: Events not delivered within this long are dropped.
        registry: Optional Prometheus registry for the counters
            ``driftline_sidecar_events_total{kind,outcome}`` and
            ``driftline_sidecar_dropped_total{reason}`` (one logger per registry). Passing one
            needs prometheus-client installed; the sidecar itself does not depend on it.

    Raises:
        ValueError: When `buffer_size` or `max_unsent_seconds` is not positive.
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
        if not max_unsent_seconds > 0:
            raise ValueError(f"max_unsent_seconds must be positive, got {max_unsent_seconds}")
        self._servers = [server.strip() for server in bootstrap_servers.split(",")]
        self._model = model
        self._version = model_version
        self._topics: dict[EventKind, str] = {"prediction": predictions_topic,
                                              "label": labels_topic}
        self._capacity = buffer_size
        self._max_unsent = float(max_unsent_seconds)
        self._lock = threading.Lock()
        self._buffer: deque[_Record] = deque()
        self._busy = 0  # taken from the buffer, not yet sent or dropped
        self._enqueued = 0
        self._sent = 0
        self._dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._closed = False
        self._idle = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._close_deadline = 0.0
        self._backoff = _BACKOFF_MIN_SECONDS
        self._producer: KafkaProducer | None = None
        self._sent_metric: dict[str, Any] = {}
        self._dropped_metric: dict[str, Any] = {}
        self._reason_metric: dict[str, Any] = {}
        if registry is not None:
            from prometheus_client import Counter  # the caller who made `registry` has it

            events = Counter("driftline_sidecar_events_total",
                             "Events the sidecar logger sent or dropped, by kind and outcome.",
                             ["kind", "outcome"], registry=registry)
            dropped = Counter("driftline_sidecar_dropped_total",
                              "Events the sidecar logger dropped, by reason.", ["reason"],
                              registry=registry)
            # Every label set exists from the start at zero, so that rate() and alerts see it.
            self._sent_metric = {kind: events.labels(kind, "sent") for kind in _KINDS}
            self._dropped_metric = {kind: events.labels(kind, "dropped") for kind in _KINDS}
            self._reason_metric = {reason: dropped.labels(reason) for reason in DROP_REASONS}
        self._on_sent_callbacks = {kind: functools.partial(self._on_sent, kind) for kind in _KINDS}
        self._on_failed_callbacks = {kind: functools.partial(self._on_failed, kind)
                                     for kind in _KINDS}
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
        event_id: str | None = None,
    ) -> str | None:
        """Log one prediction without blocking; never raises.

        Args:
            features: The model's inputs by name (copied at once; nested values are refused).
            prediction: A scalar or a flat list of scalars (NumPy values are converted).
            request_id: Joins a later label to this prediction.
            tags: Free-form string metadata.
            latency_ms: Serving latency.
            timestamp: When the prediction was served, timezone-aware; now when omitted.
            model: Overrides the logger's model name.
            model_version: Overrides the logger's model version.
            event_id: The event's id (1 to 200 characters), for a caller that derives it from
                the request so that a repeated delivery is stored once; a random one when
                omitted.

        Returns:
            The event id, or None when the event was dropped at once (see `stats`). An event
            accepted here may still be dropped later (encode error, broker unavailable).
        """
        try:
            name = self._model if model is None else model
            if (not name or not isinstance(features, Mapping)
                    or (timestamp is not None and timestamp.utcoffset() is None)):
                self._count_drop("prediction", "encode_error")
                return None
            event_id = event_id or new_event_id()
            # Snapshots as tuples of names and of values, not dicts: the garbage collector stops
            # tracking a tuple of atomic values but never one that holds a dict, and a backlog
            # of tracked records makes every full collection walk the whole buffer.
            payload = (tuple(features), tuple(features.values()), prediction, request_id,
                       None if tags is None else tuple(tags.items()), latency_ms,
                       self._version if model_version is None else model_version)
            record: _Record = ("prediction", event_id, name, timestamp or datetime.now(UTC),
                               time.monotonic(), payload)
        except Exception:  # a hostile Mapping or datetime: still never into the serving thread
            self._count_drop("prediction", "encode_error")
            return None
        return event_id if self._put(record) else None

    def log_label(
        self,
        *,
        request_id: str,
        label: Any,
        timestamp: datetime | None = None,
        model: str | None = None,
    ) -> str | None:
        """Log the ground truth of an earlier prediction without blocking; never raises.

        Args:
            request_id: The `request_id` of the prediction this label belongs to.
            label: A finite number, a string or a boolean.
            timestamp: When the label became known, timezone-aware; now when omitted.
            model: Overrides the logger's model name.

        Returns:
            The event id, or None when the event was dropped at once.
        """
        try:
            name = self._model if model is None else model
            if not name or not request_id or (
                    timestamp is not None and timestamp.utcoffset() is None):
                self._count_drop("label", "encode_error")
                return None
            event_id = new_event_id()
            record: _Record = ("label", event_id, name, timestamp or datetime.now(UTC),
                               time.monotonic(), (request_id, label))
        except Exception:
            self._count_drop("label", "encode_error")
            return None
        return event_id if self._put(record) else None

    def _put(self, record: _Record) -> bool:
        with self._lock:
            if self._closed:
                reason: DropReason | None = "closed"
            elif len(self._buffer) >= self._capacity:
                reason = "buffer_full"
            else:
                self._buffer.append(record)
                self._enqueued += 1
                reason = None
        if reason is not None:
            self._count_drop(record[0], reason)
            return False
        if self._idle:  # Event.set() takes a lock of its own: only when the thread waits
            self._wake.set()
        return True

    def _count_drop(self, kind: EventKind, reason: DropReason, count: int = 1,
                    *, was_busy: int = 0) -> None:
        with self._lock:
            self._dropped[reason] += count
            self._busy -= was_busy
        if self._reason_metric:
            self._reason_metric[reason].inc(count)
            self._dropped_metric[kind].inc(count)

    @property
    def stats(self) -> SidecarStats:
        """Counts so far: enqueued, sent, dropped by reason, pending."""
        with self._lock:
            return SidecarStats(self._enqueued, self._sent, dict(self._dropped),
                                len(self._buffer) + self._busy)

    # -- the background thread -------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._step()
                except Exception:  # never expected; the thread must outlive any one failure
                    logger.exception("sidecar background step failed")
                    self._stopping.wait(_BACKOFF_MAX_SECONDS)
        finally:
            # A record put back by a failed send while close() emptied the buffer is counted too.
            self._drop_left("closed")
            self._discard_producer(max(self._close_deadline - time.monotonic(), 0.1))

    def _step(self) -> None:
        """One round: connect (or wait to retry), or send what is buffered, or wait for work."""
        if self._producer is None:
            self._expire()
            if self._connect():
                self._backoff = _BACKOFF_MIN_SECONDS
                return
            # Wait on the stop event, not on the wake-up: logging must not speed up retries.
            self._stopping.wait(self._retry_wait(self._backoff))
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX_SECONDS)
            return
        if not self._send_some(self._producer):
            self._idle = True
            if not self._buffer:  # checked after _idle is set: no wake-up is missed
                self._wake.wait(_IDLE_WAIT_SECONDS)
            self._wake.clear()
            self._idle = False

    def _discard_producer(self, timeout_seconds: float = 1.0) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=timeout_seconds)
            except Exception:
                logger.debug("sidecar producer did not close cleanly", exc_info=True)

    def _retry_wait(self, backoff: float) -> float:
        jittered = backoff * random.uniform(0.5, 1.0)
        with self._lock:
            oldest = self._buffer[0][4] if self._buffer else None
        if oldest is None:
            return jittered
        # Wake up in time to expire the oldest event when its max_unsent_seconds are over.
        return max(0.01, min(jittered, oldest + self._max_unsent - time.monotonic() + 0.01))

    def _connect(self) -> bool:
        # kafka-python 3.x raises KafkaTimeoutError on a failed bootstrap and leaves its sockets
        # to the garbage collector: probe with a plain TCP connect first.
        if not kafka_reachable(self._servers, timeout_seconds=0.5):
            return False
        total_ms = int(self._max_unsent * 1000)
        request_timeout_ms = max(1000, min(30_000, total_ms // 2))
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=self._servers,
                client_id="driftline-sidecar",
                acks="all",
                linger_ms=5,
                max_block_ms=1000,
                request_timeout_ms=request_timeout_ms,
                # Bounds the time an event waits inside kafka-python once handed over.
                delivery_timeout_ms=max(total_ms, request_timeout_ms + 5),
                bootstrap_timeout_ms=2000,
                max_request_size=2 * 1024 * 1024,
            )
        except Exception:  # KafkaTimeoutError, OSError, version probing failures
            logger.debug("sidecar cannot reach Kafka yet", exc_info=True)
            return False
        logger.info("sidecar connected to Kafka")
        return True

    def _expire(self) -> None:
        self._drop_left("broker_unavailable", older_than=time.monotonic() - self._max_unsent)

    def _drop_left(self, reason: DropReason, older_than: float | None = None) -> None:
        """Drop buffered events (all, or those enqueued before `older_than`), counted."""
        by_kind: dict[EventKind, int] = {}
        with self._lock:
            while self._buffer and (older_than is None or self._buffer[0][4] < older_than):
                kind = self._buffer.popleft()[0]
                by_kind[kind] = by_kind.get(kind, 0) + 1
        for kind, count in by_kind.items():
            self._count_drop(kind, reason, count)

    def _take(self) -> _Record | None:
        with self._lock:
            if not self._buffer:
                return None
            self._busy += 1
            return self._buffer.popleft()

    def _send_some(self, producer: KafkaProducer, limit: int = 1000) -> bool:
        """Hand up to `limit` buffered events to the producer; False when there were none."""
        yielded_at = time.perf_counter()
        for count in range(limit):
            if time.perf_counter() - yielded_at > _YIELD_EVERY_SECONDS:
                # Hand the GIL over: a serving thread calling log() would otherwise wait up to
                # the interpreter's switch interval (5 ms) behind this loop.
                os.sched_yield()
                yielded_at = time.perf_counter()
            record = self._take()
            if record is None:
                return count > 0
            kind, model = record[0], record[2]
            try:
                value = self._encode(record)
            except Exception:
                self._count_drop(kind, "encode_error", was_busy=1)
                continue
            try:
                future = producer.send(self._topics[kind], key=model.encode(), value=value)
            except MessageSizeTooLargeError:
                self._count_drop(kind, "encode_error", was_busy=1)
                continue
            except KafkaError as exc:
                # Timeout: no metadata for the topic (or no room in kafka-python's buffer)
                # within max_block_ms. Anything else (a producer closed by a fatal error): start
                # a new producer. Either way the event goes back to the front, to expire in time.
                logger.debug("sidecar send failed; will retry", exc_info=True)
                with self._lock:
                    self._buffer.appendleft(record)
                    self._busy -= 1
                if not isinstance(exc, KafkaTimeoutError):
                    self._discard_producer()
                self._expire()
                self._stopping.wait(_BACKOFF_MIN_SECONDS)
                return True
            except Exception:  # kafka-python failing in some other way: drop, never die
                logger.warning("sidecar send failed unexpectedly", exc_info=True)
                self._count_drop(kind, "broker_unavailable", was_busy=1)
                continue
            # Callbacks bound once per kind: kafka-python wraps extra arguments in a
            # functools.partial per event, garbage the collector then has to track.
            future.add_callback(self._on_sent_callbacks[kind])
            future.add_errback(self._on_failed_callbacks[kind])
        return True

    def _encode(self, record: _Record) -> bytes:
        kind, event_id, model, timestamp, _, payload = record
        event: PredictionEvent | LabelEvent
        if kind == "prediction":
            names, values, prediction, request_id, tags, latency_ms, version = payload
            event = PredictionEvent(
                event_id=event_id, model=model, timestamp=timestamp,
                features={str(name): _plain(value)
                          for name, value in zip(names, values, strict=True)},
                prediction=_plain(prediction),
                model_version=None if version is None else str(version),
                request_id=request_id, tags=dict(tags) if tags else {},
                latency_ms=None if latency_ms is None else float(latency_ms))
        else:
            request_id, label = payload
            event = LabelEvent(event_id=event_id, model=model, request_id=request_id,
                               timestamp=timestamp, label=_plain(label))
        value = encode_event(event)
        # The collector's own checks: what fails them would only become a dead letter.
        decode_event(value, max_bytes=MAX_EVENT_BYTES)
        return value

    def _on_sent(self, kind: EventKind, _metadata: object) -> None:
        with self._lock:
            self._sent += 1
            self._busy -= 1
        if self._sent_metric:
            self._sent_metric[kind].inc()

    def _on_failed(self, kind: EventKind, error: Exception) -> None:
        too_large = isinstance(error, MessageSizeTooLargeError)
        self._count_drop(kind, "encode_error" if too_large else "broker_unavailable", was_busy=1)

    # -- flush and shutdown ----------------------------------------------------------------------
    def flush(self, timeout_seconds: float = 10.0) -> bool:
        """Wait until every accepted event is sent or dropped.

        Args:
            timeout_seconds: The longest wait.

        Returns:
            True when nothing is pending any more, False when the time ran out.
        """
        deadline = time.monotonic() + timeout_seconds
        while True:
            with self._lock:
                pending = len(self._buffer) + self._busy
            if pending <= 0:
                return True
            left = deadline - time.monotonic()
            if left <= 0 or not self._thread.is_alive():
                return False
            if self._idle:
                self._wake.set()
            time.sleep(min(0.005, left))

    def close(self, timeout_seconds: float = 10.0) -> None:
        """Flush what can be sent within the timeout, drop the rest (counted), stop.

        Returns within about `timeout_seconds` whether or not a broker answers; events logged
        afterwards are dropped as ``closed``. Calling it again does nothing.

        Args:
            timeout_seconds: The longest time to spend flushing and closing the producer.
        """
        with self._lock:
            if self._closed:
                return
        deadline = time.monotonic() + timeout_seconds
        self._close_deadline = deadline
        self.flush(timeout_seconds)
        with self._lock:
            self._closed = True
        self._drop_left("closed")
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=max(deadline - time.monotonic(), 0.1))
        if self._thread.is_alive():
            logger.warning("sidecar thread still busy after close timeout")

    def __enter__(self) -> PredictionLogger:
        """Use as a context manager; `close()` on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close, flushing what can be sent within the default timeout."""
        self.close()
