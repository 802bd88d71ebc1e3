"""Decoders of the Open Inference Protocol on Kafka: MLServer's Kafka server and Seldon Core v2.

**MLServer** (its Kafka server, `kafka_enabled: true`; mlserver/kafka/{server,handlers}.py,
checked by running MLServer 1.7.1) reads inference requests from its input topic
(`mlserver-input`) and writes responses to its output topic (`mlserver-output`):

- request: value the OIP JSON inference request (the REST body); header `mlserver-model`
  (required: without it MLServer answers nothing) and `mlserver-version` (optional). The
  message key, when set, replaces the body's `id`; with neither, MLServer invents an id that
  no request carries, so such a request cannot be paired and is refused here.
- response: value the OIP JSON inference response (`model_name`, `model_version`, `id`,
  `outputs`), key the response id (= the request's), headers `Ce-*` (CloudEvents 0.3:
  `Ce-Id`, `Ce-Requestid`, `Ce-Modelid`, ...) and not the request's headers. A failed
  inference writes nothing, so its request waits and expires in the bridge.

**Seldon Core v2** (scheduler/pkg/kafka/gateway/worker.go) reads
`<prefix>.<namespace>.model.<name>.inputs` and writes the model server's answer to
`....outputs` with the input's key and headers. Values are protobuf `ModelInferRequest` /
`ModelInferResponse` (the gRPC messages, read by `collector.sources.oip_proto`) or, with
header `seldon-infer-type: json/...` (or a body that starts with `{`), the OIP JSON. A value
framed for a schema registry (magic byte 0, 4-byte schema id, message indexes) is unframed
first. Pairing key: the message key, else the `x-request-id` header, else the body's `id`;
the stored request id prefers `x-request-id` (Seldon >= 2.10 keys messages by
`<partition>.<model>.<request id>`).

Both give `Part`s of protocol "v2" whose body is the OIP JSON shape, so
`driftline_sidecar.payloads` parses JSON and protobuf alike; Kafka record timestamps are the
parts' times. Anything unreadable raises `EventDecodeError` (dead-lettered by the bridge).

Examples:
    >>> from types import SimpleNamespace
    >>> decoder = MLServerKafkaDecoder("mlserver")
    >>> record = SimpleNamespace(topic="mlserver-input", key=b"r1", timestamp=0,
    ...     headers=[("mlserver-model", b"iris")], value=b'{"inputs": [{"name": "x",'
    ...     b' "datatype": "FP64", "shape": [1, 2], "data": [5.1, 3.5]}]}')
    >>> part = decoder.decode(record)[0]
    >>> part.key, part.role, part.model, part.body["id"]
    ('r1', 'request', 'iris', 'r1')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from collector.config_sources import MLServerKafkaSource, SeldonV2Source
from collector.errors import EventDecodeError
from collector.sources.base import Part, PartRole
from collector.sources.logger import record_headers, record_time
from collector.sources.oip_proto import (
    ProtobufDecodeError,
    decode_infer_request,
    decode_infer_response,
)

__all__ = ["MLServerKafkaDecoder", "SeldonV2Decoder", "unframe_schema_registry"]

MODEL_HEADER: Final = "mlserver-model"
VERSION_HEADER: Final = "mlserver-version"
SELDON_TYPE_HEADER: Final = "seldon-infer-type"
REQUEST_ID_HEADER: Final = "x-request-id"
_MAX_KEY_CHARS: Final = 500


def _key(record: Any) -> str | None:
    """The record's key as text; None when it has none (or an empty one)."""
    key = record.key
    if not key:
        return None
    try:
        text = bytes(key).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventDecodeError("invalid_utf8", "the message key is not UTF-8") from exc
    if len(text) > _MAX_KEY_CHARS:
        raise EventDecodeError("invalid_value", f"the message key is over {_MAX_KEY_CHARS} "
                                                "characters")
    return text


def _value(record: Any) -> bytes:
    value = record.value
    if not value:
        raise EventDecodeError("missing_field", "the message has no value")
    return bytes(value)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise EventDecodeError("invalid_utf8", f"the {what} is not UTF-8") from exc
    except (ValueError, RecursionError) as exc:
        raise EventDecodeError("invalid_json", f"the {what} is not valid JSON") from exc
    if not isinstance(body, dict):
        raise EventDecodeError("not_an_object", f"the {what} is not a JSON object")
    return body


def _body_str(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if isinstance(value, int) and not isinstance(value, bool) and field == "model_version":
        return str(value)
    return value if isinstance(value, str) and value else None


class MLServerKafkaDecoder:
    """Decodes MLServer's Kafka server's input and output topics (see the module docstring)."""

    def __init__(self, name: str, *, input_topic: str = "mlserver-input",
                 output_topic: str = "mlserver-output") -> None:
        """Read `input_topic` (requests) and `output_topic` (responses) for source `name`."""
        if input_topic == output_topic:
            raise ValueError(f"input_topic and output_topic must differ, both are "
                             f"{input_topic!r}")
        self.name = name
        self._roles: dict[str, PartRole] = {input_topic: "request", output_topic: "response"}

    @classmethod
    def from_settings(cls, settings: MLServerKafkaSource) -> MLServerKafkaDecoder:
        """The decoder of a configured `mlserver_kafka` source."""
        return cls(settings.name, input_topic=settings.input_topic,
                   output_topic=settings.output_topic)

    def topics(self) -> list[str]:
        """The input and output topics."""
        return list(self._roles)

    def decode(self, record: Any) -> list[Part]:
        """The request or response one MLServer message carries.

        Raises:
            EventDecodeError: For a value that is not a JSON object, a request without
                `mlserver-model`, or a message without a key or id to pair it by.
        """
        role = self._roles.get(record.topic)
        if role is None:
            raise EventDecodeError("invalid_value", f"topic {record.topic!r} is not read by "
                                                    f"source {self.name!r}")
        headers = record_headers(record)
        body = _json_object(_value(record), f"MLServer {role}")
        key = _key(record)
        if role == "request":
            model = headers.get(MODEL_HEADER) or None
            if model is None:
                raise EventDecodeError("missing_field", f"the request has no {MODEL_HEADER!r} "
                                                        "header (MLServer ignores it too)")
            if key is not None:
                body = {**body, "id": key}  # as MLServer does: the key replaces the body's id
            else:
                key = _body_str(body, "id")
            version = headers.get(VERSION_HEADER) or None
        else:
            key = key or _body_str(body, "id")
            model = _body_str(body, "model_name") or headers.get("ce-modelid") or None
            version = _body_str(body, "model_version")
        if key is None:
            raise EventDecodeError("missing_field", f"the {role} has neither a key nor an 'id' "
                                                    "to pair it by")
        return [Part(key=key, role=role, protocol="v2", body=body, model=model,
                     version=version, at=record_time(record))]


def unframe_schema_registry(value: bytes) -> bytes:
    r"""A protobuf value without the schema registry's framing (when it has one).

    The framing (Confluent's wire format, which Seldon's dataflow engine writes when a schema
    registry is configured): magic byte 0, the schema id as 4 big-endian bytes, then the
    message's indexes in its schema as zigzag varints (a count, then the indexes; a lone 0
    means the first message). No protobuf message starts with byte 0 (field number 0 does not
    exist), so an unframed value is returned as is.

    Examples:
        >>> unframe_schema_registry(b"\x00\x00\x00\x00\x07\x00\x1a\x02r1")
        b'\x1a\x02r1'
        >>> unframe_schema_registry(b"\x1a\x02r1")
        b'\x1a\x02r1'
    """
    if not value or value[0] != 0:
        return value
    if len(value) < 6:
        raise EventDecodeError("invalid_value", "a schema-registry framed value is truncated")
    pos = 5
    count, pos = _zigzag(value, pos)
    for _ in range(count):
        _, pos = _zigzag(value, pos)
    return value[pos:]


def _zigzag(value: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while pos < len(value) and shift < 35:
        byte = value[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
    raise EventDecodeError("invalid_value", "bad message indexes in a schema-registry frame")


class SeldonV2Decoder:
    """Decodes Seldon Core v2's model inputs and outputs topics (see the module docstring)."""

    def __init__(self, name: str, models: list[str], *, namespace: str = "default",
                 topic_prefix: str = "seldon") -> None:
        """Read the topics of the Seldon `models` in `namespace` for source `name`."""
        if not models:
            raise ValueError("give at least one Seldon model name")
        self.name = name
        base = f"{topic_prefix}.{namespace}.model"
        self._topics: dict[str, tuple[str, PartRole]] = {}
        for model in models:
            self._topics[f"{base}.{model}.inputs"] = (model, "request")
            self._topics[f"{base}.{model}.outputs"] = (model, "response")

    @classmethod
    def from_settings(cls, settings: SeldonV2Source) -> SeldonV2Decoder:
        """The decoder of a configured `seldon_v2` source."""
        return cls(settings.name, list(settings.seldon_models), namespace=settings.namespace,
                   topic_prefix=settings.topic_prefix)

    def topics(self) -> list[str]:
        """`<prefix>.<namespace>.model.<name>.inputs|outputs` of each model."""
        return list(self._topics)

    def decode(self, record: Any) -> list[Part]:
        """The request or response one Seldon model-topic message carries.

        Raises:
            EventDecodeError: For a value that is neither a readable ModelInferRequest /
                ModelInferResponse nor an OIP JSON object, or one with nothing to pair it by.
        """
        topic = self._topics.get(record.topic)
        if topic is None:
            raise EventDecodeError("invalid_value", f"topic {record.topic!r} is not read by "
                                                    f"source {self.name!r}")
        model, role = topic
        headers = record_headers(record)
        body = self._body(_value(record), role, headers.get(SELDON_TYPE_HEADER, ""))
        request_id = headers.get(REQUEST_ID_HEADER) or _body_str(body, "id")
        key = _key(record) or request_id
        if key is None:
            raise EventDecodeError("missing_field", f"the {role} has no key, no "
                                                    f"{REQUEST_ID_HEADER!r} and no 'id'")
        return [Part(key=key, role=role, protocol="v2", body=body, model=model,
                     version=_body_str(body, "model_version"), at=record_time(record),
                     request_id=request_id if request_id != key else None)]

    @staticmethod
    def _body(raw: bytes, role: PartRole, infer_type: str) -> dict[str, Any]:
        """The OIP JSON body of a value, whichever form it travels in."""
        kind = infer_type.strip()
        is_json = kind.startswith("json/") or (not kind and raw.lstrip()[:1] == b"{")
        # The gateway copies the input's headers to the output, so on an outputs topic the
        # header tells the form (JSON in, JSON out) and the topic tells the message. A response
        # on an inputs topic is a pipeline step's answer fed to the next model (the gateway
        # turns its outputs into the request's inputs).
        as_response = role == "response" or kind.endswith("Response")
        if is_json:
            body = _json_object(raw, f"Seldon {role}")
        else:
            try:
                message = unframe_schema_registry(raw)
                body = (decode_infer_response(message) if as_response
                        else decode_infer_request(message))
            except ProtobufDecodeError as exc:
                message_type = "ModelInferResponse" if as_response else "ModelInferRequest"
                raise EventDecodeError("invalid_value", f"the value is not a protobuf "
                                                        f"{message_type}: {exc}") from exc
        if role == "request" and as_response:
            chained = {k: v for k, v in body.items() if k not in ("outputs", "model_name",
                                                                  "model_version")}
            chained["inputs"] = body.get("outputs", [])
            return chained
        return body
