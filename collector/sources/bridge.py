"""The sources bridge: model servers' own logger messages in, driftline events out.

It consumes the topics of every configured source (the CloudEvents endpoint's raw topic, Seldon
Core v1's Kafka logger topics, MLServer's and Seldon Core v2's topics), decodes each message
into Parts with its source's decoder, pairs requests with responses (`Pairer`), and produces
one prediction event per request row to `kafka.predictions_topic`, and Seldon feedback truths
as label events to `kafka.labels_topic`; the collector's ingest stores them like any other,
idempotent on event_id. A message no decoder can read, or a half whose payload cannot become
events, goes to `kafka.deadletter_topic` with its bytes, its own headers, and the
`driftline.error.*` / `driftline.source.*` headers of ingest's dead letters.

Offsets: each partition is committed only up to its oldest message still needed (a half
waiting for its partner, a message whose events the broker has not yet acknowledged), so a
crash loses nothing; what is read again makes the same event ids. A half that waited
`pairing_timeout_seconds` is counted (`driftline_sources_pairs_total{outcome="unpaired_*"}`)
and given up, which lets its partition's commit move on.

The halves of one inference must reach the same bridge process: the CloudEvents endpoint keys
its raw messages by request id (one partition per pair), but Seldon's Kafka logger writes
without a key. For such a source with a `pairing_topic`, the bridge first forwards each logger
message there (value and headers unchanged) keyed by its request id, committing the logger
topic once the copy is acknowledged, and pairs from the pairing topic; without one, run a
single bridge process for it, or halves read by different processes are counted unpaired.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from collector.config import KafkaSettings
from collector.config_sources import SeldonKafkaLoggerSource, SourceSettings
from collector.errors import EventDecodeError
from collector.events import LabelEvent, PredictionEvent
from collector.ingest import (
    close_clients,
    connect_clients,
    deadletter_headers,
    send_deadletter,
)
from collector.sources.base import Part, SourceDecoder
from collector.sources.convert import PartError, SourceContext
from collector.sources.logger import pairing_key, record_time
from collector.sources.metrics import SourceMetrics
from collector.sources.pairing import Held, OffsetBook, Pairer, Position
from collector.sources.registry import build_decoders

logger = logging.getLogger(__name__)

_MAX_BACKOFF_SECONDS = 30.0
_SEND_TIMEOUT_SECONDS = 30.0
_TOPIC_WAIT_SECONDS = 10.0


@dataclass
class _Source:
    settings: SourceSettings
    decoder: SourceDecoder
    context: SourceContext
    pairer: Pairer
    forward_to: str | None = None  # the pairing topic the unkeyed logger topics are copied to


@dataclass
class _Work:
    """What one batch produces, and the offsets it may release once that is durable."""

    predictions: list[tuple[_Source, PredictionEvent, bytes]] = field(default_factory=list)
    labels: list[tuple[_Source, LabelEvent, bytes]] = field(default_factory=list)
    dead: list[tuple[_Source, Any, str, str]] = field(default_factory=list)
    forwards: list[tuple[_Source, Any]] = field(default_factory=list)
    releases: list[tuple[TopicPartition, int]] = field(default_factory=list)


@dataclass
class BridgeOutcome:
    """Counts of one batch, for logs and tests."""

    predictions: int = 0
    labels: int = 0
    deadlettered: int = 0
    forwarded: int = 0


def _tp(position: Position) -> TopicPartition:
    return TopicPartition(position[0], position[1])


class Bridge:
    """The sources' consumer loop; `run(stop)` blocks until `stop` is set."""

    def __init__(
        self,
        kafka: KafkaSettings,
        sources: Sequence[SourceSettings],
        metrics: SourceMetrics,
        *,
        model_features: Mapping[str, Sequence[str]] | None = None,
        decoders: Sequence[SourceDecoder] | None = None,
        group_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_timeout_ms: int = 500,
    ) -> None:
        """Bridge `sources` (decoded by `decoders`, by default the registry's) to `kafka`."""
        self._kafka = kafka
        self._metrics = metrics
        self._clock = clock
        self._poll_timeout_ms = poll_timeout_ms
        self.group_id = group_id or f"{kafka.group_id}.sources"
        built = list(decoders) if decoders is not None else build_decoders(sources)
        features = model_features or {}
        self._sources = [
            _Source(s, d, SourceContext(s, features),
                    Pairer(timeout_seconds=s.pairing_timeout_seconds, max_pending=s.max_pending))
            for s, d in zip(sources, built, strict=True)
        ]
        self._by_topic: dict[str, _Source] = {}
        self._forwarded: dict[str, _Source] = {}
        for source in self._sources:
            for topic in source.decoder.topics():
                self._by_topic[topic] = source
            settings = source.settings
            if isinstance(settings, SeldonKafkaLoggerSource) and settings.pairing_topic:
                source.forward_to = settings.pairing_topic
                for topic in settings.topics:
                    self._forwarded[topic] = source
        metrics.init_sources(s.settings.name for s in self._sources)
        self._book: OffsetBook[TopicPartition] = OffsetBook()
        self._records: dict[Position, Any] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self.batches = 0

    # -- connection -----------------------------------------------------------------------------
    def _connect(self) -> None:
        consumer, producer = connect_clients(
            self._kafka, group_id=self.group_id, client_id="driftline-sources",
            producer_client_id="driftline-sources", metadata_max_age_ms=10_000)
        # A group leader that assigns before it has a new topic's metadata leaves that topic
        # out until the next metadata refresh: wait (a little) until every topic is known.
        deadline = time.monotonic() + _TOPIC_WAIT_SECONDS
        topics = sorted({*self._by_topic, *self._forwarded})
        while time.monotonic() < deadline and any(
                not consumer.partitions_for_topic(topic) for topic in topics):
            time.sleep(0.2)
        consumer.subscribe(topics)
        self._consumer, self._producer = consumer, producer
        self._metrics.kafka_up.set(1)
        logger.info("sources bridge connected", extra={"topics": topics})

    def _disconnect(self) -> None:
        close_clients(self._consumer, self._producer, "sources")
        self._consumer, self._producer = None, None
        self._forget_all()

    def _forget_all(self) -> None:
        """Drop every half and offset: the next consumer reads from the committed offsets."""
        for source in self._sources:
            source.pairer.clear()
            self._metrics.pending.labels(source.settings.name).set(0)
        self._book = OffsetBook()
        self._records.clear()
        self._committed.clear()

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
                    logger.warning("sources: kafka unreachable, retrying",
                                   extra={"error": repr(exc), "retry_in": backoff})
                    stop.wait(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
                    continue
            consumer = self._consumer
            if consumer is None:
                continue
            try:
                batch = consumer.poll(timeout_ms=self._poll_timeout_ms,
                                      max_records=self._kafka.max_poll_records)
                self.process(batch)
                backoff = 0.5
            except (KafkaError, OSError) as exc:
                self._metrics.kafka_up.set(0)
                logger.warning("sources: batch not done, reading again from the committed "
                               "offsets", extra={"error": repr(exc)})
                self._disconnect()
                stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
            except Exception:  # a bug must not end the thread silently: log, read again later
                logger.exception("sources: batch failed, reading again from the committed "
                                 "offsets")
                self._disconnect()
                stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_SECONDS)
        self._disconnect()
        logger.info("sources bridge stopped")

    def process(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> BridgeOutcome:
        """Read one polled batch, give up halves past their wait, produce, then commit.

        Raises:
            KafkaError: When the events or dead letters cannot be made durable (nothing of the
                batch is committed then).
        """
        now = self._clock()
        work = _Work()
        self._drop_revoked()
        for tp, records in batch.items():
            for record in records:
                self._book.hold(tp, record.offset)
                work.releases.append((tp, record.offset))
                self._read(record, now, work)
        self._expire(now, work)
        outcome = self._produce(work)
        for tp, offset in work.releases:
            self._book.release(tp, offset)
        self._commit()
        for source in self._sources:
            self._metrics.pending.labels(source.settings.name).set(len(source.pairer))
        self.batches += 1
        return outcome

    # -- reading --------------------------------------------------------------------------------
    def _read(self, record: Any, now: float, work: _Work) -> None:
        forwarding = self._forwarded.get(record.topic)
        if forwarding is not None:  # an unkeyed logger message: copied, keyed, paired later
            work.forwards.append((forwarding, record))
            return
        source = self._by_topic.get(record.topic)
        if source is None:  # a topic no source reads (not subscribed): nothing to do
            return
        try:
            parts = source.decoder.decode(record)
        except EventDecodeError as exc:
            work.dead.append((source, record, exc.reason, str(exc)))
            return
        except Exception as exc:  # a decoder bug must not stop the partition: dead-letter it
            logger.exception("source decoder failed", extra={"source": source.settings.name})
            work.dead.append((source, record, "decoder_error", repr(exc)[:500]))
            return
        self._metrics.messages.labels(source.settings.name, "decoded").inc()
        for part in parts:
            if part.role == "feedback":
                self._feedback(source, record, part, work)
            else:
                self._pair(source, record, part, now, work)

    def _feedback(self, source: _Source, record: Any, part: Part, work: _Work) -> None:
        name = source.settings.name
        try:
            labels = source.context.encoded_labels(part)
        except PartError as exc:
            work.dead.append((source, record, exc.reason, str(exc)))
            return
        except Exception as exc:  # a parser bug: a dead letter, not a crash
            logger.exception("source feedback not converted", extra={"source": name})
            work.dead.append((source, record, "convert_error", repr(exc)[:500]))
            return
        self._metrics.feedback.labels(name, "labelled" if labels else "no_truth").inc()
        work.labels.extend((source, label, value) for label, value in labels)

    def _pair(self, source: _Source, record: Any, part: Part, now: float, work: _Work) -> None:
        name = source.settings.name
        position: Position = (record.topic, record.partition, record.offset)
        offer = source.pairer.offer(part, position, now=now)
        if offer.status == "waiting":
            self._book.hold(_tp(position), record.offset)
            self._records[position] = record
            return
        if offer.status == "duplicate":
            self._metrics.pairs.labels(name, "duplicate").inc()
            return
        request, response = offer.request, offer.response
        if request is None or response is None:
            return
        partner = response if part.role == "request" else request
        partner_record = self._records.pop(partner.position, None)
        work.releases.append((_tp(partner.position), partner.position[2]))
        self._metrics.pairs.labels(name, "paired").inc()
        try:
            events = source.context.encoded_predictions(request.part, response.part,
                                                        fallback_at=record_time(record))
        except PartError as exc:
            bad = record if exc.part is part else partner_record
            if bad is not None:
                work.dead.append((source, bad, exc.reason, str(exc)))
            return
        except Exception as exc:  # a parser bug: both halves become dead letters, not a crash
            logger.exception("source pair not converted", extra={"source": name})
            for bad in (record, partner_record):
                if bad is not None:
                    work.dead.append((source, bad, "convert_error", repr(exc)[:500]))
            return
        work.predictions.extend((source, event, value) for event, value in events)

    def _expire(self, now: float, work: _Work) -> None:
        for source in self._sources:
            for held in source.pairer.expire(now=now):
                self._give_up(source, held, work)

    def _give_up(self, source: _Source, held: Held, work: _Work) -> None:
        name = source.settings.name
        role = held.part.role
        self._metrics.pairs.labels(name, f"unpaired_{role}").inc()
        record = self._records.pop(held.position, None)
        work.releases.append((_tp(held.position), held.position[2]))
        if role != "request" or source.settings.unpaired_requests != "store":
            return
        try:
            events = source.context.encoded_predictions(
                held.part, None, fallback_at=record_time(record) if record else None)
        except PartError as exc:
            if record is not None:
                work.dead.append((source, record, exc.reason, str(exc)))
            return
        except Exception as exc:  # a parser bug: a dead letter, not a crash
            logger.exception("source request not converted", extra={"source": name})
            if record is not None:
                work.dead.append((source, record, "convert_error", repr(exc)[:500]))
            return
        work.predictions.extend((source, event, value) for event, value in events)

    def _drop_revoked(self) -> None:
        """Forget what was read from partitions this process no longer owns."""
        if self._consumer is None:
            return
        assigned = self._consumer.assignment()
        gone = [tp for tp in self._book.partitions() if tp not in assigned]
        if not gone:
            return
        for tp in gone:
            self._book.forget(tp)
            self._committed.pop(tp, None)
        for source in self._sources:
            for held in source.pairer.drop(lambda position: _tp(position) not in assigned):
                self._records.pop(held.position, None)
        logger.info("sources: partitions revoked", extra={"partitions": [str(t) for t in gone]})

    # -- writing --------------------------------------------------------------------------------
    def _produce(self, work: _Work) -> BridgeOutcome:
        outcome = BridgeOutcome()
        if not (work.predictions or work.labels or work.dead or work.forwards):
            return outcome
        producer = self._producer
        if producer is None:
            raise KafkaError("no producer")
        futures = []
        for _, prediction, value in work.predictions:
            futures.append(producer.send(self._kafka.predictions_topic,
                                         key=prediction.model.encode(), value=value))
        for _, label, value in work.labels:
            futures.append(producer.send(self._kafka.labels_topic, key=label.model.encode(),
                                         value=value))
        for source, record, reason, message in work.dead:
            futures.append(self._send_deadletter(producer, source, record, reason, message))
        for source, record in work.forwards:
            futures.append(producer.send(source.forward_to or "", key=pairing_key(record),
                                         value=record.value, headers=list(record.headers or [])))
        producer.flush(timeout=_SEND_TIMEOUT_SECONDS)
        for future in futures:
            future.get(timeout=_SEND_TIMEOUT_SECONDS)  # raises if it did not reach the broker
        m = self._metrics
        for source, _, _ in work.predictions:
            m.events.labels(source.settings.name, "prediction").inc()
        for source, _, _ in work.labels:
            m.events.labels(source.settings.name, "label").inc()
        for source, _ in work.forwards:
            m.messages.labels(source.settings.name, "forwarded").inc()
        for source, _, reason, _ in work.dead:
            m.deadletters.labels(source.settings.name, reason).inc()
            m.messages.labels(source.settings.name, "deadlettered").inc()
        outcome.predictions, outcome.labels = len(work.predictions), len(work.labels)
        outcome.deadlettered = len(work.dead)
        outcome.forwarded = len(work.forwards)
        if work.dead:
            logger.info("source messages dead-lettered", extra={"count": len(work.dead)})
        return outcome

    def _send_deadletter(self, producer: KafkaProducer, source: _Source, record: Any,
                         reason: str, message: str) -> Any:
        headers = list(record.headers or [])
        headers.extend(deadletter_headers(record, EventDecodeError(reason, message)))
        headers.append(("driftline.source.name", source.settings.name.encode()))
        return send_deadletter(producer, self._kafka.deadletter_topic, record, headers)

    def _commit(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp in self._book.partitions():
            position = self._book.committable(tp)
            if position is not None and position > self._committed.get(tp, -1):
                offsets[tp] = OffsetAndMetadata(position, "", -1)
        if not offsets:
            return
        try:
            consumer.commit(offsets=offsets)
        except KafkaError:
            # A rebalance took partitions away: their next owner reads from the last commit.
            logger.warning("sources: commit failed", exc_info=True)
            return
        self._committed.update({tp: o.offset for tp, o in offsets.items()})
