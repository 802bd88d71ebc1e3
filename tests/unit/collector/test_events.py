from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import EventDecodeError
from collector.events import (
    DEAD_LETTER_REASONS,
    LabelEvent,
    PredictionEvent,
    decode_event,
    encode_event,
)

VALID = {
    "schema": "driftline.prediction/v1", "event_id": "0f9c", "model": "fraud",
    "model_version": "7", "timestamp": "2026-11-24T10:00:00.123Z", "request_id": "r-81",
    "features": {"amount": 12.5, "country": "DE", "flag": True, "missing": None},
    "prediction": 0.93, "tags": {"region": "eu"}, "latency_ms": 4.5,
}


def _with(**changes: object) -> bytes:
    body = dict(VALID)
    for key, value in changes.items():
        if value is KeyError:
            body.pop(key)
        else:
            body[key] = value
    return json.dumps(body).encode()


def test_design_example_decodes() -> None:
    event = decode_event(json.dumps(VALID).encode())
    assert isinstance(event, PredictionEvent)
    assert event.timestamp == datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC)
    assert event.features["country"] == "DE"
    assert event.latency_ms == 4.5
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize(("raw", "reason"), [
    (b'{"schema": ', "invalid_json"),
    (b'{"schema": "driftline.prediction/v1", "model": "\xff"}', "invalid_utf8"),
    (b"[1, 2]", "not_an_object"),
    (_with(schema="driftline.prediction/v2"), "unknown_schema"),
    (_with(schema=KeyError), "missing_field"),
    (_with(event_id=KeyError), "missing_field"),
    (_with(model=KeyError), "missing_field"),
    (_with(timestamp=KeyError), "missing_field"),
    (_with(features=KeyError), "missing_field"),
    (_with(prediction=KeyError), "missing_field"),
    (_with(model=7), "wrong_type"),
    (_with(features=[1, 2]), "wrong_type"),
    (_with(features={"a": {"nested": 1}}), "wrong_type"),
    (_with(latency_ms="fast"), "wrong_type"),
    (_with(tags={"a": 1}), "wrong_type"),
    (_with(features={"a": "X"}).replace(b'"X"', b"NaN"), "non_finite"),
    (_with(prediction="X").replace(b'"X"', b"Infinity"), "non_finite"),
    (_with(features={"a": "X"}).replace(b'"X"', b"1e999"), "non_finite"),
    (_with(timestamp="yesterday"), "invalid_value"),
    (_with(timestamp="2026-11-24T10:00:00"), "invalid_value"),
    (_with(latency_ms=-1), "invalid_value"),
    (_with(event_id=""), "invalid_value"),
])
def test_every_bad_event_has_its_reason(raw: bytes, reason: str) -> None:
    assert reason in DEAD_LETTER_REASONS
    with pytest.raises(EventDecodeError) as caught:
        decode_event(raw)
    assert caught.value.reason == reason


def test_oversized_is_checked_before_parsing() -> None:
    with pytest.raises(EventDecodeError, match="exceeds 100") as caught:
        decode_event(b" " * 101, max_bytes=100)
    assert caught.value.reason == "oversized"


def test_label_requires_request_id_and_label() -> None:
    label = {"schema": "driftline.label/v1", "event_id": "e", "model": "m", "request_id": "r",
             "timestamp": "2026-11-26T08:00:00Z", "label": 1}
    assert isinstance(decode_event(json.dumps(label).encode()), LabelEvent)
    for key in ("request_id", "label"):
        body = {k: v for k, v in label.items() if k != key}
        with pytest.raises(EventDecodeError) as caught:
            decode_event(json.dumps(body).encode())
        assert caught.value.reason == "missing_field"


def test_encode_refuses_nan() -> None:
    event = PredictionEvent("e", "m", datetime.now(UTC), {"x": float("nan")}, 1.0)
    with pytest.raises(EventDecodeError, match="non-finite"):
        encode_event(event)


scalars = st.one_of(st.none(), st.booleans(), st.text(max_size=20),
                    st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False))


@given(features=st.dictionaries(st.text(min_size=1, max_size=10), scalars, max_size=8),
       prediction=scalars, model=st.text(alphabet="abcxyz-_.0123", min_size=1, max_size=30))
def test_round_trip(features: dict[str, object], prediction: object, model: str) -> None:
    event = PredictionEvent("id1", model, datetime(2026, 1, 1, 12, 0, 0, 5000, tzinfo=UTC),
                            features, prediction)  # type: ignore[arg-type]
    assert decode_event(encode_event(event)) == event
