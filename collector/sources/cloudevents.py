"""`POST /v1/ingest/cloudevents`: KServe's and Seldon Core v1's HTTP payload loggers.

Neither logger retries (KServe pkg/logger/worker.go and Seldon executor/logger/worker.go only
log a failed send), so the endpoint answers fast, and it never acknowledges an event that is
not durable: each CloudEvent is written to its source's raw topic, the broker acknowledging
with acks=all, before the 200; when Kafka cannot take it the answer is 503 (the loggers drop
it, counted on their side as a failed send) and nothing is half-accepted. The bridge pairs the
raw topic's messages later (`collector.sources.bridge`).

Accepted: CloudEvents 1.0 over HTTP in binary mode (attributes as `ce-*` headers, the body as
sent, its `Content-Type` the data's), structured mode (`application/cloudevents+json`) and
batched mode (`application/cloudevents-batch+json`). The raw message has Seldon's Kafka logger
shape: the body as the value, each attribute as a header named by the attribute, `content-type`
for `datacontenttype`; its key is the request id, so the halves of a pair share a partition.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from kafka import KafkaProducer
from kafka.errors import KafkaConnectionError, KafkaError, MessageSizeTooLargeError
from prometheus_client import CollectorRegistry, Counter

from collector.config_sources import CloudEventsSource
from collector.reach import kafka_reachable
from collector.sources.logger import ROLES

logger = logging.getLogger(__name__)

STRUCTURED: Final = "application/cloudevents+json"
BATCH: Final = "application/cloudevents-batch+json"
_REQUIRED: Final = ("id", "type")
_MAX_ATTRIBUTE_CHARS: Final = 1000
OUTCOMES: Final = ("accepted", "rejected", "too_large", "unavailable")


class CloudEventError(ValueError):
    """An HTTP request that is not an acceptable CloudEvent; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RawEvent:
    """One CloudEvent as the raw topic stores it."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def _check(attributes: Mapping[str, str], value: bytes) -> RawEvent:
    for name in _REQUIRED:
        if not attributes.get(name):
            raise CloudEventError(f"the CloudEvent has no {name!r} attribute "
                                  f"(binary mode: header ce-{name})")
    if attributes["type"] not in ROLES:
        raise CloudEventError(f"CloudEvent type {attributes['type'][:100]!r} is not one driftline "
                              f"reads ({', '.join(sorted(ROLES))})")
    long = [n for n, v in attributes.items() if len(v) > _MAX_ATTRIBUTE_CHARS]
    if long:
        raise CloudEventError(f"attributes {sorted(long)} exceed {_MAX_ATTRIBUTE_CHARS} chars")
    key = attributes.get("requestid") or attributes["id"]
    headers = [(name, text.encode("utf-8")) for name, text in attributes.items()]
    return RawEvent(key.encode("utf-8"), value, headers)


def _binary(headers: Mapping[str, str], body: bytes) -> RawEvent:
    attributes: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("ce-") and len(lower) > 3:
            attributes[lower[3:]] = value
    content_type = headers.get("content-type")
    if content_type:
        attributes["content-type"] = content_type
    return _check(attributes, body)


def _structured(event: Any) -> RawEvent:
    if not isinstance(event, dict):
        raise CloudEventError("a structured CloudEvent must be a JSON object")
    attributes: dict[str, str] = {}
    for name, value in event.items():
        if name in ("data", "data_base64"):
            continue
        if name == "datacontenttype":
            attributes["content-type"] = str(value)
        elif isinstance(value, str | int | float | bool):
            attributes[name.lower()] = str(value).lower() if isinstance(value, bool) else str(value)
    if "data_base64" in event:
        try:
            value_bytes = base64.b64decode(str(event["data_base64"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CloudEventError("data_base64 is not base64") from exc
    elif isinstance(event.get("data"), str):
        value_bytes = event["data"].encode("utf-8")
    elif "data" in event:
        value_bytes = json.dumps(event["data"], separators=(",", ":")).encode("utf-8")
    else:
        value_bytes = b""
    attributes.setdefault("content-type", "application/json")
    return _check(attributes, value_bytes)


def parse_http(headers: Mapping[str, str], body: bytes) -> list[RawEvent]:
    """The CloudEvents one HTTP request carries (binary, structured or batched mode).

    Args:
        headers: The request's headers (any case).
        body: The request's body as received.

    Raises:
        CloudEventError: Saying what is missing or wrong (HTTP 400).

    Examples:
        >>> event = parse_http({"ce-id": "r1", "ce-specversion": "1.0",
        ...     "ce-type": "org.kubeflow.serving.inference.request", "ce-source": "http://x/",
        ...     "ce-inferenceservicename": "iris", "content-type": "application/json"},
        ...     b'{"instances": [[1, 2]]}')[0]
        >>> event.key, dict(event.headers)["inferenceservicename"]
        (b'r1', b'iris')
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type in (STRUCTURED, BATCH):
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise CloudEventError(f"the {content_type} body is not valid JSON") from exc
        if content_type == BATCH:
            if not isinstance(document, list):
                raise CloudEventError("a batch of CloudEvents must be a JSON array")
            return [_structured(event) for event in document]
        return [_structured(document)]
    return [_binary(lowered, body)]


class RawWriter:
    """Writes CloudEvents to raw topics and waits for the broker's acknowledgement (acks=all).

    The producer is created on first use and again after a failure, so that a broker that
    was down when the service started is used as soon as it is back. For `cooldown_seconds`
    after a failure, writes are refused at once (503) instead of each waiting its timeout:
    KServe's agent queues log requests in a channel of 100 that blocks the inference path when
    full, so a slow answer would slow the model server down.
    """

    def __init__(self, bootstrap_servers: str, *, max_event_bytes: int,
                 timeout_seconds: float, cooldown_seconds: float = 1.0) -> None:
        """Write to `bootstrap_servers`; events up to `max_event_bytes`."""
        self._servers = bootstrap_servers.split(",")
        self._max_bytes = max_event_bytes
        self._timeout = timeout_seconds
        self._cooldown = cooldown_seconds
        self._down_until = 0.0
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                # kafka-python clients that fail to bootstrap wait out their timeout and leak
                # their sockets: probe first (as ingest and the sidecar do).
                if not kafka_reachable(self._servers, timeout_seconds=min(self._timeout, 1.0)):
                    raise KafkaConnectionError(f"no bootstrap server answers: {self._servers}")
                timeout_ms = int(self._timeout * 1000)
                self._producer = KafkaProducer(
                    bootstrap_servers=self._servers, client_id="driftline-cloudevents",
                    acks="all", linger_ms=0, max_block_ms=timeout_ms,
                    request_timeout_ms=timeout_ms, bootstrap_timeout_ms=timeout_ms,
                    max_request_size=self._max_bytes + 64 * 1024,
                )
            return self._producer

    def _reset(self) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=1)
            except Exception:  # closing a broken client must not hide the first error
                logger.warning("cloudevents producer close failed", exc_info=True)

    def write(self, topic: str, events: Sequence[RawEvent]) -> None:
        """Write `events` to `topic`; returns once the broker holds every one.

        Raises:
            CloudEventError: 413 for an event over the size limit, 503 when Kafka cannot take
                the events now.
        """
        for event in events:
            if len(event.value) > self._max_bytes:
                raise CloudEventError(f"the event's body of {len(event.value)} bytes exceeds "
                                      f"{self._max_bytes} (sources[].max_event_bytes)", 413)
        if time.monotonic() < self._down_until:
            raise CloudEventError("Kafka was unreachable a moment ago; nothing was accepted", 503)
        try:
            producer = self._get()
            futures = [producer.send(topic, key=e.key, value=e.value, headers=e.headers)
                       for e in events]
            producer.flush(timeout=self._timeout)
            for future in futures:
                future.get(timeout=self._timeout)
        except MessageSizeTooLargeError as exc:
            raise CloudEventError("the broker refuses an event this large", 413) from exc
        except (KafkaError, OSError) as exc:
            logger.warning("cloudevent not written", extra={"topic": topic, "error": repr(exc)})
            self._down_until = time.monotonic() + self._cooldown
            self._reset()
            raise CloudEventError("Kafka cannot take the event now; nothing was accepted",
                                  503) from exc

    def close(self) -> None:
        """Close the producer, waiting a little for anything in flight."""
        self._reset()


def received_counter(registry: CollectorRegistry) -> Counter:
    """`driftline_sources_cloudevents_received_total{source, outcome}`, every series at 0."""
    return Counter("driftline_sources_cloudevents_received_total",
                   "CloudEvents posted to the endpoint, by source and outcome (accepted, "
                   "rejected, too_large, unavailable).", ["source", "outcome"], registry=registry)


def cloudevents_router(sources: Sequence[CloudEventsSource],
                       writers: Mapping[str, RawWriter], received: Counter) -> APIRouter:
    """The endpoint for the `cloudevents` sources, each writing with its `writers[name]`.

    `POST /v1/ingest/cloudevents/{source}` writes to that source's topic; the bare path is the
    one source when there is only one.
    """
    by_name = {source.name: source for source in sources}
    for name in by_name:
        for outcome in OUTCOMES:
            received.labels(name, outcome)
    router = APIRouter()

    async def _accept(name: str, request: Request) -> dict[str, Any]:
        source = by_name[name]
        try:
            declared = request.headers.get("content-length", "")
            length = int(declared) if declared.isdigit() else 0
            if length > source.max_event_bytes * 2:  # (a batch may hold a few events)
                raise CloudEventError(f"a body of {length} bytes exceeds the source's "
                                      "max_event_bytes", 413)
            body = await request.body()
            events = parse_http(request.headers, body)
            await run_in_threadpool(writers[name].write, source.topic, events)
        except CloudEventError as exc:
            outcome = {413: "too_large", 503: "unavailable"}.get(exc.status, "rejected")
            received.labels(name, outcome).inc()
            raise HTTPException(status_code=exc.status, detail=str(exc)) from exc
        received.labels(name, "accepted").inc(len(events))
        return {"accepted": len(events)}

    @router.post("/v1/ingest/cloudevents")
    async def ingest_default(request: Request) -> dict[str, Any]:
        """Accept a CloudEvent for the only `cloudevents` source."""
        if len(by_name) != 1:
            raise HTTPException(status_code=404, detail=(
                "several cloudevents sources are configured: post to "
                f"/v1/ingest/cloudevents/<source> with one of {sorted(by_name)}"))
        return await _accept(next(iter(by_name)), request)

    @router.post("/v1/ingest/cloudevents/{name}")
    async def ingest_named(name: str, request: Request) -> dict[str, Any]:
        """Accept a CloudEvent for the `cloudevents` source `name`."""
        if name not in by_name:
            raise HTTPException(status_code=404, detail=(
                f"no cloudevents source named {name!r} (configured: {sorted(by_name)})"))
        return await _accept(name, request)

    return router
