"""Schema v1 of prediction and label events, and its codec: the wire contract, written once.

The sidecar encodes with it and checks what it encodes with the same decoder the collector
runs on every message, so that the two sides cannot drift apart. Decoding is strict: every way
an event can be wrong maps to one dead-letter reason code, so that bad input becomes data (a
dead letter and a counter) instead of an exception in the consumer loop. The rules, in prose
and as JSON Schema, are in the driftline repository's docs/events.md.

Only the standard library: a model server installs this with kafka-python and nothing else.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args

from driftline_sidecar.errors import EventDecodeError

PREDICTION_SCHEMA: Final = "driftline.prediction/v1"
LABEL_SCHEMA: Final = "driftline.label/v1"
# The one size limit of the contract: the sidecar refuses to send and the collector dead-letters
# anything longer (its `kafka.max_event_bytes` defaults to this). A broker left at its default
# message.max.bytes (1,048,588, which also covers the record's key and framing) refuses values
# within a few dozen bytes of it; the sidecar counts those as encode errors too.
MAX_EVENT_BYTES: Final = 1024 * 1024

DeadLetterReason = Literal[
    "oversized",
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "unknown_schema",
    "missing_field",
    "wrong_type",
    "non_finite",
    "invalid_value",
]
DEAD_LETTER_REASONS: Final[tuple[DeadLetterReason, ...]] = get_args(DeadLetterReason)

Scalar = float | int | str | bool | None
_MAX_ID_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class PredictionEvent:
    """One served prediction, as logged by a sidecar."""

    event_id: str
    model: str
    timestamp: datetime
    features: Mapping[str, Scalar]
    prediction: Any
    model_version: str | None = None
    request_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    latency_ms: float | None = None


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """Ground truth for an earlier prediction, joined on model and request id."""

    event_id: str
    model: str
    request_id: str
    timestamp: datetime
    label: Scalar


Event = PredictionEvent | LabelEvent


def _reject_constant(name: str) -> float:
    # json.loads accepts NaN and Infinity, which are not JSON (RFC 8259 section 6).
    raise EventDecodeError("non_finite", f"non-finite number {name} is not allowed")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_finite(path: str, value: object) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise EventDecodeError("non_finite", f"{path} must be a finite number")
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError as exc:  # an integer no double can hold, like 1e999 written out
            raise EventDecodeError("non_finite", f"{path} is too large for a double") from exc


def _require(obj: Mapping[str, Any], key: str) -> Any:
    if key not in obj or obj[key] is None:
        raise EventDecodeError("missing_field", f"required field {key!r} is missing")
    return obj[key]


def _string(obj: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    if required:
        value = _require(obj, key)
    else:
        value = obj.get(key)
        if value is None:
            return None
    if isinstance(value, int) and not isinstance(value, bool) and key == "model_version":
        return str(value)
    if not isinstance(value, str):
        raise EventDecodeError("wrong_type", f"field {key!r} must be a string")
    if not value or len(value) > _MAX_ID_CHARS:
        raise EventDecodeError(
            "invalid_value", f"field {key!r} must be 1 to {_MAX_ID_CHARS} characters"
        )
    return value


def _scalar(path: str, value: object) -> Scalar:
    if value is None or isinstance(value, str | bool):
        return value  # type: ignore[return-value]
    if _is_number(value):
        _check_finite(path, value)
        return value  # type: ignore[return-value]
    raise EventDecodeError("wrong_type", f"{path} must be a number, string, boolean or null")


def _features(features: dict[str, Any]) -> dict[str, Any]:
    # The common case in one tight pass: every value a finite number, a string, a boolean
    # or null. Anything else takes the slow path, which names the offending feature.
    finite = math.isfinite
    for value in features.values():
        kind = value.__class__
        if kind is float:
            if not finite(value):
                break
        elif kind is str or kind is bool or value is None:
            continue
        elif kind is int:
            if value.bit_length() > 1000:
                break
        else:
            break
    else:
        return features
    return {str(name): _scalar(f"features.{name}", value) for name, value in features.items()}


def _timestamp(obj: Mapping[str, Any]) -> datetime:
    raw = _require(obj, "timestamp")
    if not isinstance(raw, str):
        raise EventDecodeError("wrong_type", "field 'timestamp' must be an ISO 8601 string")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise EventDecodeError("invalid_value", "field 'timestamp' is not ISO 8601") from exc
    if parsed.tzinfo is None:
        raise EventDecodeError("invalid_value", "field 'timestamp' must carry a timezone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00 falls before year 1 in UTC
        raise EventDecodeError("invalid_value", "field 'timestamp' is out of range") from exc


def _prediction_value(value: object) -> Any:
    # A prediction is a scalar (score, class) or a flat list of scalars (class scores).
    if isinstance(value, list):
        if len(value) > 1000:
            raise EventDecodeError("invalid_value", "field 'prediction' has over 1000 items")
        return [_scalar(f"prediction[{i}]", item) for i, item in enumerate(value)]
    return _scalar("prediction", value)


def _decode_prediction(obj: Mapping[str, Any]) -> PredictionEvent:
    features = _require(obj, "features")
    if not isinstance(features, dict):
        raise EventDecodeError("wrong_type", "field 'features' must be an object")
    checked = _features(features)
    if "prediction" not in obj:
        raise EventDecodeError("missing_field", "required field 'prediction' is missing")
    tags = obj.get("tags")
    if tags is None:
        tags = {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise EventDecodeError("wrong_type", "field 'tags' must be an object of strings")
    latency = obj.get("latency_ms")
    if latency is not None:
        if not _is_number(latency):
            raise EventDecodeError("wrong_type", "field 'latency_ms' must be a number")
        _check_finite("latency_ms", latency)
        if latency < 0:
            raise EventDecodeError("invalid_value", "field 'latency_ms' must not be negative")
    return PredictionEvent(
        event_id=_string(obj, "event_id", required=True),  # type: ignore[arg-type]
        model=_string(obj, "model", required=True),  # type: ignore[arg-type]
        timestamp=_timestamp(obj),
        features=checked,
        prediction=_prediction_value(obj["prediction"]),
        model_version=_string(obj, "model_version", required=False),
        request_id=_string(obj, "request_id", required=False),
        tags=dict(tags),
        latency_ms=None if latency is None else float(latency),
    )


def _decode_label(obj: Mapping[str, Any]) -> LabelEvent:
    if "label" not in obj:
        raise EventDecodeError("missing_field", "required field 'label' is missing")
    label = _scalar("label", obj["label"])
    if label is None:
        raise EventDecodeError("missing_field", "required field 'label' is missing")
    return LabelEvent(
        event_id=_string(obj, "event_id", required=True),  # type: ignore[arg-type]
        model=_string(obj, "model", required=True),  # type: ignore[arg-type]
        request_id=_string(obj, "request_id", required=True),  # type: ignore[arg-type]
        timestamp=_timestamp(obj),
        label=label,
    )


def decode_event(raw: bytes | None, *, max_bytes: int = MAX_EVENT_BYTES,
                 loads: Callable[[bytes], Any] | None = None) -> Event:
    """Decode and validate one event from its wire bytes.

    Args:
        raw: The Kafka message value.
        max_bytes: Messages longer than this are rejected as ``oversized``.
        loads: A faster JSON parser of bytes (the collector passes ``orjson.loads``) that
            rejects what is not strict JSON; when it refuses a message, the standard
            library's parser decodes it again to name exactly what is wrong.

    Returns:
        The decoded prediction or label.

    Raises:
        EventDecodeError: With ``reason`` set to one of `DEAD_LETTER_REASONS`.

    Examples:
        >>> event = decode_event(b'{"schema": "driftline.label/v1", "event_id": "e1", '
        ...     b'"model": "fraud", "request_id": "r1", "timestamp": "2026-11-24T10:00:00Z", '
        ...     b'"label": 1}')
        >>> event.label, event.timestamp.isoformat()
        (1, '2026-11-24T10:00:00+00:00')
    """
    if raw is None:
        raise EventDecodeError("missing_field", "message has no value")
    if len(raw) > max_bytes:
        raise EventDecodeError("oversized", f"message of {len(raw)} bytes exceeds {max_bytes}")
    obj: Any = None
    if loads is not None:
        try:
            obj = loads(raw)
        except Exception:  # the standard library's parser below says precisely what is wrong
            obj = None
    if obj is None:
        obj = _parse(raw)
    if not isinstance(obj, dict):
        raise EventDecodeError("not_an_object", "message must be a JSON object")
    schema = obj.get("schema")
    if schema == PREDICTION_SCHEMA:
        return _decode_prediction(obj)
    if schema == LABEL_SCHEMA:
        return _decode_label(obj)
    if schema is None:
        raise EventDecodeError("missing_field", "required field 'schema' is missing")
    raise EventDecodeError("unknown_schema", "field 'schema' names no known schema")


def _parse(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventDecodeError("invalid_utf8", f"message is not UTF-8: {exc.reason}") from exc
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except EventDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        raise EventDecodeError("invalid_json", "message is not valid JSON") from exc
    if isinstance(obj, dict) and "\\u" in text:
        try:  # a \ud800 escape decodes to a lone surrogate, which no store can write as UTF-8
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EventDecodeError("invalid_utf8", "message escapes a lone surrogate") from exc
    return obj


def new_event_id() -> str:
    """A random (version 4) UUID as 32 hex digits, like ``uuid.uuid4().hex`` at a third of the cost.

    The sidecar stamps one on every event in the serving thread, hence the cheaper route.

    Examples:
        >>> import uuid
        >>> uuid.UUID(hex=new_event_id()).version
        4
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4 (RFC 9562 section 5.4)
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC variant
    return raw.hex()


def _wire_timestamp(moment: datetime) -> str:
    """`moment` as events carry it: UTC, milliseconds, ``Z``; naive times are taken as UTC.

    Examples:
        >>> _wire_timestamp(datetime(2026, 11, 24, 10, 0, 0, 123456, tzinfo=UTC))
        '2026-11-24T10:00:00.123Z'
    """
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prediction_to_dict(event: PredictionEvent) -> dict[str, Any]:
    """The JSON object of a prediction event, optional fields left out when empty."""
    body: dict[str, Any] = {
        "schema": PREDICTION_SCHEMA,
        "event_id": event.event_id,
        "model": event.model,
        "timestamp": _wire_timestamp(event.timestamp),
        "features": dict(event.features),
        "prediction": event.prediction,
    }
    if event.model_version is not None:
        body["model_version"] = event.model_version
    if event.request_id is not None:
        body["request_id"] = event.request_id
    if event.tags:
        body["tags"] = dict(event.tags)
    if event.latency_ms is not None:
        body["latency_ms"] = event.latency_ms
    return body


def label_to_dict(event: LabelEvent) -> dict[str, Any]:
    """The JSON object of a label event."""
    return {
        "schema": LABEL_SCHEMA,
        "event_id": event.event_id,
        "model": event.model,
        "request_id": event.request_id,
        "timestamp": _wire_timestamp(event.timestamp),
        "label": event.label,
    }


def encode_event(event: Event) -> bytes:
    """Serialise an event to its wire bytes (UTF-8 JSON, no NaN allowed).

    Examples:
        >>> from datetime import datetime, UTC
        >>> e = LabelEvent("e1", "fraud", "r1", datetime(2026, 11, 24, tzinfo=UTC), 1)
        >>> decode_event(encode_event(e)) == e
        True
    """
    body = prediction_to_dict(event) if isinstance(event, PredictionEvent) else label_to_dict(event)
    try:
        return json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except ValueError as exc:
        raise EventDecodeError("non_finite", "event holds a non-finite number") from exc
    except TypeError as exc:
        message = f"event holds a value JSON cannot encode: {exc}"
        raise EventDecodeError("wrong_type", message) from exc
