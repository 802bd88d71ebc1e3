"""Ingest: consume events from Kafka and store each offset exactly once.

The loop's state is the next offset of each partition, kept in the store
(`ingest_offsets`) and written in the same transaction as the batch's events: a
batch is decoded, invalid events are produced to the dead-letter topic with
their original bytes (and acknowledged), then the valid ones are written as
columnar batches together with the partitions' new offsets. The offset update is
a compare-and-set on the batch's first offset, so a process that lost its
partitions in a rebalance cannot store a batch the new owner stored already. On
assignment the consumer seeks to the stored offsets; Kafka's committed offsets
follow the store's after each batch (for lag tools), and are used only when the
store has none (a new group). A failure before the store commits rewinds the
partitions, so nothing is lost and nothing is stored twice; event ids make a
producer's redelivery a duplicate too.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaConnectionError, KafkaError, MessageSizeTooLargeError
from kafka.structs import OffsetAndMetadata
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from alerts.clock import utcnow
from collector.config import KafkaSettings
from collector.errors import EventDecodeError
from collector.events import LabelEvent, PredictionEvent, decode_event
from collector.metrics import Metrics
from collector.reach import kafka_reachable
from collector.store.offsets import StaleOffsetError, claim_offsets, stored_offsets
from collector.store.queries import insert_labels, insert_predictions

logger = logging.getLogger(__name__)

_FETCH_BYTES = 16 * 1024 * 1024
_MAX_DEADLETTER_BYTES = 8 * 1024 * 1024
_MAX_BACKOFF_SECONDS = 30.0


@dataclass
class BatchOutcome:
    """What one batch did: counts by outcome, for logs and tests."""

    stored: int = 0
    duplicates: int = 0
    deadlettered: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def deadletter_headers(record: Any, error: EventDecodeError) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: the reason, a message, and where the event came from."""
    return [
        ("driftline.error.reason", error.reason.encode()),
        ("driftline.error.message", str(error).encode()),
        ("driftline.source.topic", str(record.topic).encode()),
        ("driftline.source.partition", str(record.partition).encode()),
        ("driftline.source.offset", str(record.offset).encode()),
    ]


def connect_clients(settings: KafkaSettings, *, group_id: str, client_id: str,
                    producer_client_id: str,
                    metadata_max_age_ms: int) -> tuple[KafkaConsumer, KafkaProducer]:
    """A consumer without auto-commit and a dead-letter producer (ingest, sources bridge).

    Raises:
        KafkaConnectionError: No bootstrap server answers.
    """
    servers = settings.bootstrap_servers.split(",")
    if not kafka_reachable(servers):
        raise KafkaConnectionError(f"no bootstrap server answers: {servers}")
    consumer = KafkaConsumer(
        bootstrap_servers=servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.max_poll_records,
        max_partition_fetch_bytes=_FETCH_BYTES,
        fetch_max_bytes=_FETCH_BYTES * 2,
        bootstrap_timeout_ms=5000,
        metadata_max_age_ms=metadata_max_age_ms,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=min(3000, settings.session_timeout_ms // 3),
    )
    try:
        producer = KafkaProducer(
            bootstrap_servers=servers,
            client_id=producer_client_id,
            acks="all",
            linger_ms=5,
            max_request_size=_MAX_DEADLETTER_BYTES + 64 * 1024,
        )
    except Exception:
        consumer.close(autocommit=False)
        raise
    return consumer, producer


def send_deadletter(producer: KafkaProducer, topic: str, record: Any,
                    headers: list[tuple[str, bytes]]) -> Any:
    """Produce `record`'s original bytes to the dead-letter topic; returns the send future.

    A value larger than the topic takes keeps its head, with a `driftline.error.truncated`
    header.
    """
    value = record.value
    if value is not None and len(value) > _MAX_DEADLETTER_BYTES:
        value = value[:_MAX_DEADLETTER_BYTES]
        headers.append(("driftline.error.truncated", b"true"))
    try:
        return producer.send(topic, key=record.key, value=value, headers=headers)
    except MessageSizeTooLargeError:
        headers.append(("driftline.error.truncated", b"true"))
        return producer.send(topic, key=record.key, value=value[:1024], headers=headers)


def close_clients(consumer: KafkaConsumer | None, producer: KafkaProducer | None,
                  role: str) -> None:
    """Close a loop's consumer (without committing) and its producer (ingest, sources bridge).

    Failures are only logged: closing a broken client must not stop the loop.
    """
    if consumer is not None:
        try:
            consumer.close(autocommit=False, timeout_ms=5000)
        except Exception:
            logger.warning("%s consumer close failed", role, exc_info=True)
    if producer is not None:
        try:
            producer.close(timeout=5)
        except Exception:
            logger.warning("%s producer close failed", role, exc_info=True)


class _SeekToStored(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, start each partition at the offset the store holds for it."""

    def __init__(self, loop: IngestLoop) -> None:
        self._loop = loop

    def on_partitions_revoked(self, revoked: Any) -> None:
        """Nothing to flush: every batch is stored and its offsets with it."""

    def on_partitions_assigned(self, assigned: Any) -> None:
        """Seek to the stored offsets (Kafka's committed ones apply where none are stored)."""
        self._loop.seek_to_stored(list(assigned))


class IngestLoop:
    """The consumer loop of the collector; `run(stop)` blocks until `stop` is set."""

    def __init__(
        self,
        settings: KafkaSettings,
        session_factory: sessionmaker[Session],
        metrics: Metrics,
        *,
        clock: Callable[[], datetime] = utcnow,
        poll_timeout_ms: int = 500,
    ) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._metrics = metrics
        self._clock = clock
        self._poll_timeout_ms = poll_timeout_ms
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self.batches_committed = 0

    # -- connection -----------------------------------------------------------------------------
    def _connect(self) -> None:
        consumer, producer = connect_clients(
            self._settings, group_id=self._settings.group_id, client_id="driftline-collector",
            producer_client_id="driftline-deadletter",
            # A topic created just before the group forms has no metadata yet: look again
            # within 30 s rather than kafka-python's default 5 minutes.
            metadata_max_age_ms=30_000)
        self._consumer, self._producer = consumer, producer
        consumer.subscribe([self._settings.predictions_topic, self._settings.labels_topic],
                           listener=_SeekToStored(self))
        logger.info("ingest connected", extra={"bootstrap": self._settings.bootstrap_servers})

    def _disconnect(self) -> None:
        close_clients(self._consumer, self._producer, "ingest")
        self._consumer, self._producer = None, None

    # -- the loop -------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; reconnects with backoff, never raises on bad input."""
        backoff = 0.5
        while not stop.is_set():
            if self._consumer is None:
                try:
                    self._connect()
                    backoff = 0.5
                except KafkaError as exc:
                    self._metrics.kafka_up.set(0)
                    logger.warning("kafka unreachable, retrying", extra={"error": repr(exc),
                                                                         "retry_in": backoff})
                    stop.wait(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                    continue
            consumer = self._consumer
            if consumer is None:
                continue
            try:
                batch = consumer.poll(
                    timeout_ms=self._poll_timeout_ms, max_records=self._settings.max_poll_records
                )
            except KafkaError:
                logger.warning("poll failed, reconnecting", exc_info=True)
                self._disconnect()
                stop.wait(backoff)
                continue
            if batch:
                if not self._handle(batch):
                    stop.wait(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                    continue
                backoff = 0.5
            self._update_lag()
        self._disconnect()
        logger.info("ingest stopped")

    def seek_to_stored(self, partitions: Sequence[TopicPartition]) -> None:
        """Seek `partitions` to the next offsets the store holds for them."""
        consumer = self._consumer
        if consumer is None or not partitions:
            return
        with self._sessions() as session:
            offsets = stored_offsets(session, self._settings.group_id, partitions)
        for tp, offset in offsets.items():
            try:
                consumer.seek(tp, offset)
            except Exception:  # revoked again meanwhile: the next assignment seeks
                logger.warning("seek to stored offset failed", exc_info=True)
        if offsets:
            logger.info("partitions start at stored offsets",
                        extra={"partitions": {f"{tp.topic}[{tp.partition}]": o
                                              for tp, o in offsets.items()}})

    def _handle(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> bool:
        """Process one polled batch; True when it was stored and committed."""
        try:
            self.process(batch)
        except StaleOffsetError as exc:
            # Another process stored these offsets (a rebalance moved the partition).
            logger.warning("batch already stored elsewhere, skipping to the stored offsets",
                           extra={"error": str(exc)})
            try:
                self.seek_to_stored(list(batch))
            except SQLAlchemyError:
                self._rewind(batch)
            return True
        except (SQLAlchemyError, KafkaError, OSError) as exc:
            self._metrics.store_up.set(0 if isinstance(exc, SQLAlchemyError) else 1)
            logger.warning("batch not committed, will be read again", extra={"error": repr(exc)})
            self._rewind(batch)
            return False
        return True

    def _rewind(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        if self._consumer is None:
            return
        for tp, records in batch.items():
            if records:
                try:
                    self._consumer.seek(tp, records[0].offset)
                except Exception:  # the partition may have been revoked; the group re-reads it
                    logger.warning("seek failed", exc_info=True)

    def process(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> BatchOutcome:
        """Decode, store, dead-letter and commit one batch (raises if it cannot be made durable)."""
        outcome = BatchOutcome()
        predictions: list[PredictionEvent] = []
        labels: list[LabelEvent] = []
        dead: list[tuple[Any, EventDecodeError]] = []
        for records in batch.values():
            for record in records:
                try:
                    event = decode_event(record.value, max_bytes=self._settings.max_event_bytes,
                                         loads=orjson.loads)
                except EventDecodeError as error:
                    dead.append((record, error))
                    continue
                if isinstance(event, PredictionEvent):
                    predictions.append(event)
                else:
                    labels.append(event)
        # Dead letters first: once the offsets are stored they will not be read again.
        self._send_deadletters(dead)
        now = self._clock()
        with self._sessions.begin() as session:
            claim_offsets(session, self._settings.group_id, {
                tp: (records[0].offset, records[-1].offset + 1)
                for tp, records in batch.items() if records}, now)
            new_predictions = insert_predictions(session, predictions, now)
            new_labels = insert_labels(session, labels, now)
        self._metrics.store_up.set(1)
        self._commit(batch)
        self._count(predictions, labels, new_predictions, new_labels, dead, outcome, now)
        return outcome

    def _send_deadletters(self, dead: list[tuple[Any, EventDecodeError]]) -> None:
        if not dead:
            return
        if self._producer is None:
            raise KafkaError("no dead-letter producer")
        futures = [send_deadletter(self._producer, self._settings.deadletter_topic, record,
                                   deadletter_headers(record, error))
                   for record, error in dead]
        self._producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)  # raises if the dead letter did not reach the broker

    def _commit(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        if self._consumer is None:
            raise KafkaError("no consumer")
        offsets = {
            tp: OffsetAndMetadata(records[-1].offset + 1, "", -1)
            for tp, records in batch.items()
            if records
        }
        self.batches_committed += 1
        try:
            self._consumer.commit(offsets=offsets)
        except KafkaError:  # the store holds the offsets; Kafka's copy is for lag tools
            logger.info("kafka offset commit failed (offsets are in the store)", exc_info=True)
        self._metrics.ingest_batches.inc()

    def _count(
        self,
        predictions: list[PredictionEvent],
        labels: list[LabelEvent],
        new_predictions: set[str],
        new_labels: set[str],
        dead: list[tuple[Any, EventDecodeError]],
        outcome: BatchOutcome,
        now: datetime,
    ) -> None:
        m = self._metrics
        seen: set[str] = set()
        stored: Counter[tuple[str, str]] = Counter()
        errors: Counter[tuple[str, str]] = Counter()
        duplicates: Counter[str] = Counter()
        for event in predictions:
            if event.event_id in new_predictions and event.event_id not in seen:
                seen.add(event.event_id)
                version = event.model_version or ""
                stored[(event.model, version)] += 1
                if event.latency_ms is not None:
                    m.serving_latency.labels(event.model, version).observe(event.latency_ms / 1000)
                if event.tags and event.tags.get("status") == "error":
                    errors[(event.model, version)] += 1
            else:
                duplicates[event.model] += 1
        # Counted per model and version, not per event: a batch is thousands of events.
        for (model, version), count in stored.items():
            outcome.stored += count
            m.events.labels("prediction", model, "stored").inc(count)
            m.serving_predictions.labels(model, version).inc(count)
            m.last_event_timestamp.labels(model).set(now.timestamp())
        for (model, version), count in errors.items():
            m.serving_errors.labels(model, version).inc(count)
        for model, count in duplicates.items():
            outcome.duplicates += count
            m.events.labels("prediction", model, "duplicate").inc(count)
        seen.clear()
        for label in labels:
            if label.event_id in new_labels and label.event_id not in seen:
                seen.add(label.event_id)
                outcome.stored += 1
                m.events.labels("label", label.model, "stored").inc()
            else:
                outcome.duplicates += 1
                m.events.labels("label", label.model, "duplicate").inc()
        for _record, error in dead:
            outcome.deadlettered[error.reason] += 1
            m.deadletters.labels(error.reason).inc()
        if dead:
            logger.info("events dead-lettered", extra={"count": len(dead)})

    def _update_lag(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        try:
            for tp in consumer.assignment():
                highwater = consumer.highwater(tp)
                position = consumer.position(tp, timeout_ms=100) if highwater is not None else None
                if highwater is not None and position is not None:
                    lag = max(highwater - position, 0)
                    self._metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
        except KafkaError:
            logger.debug("lag not available", exc_info=True)
