"""Decoder of KServe's and Seldon Core v1's payload-logger messages, as Kafka records.

Seldon Core v1's logger, sending straight to Kafka (`LOGGER_KAFKA_BROKER`/`LOGGER_KAFKA_TOPIC`
on the SeldonDeployment's `svcOrchSpec`), writes the raw payload as the value, no key, and the
CloudEvent attributes as headers (seldon-core executor/logger/worker.go): `type`,
`content-type`, `modelid`, `requestid`, `inferenceservicename`, `namespace`, `endpoint`,
`protocol`. The CloudEvents endpoint (`collector.sources.cloudevents`) writes what KServe's and
Seldon's HTTP loggers post in the same shape: the body as the value, each attribute as a header
named by the attribute (`id`, `type`, `source`, `time`, the extensions) and `content-type`
for `datacontenttype`. So one decoder reads both.

Pairing: KServe gives a request and its response the same CloudEvent `id` (the inference
request's own `Ce-Id` header when the caller sent one, else a new UUID); Seldon gives each
message its own `id` and the inference's `requestid` (the `Seldon-Puid`). The pairing key is
`requestid`, else `id`, with the model and the graph node (Seldon `modelid`) or component
(KServe `component`), so that the nodes of one inference graph pair separately. The request id
stored is the same, except that a KServe `metadata` extension carrying an `X-Request-Id`
header (the InferenceService's `logger.metadataHeaders`) gives that id, which the caller knows.

Types: `org.kubeflow.serving.inference.request|response`, `io.seldon.serving.inference.
request|response` and `io.seldon.serving.feedback` (a feedback's `truth` becomes labels).

Examples:
    >>> from types import SimpleNamespace
    >>> record = SimpleNamespace(topic="t", partition=0, offset=0, timestamp=0, key=None,
    ...     value=b'{"instances": [[1, 2]]}', headers=[
    ...         ("type", b"org.kubeflow.serving.inference.request"), ("id", b"r1"),
    ...         ("inferenceservicename", b"iris"), ("content-type", b"application/json")])
    >>> part = LoggerDecoder("kserve").decode(record)[0]
    >>> part.role, part.protocol, part.model, part.request_id
    ('request', 'v1', 'iris', 'r1')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from collector.config_sources import CloudEventsSource, SeldonKafkaLoggerSource
from collector.errors import EventDecodeError
from collector.sources.base import Part, PartRole

ROLES: Final[Mapping[str, PartRole]] = {
    "org.kubeflow.serving.inference.request": "request",
    "org.kubeflow.serving.inference.response": "response",
    "io.seldon.serving.inference.request": "request",
    "io.seldon.serving.inference.response": "response",
    "io.seldon.serving.feedback": "feedback",
    "org.kubeflow.serving.feedback": "feedback",
}
# Seldon's `protocol` extension (the SeldonDeployment's spec.protocol) -> payloads' protocol.
_PROTOCOLS: Final = {"seldon": "seldon", "tensorflow": "v1", "kfserving": "v2", "v2": "v2",
                     "v1": "v1", "mlflow": "mlflow"}
_MAX_HEADER_CHARS: Final = 1000


def record_headers(record: Any) -> dict[str, str]:
    """A record's headers as text, names lowercased (the first of a repeated name wins).

    Raises:
        EventDecodeError: ``invalid_utf8`` for a header value that is not UTF-8.
    """
    headers: dict[str, str] = {}
    for name, value in record.headers or ():
        key = str(name).lower()
        if key in headers:
            continue
        try:
            text = bytes(value or b"").decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventDecodeError("invalid_utf8", f"header {key!r} is not UTF-8") from exc
        headers[key] = text[:_MAX_HEADER_CHARS]
    return headers


def metadata_request_id(metadata: str | None) -> str | None:
    """The `X-Request-Id` a KServe `metadata` extension carries (JSON of header -> values).

    Examples:
        >>> metadata_request_id('{"X-Request-Id": ["order-81"], "User-Agent": ["curl"]}')
        'order-81'
        >>> metadata_request_id("not json") is None
        True
    """
    if not metadata:
        return None
    try:
        headers = json.loads(metadata)
    except ValueError:
        return None
    if not isinstance(headers, dict):
        return None
    for name, values in headers.items():
        if str(name).lower() == "x-request-id":
            value = values[0] if isinstance(values, list) and values else values
            return value if isinstance(value, str) and value else None
    return None


def sniff_protocol(body: Any, role: PartRole) -> str:
    """The payload protocol a JSON body's shape says, for loggers that do not name it.

    Examples:
        >>> sniff_protocol({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
        ...                 "data": [1]}]}, "request")
        'v2'
        >>> sniff_protocol({"data": {"ndarray": [[1]]}}, "request")
        'seldon'
        >>> sniff_protocol({"predictions": [1]}, "response")
        'v1'
    """
    if not isinstance(body, Mapping):
        return "v1" if isinstance(body, list) else "seldon"
    tensors = body.get("inputs" if role == "request" else "outputs")
    if isinstance(tensors, list) and tensors and all(
            isinstance(t, Mapping) and "name" in t and ("data" in t or "datatype" in t)
            for t in tensors):
        return "v2"
    if any(key in body for key in ("data", "jsonData", "strData", "binData")):
        return "seldon"
    if any(key in body for key in ("dataframe_split", "dataframe_records")):
        return "mlflow"
    return "v1"


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time (a CloudEvent's `time`) as aware UTC; None when absent or unreadable.

    Go writes up to nine fractional digits, which `datetime` does not read: they are cut to six.

    Examples:
        >>> parse_time("2020-07-14T19:51:55.897123716Z").isoformat()
        '2020-07-14T19:51:55.897123+00:00'
    """
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def record_time(record: Any) -> datetime | None:
    """The Kafka record's own timestamp (milliseconds since the epoch) as aware UTC."""
    stamp = getattr(record, "timestamp", None)
    if not isinstance(stamp, int) or stamp < 0:
        return None
    return datetime.fromtimestamp(stamp / 1000, tz=UTC)


def json_body(raw: bytes | None, content_type: str) -> Any:
    """The JSON a logged body holds.

    Raises:
        EventDecodeError: For a protobuf or other non-JSON body, or JSON that does not parse.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and kind != "application/json" and not kind.endswith("+json") and kind != "text/plain":
        # Seldon's gRPC endpoints log protobuf bodies: driftline reads the JSON (REST) ones.
        raise EventDecodeError("unsupported_content_type", f"content type {kind!r} is not "
                                                           "JSON (log the REST endpoint)")
    if raw is None or not raw:
        raise EventDecodeError("missing_field", "the logged message has no body")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise EventDecodeError("invalid_utf8", "the logged body is not UTF-8") from exc
    except (ValueError, RecursionError) as exc:
        raise EventDecodeError("invalid_json", "the logged body is not valid JSON") from exc


class LoggerDecoder:
    """Decodes one source's CloudEvent-shaped records (see the module docstring)."""

    def __init__(self, name: str, topics: list[str] | None = None, *,
                 protocol: str = "auto", node_models: frozenset[str] = frozenset()) -> None:
        """Read `topics` for the source `name`; `protocol` when the message does not say.

        `node_models`: the `"<inferenceservicename>/<modelid or component>"` names the source
        maps, so that the nodes of one Seldon graph, or a KServe transformer and predictor, can
        be different driftline models.
        """
        self.name = name
        self._topics = list(topics or [])
        self._protocol = protocol
        self._node_models = node_models

    def topics(self) -> list[str]:
        """The topics this source's messages arrive on."""
        return list(self._topics)

    def decode(self, record: Any) -> list[Part]:
        """The one Part a logger message carries.

        Raises:
            EventDecodeError: For an unknown type, no request id, or a body that is not JSON.
        """
        headers = record_headers(record)
        kind = headers.get("type") or headers.get("ce-type")
        if not kind:
            raise EventDecodeError("missing_field", "the message has no 'type' header")
        role = ROLES.get(kind)
        if role is None:
            raise EventDecodeError("invalid_value", f"type {kind[:100]!r} is not an inference "
                                                    "request, response or feedback")
        request_id = headers.get("requestid") or headers.get("id")
        if not request_id:
            raise EventDecodeError("missing_field", "the message has no 'requestid' or 'id'")
        body = json_body(record.value, headers.get("content-type", ""))
        protocol = _PROTOCOLS.get(headers.get("protocol", "").lower(), "")
        if role == "feedback":
            protocol = "seldon"  # Seldon's Feedback message: request, response, reward, truth
        elif not protocol:
            protocol = (self._protocol if self._protocol != "auto"
                        else sniff_protocol(body, role))
        model = headers.get("inferenceservicename") or headers.get("modelid") or None
        node = headers.get("modelid") or headers.get("component") or ""
        if f"{model}/{node}" in self._node_models:
            model = f"{model}/{node}"
        stored_id = metadata_request_id(headers.get("metadata")) or request_id
        return [Part(
            key=f"{model or ''}\x1f{node}\x1f{request_id}",
            role=role,
            protocol=protocol,
            body=body,
            model=model,
            version=None,
            at=parse_time(headers.get("time")) or record_time(record),
            request_id=stored_id,
            # The serving endpoint (KServe: default or canary; Seldon: the predictor) is a
            # segment worth comparing (segments.by: [tags.endpoint]).
            tags={"endpoint": headers["endpoint"]} if headers.get("endpoint") else {},
        )]


def decoder_for(settings: CloudEventsSource | SeldonKafkaLoggerSource) -> LoggerDecoder:
    """The decoder of a `cloudevents` or `seldon_kafka_logger` source.

    With a `pairing_topic`, the decoder reads that topic, and the bridge forwards the logger
    topics' messages to it keyed by `pairing_key`.
    """
    nodes = frozenset(name for name in settings.models if "/" in name)
    topics = settings.kafka_topics()
    if isinstance(settings, SeldonKafkaLoggerSource) and settings.pairing_topic:
        topics = [settings.pairing_topic]
    return LoggerDecoder(settings.name, topics, protocol=settings.protocol, node_models=nodes)


def pairing_key(record: Any) -> bytes | None:
    """The key a logger message is forwarded under: its request id, so halves share a partition.

    Examples:
        >>> from types import SimpleNamespace
        >>> pairing_key(SimpleNamespace(headers=[("type", b"t"), ("requestid", b"p-1")]))
        b'p-1'
    """
    for name, value in record.headers or ():
        if str(name).lower() in ("requestid", "ce-requestid") and value:
            return bytes(value)
    for name, value in record.headers or ():
        if str(name).lower() in ("id", "ce-id") and value:
            return bytes(value)
    return None
