"""The schema v1 codec: every dead-letter reason, round trips, and properties over any input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import EventDecodeError
from collector.events import (
    DEAD_LETTER_REASONS,
    LABEL_SCHEMA,
    MAX_EVENT_BYTES,
    PREDICTION_SCHEMA,
    LabelEvent,
    PredictionEvent,
    decode_event,
    encode_event,
    new_event_id,
)

VALID = {
    "schema": "driftline.prediction/v1", "event_id": "0f9c", "model": "fraud",
    "model_version": "7", "timestamp": "2026-11-24T10:00:00.123Z", "request_id": "r-81",
    "features": {"amount": 12.5, "country": "DE", "flag": True, "missing": None},
    "prediction": 0.93, "tags": {"region": "eu"}, "latency_ms": 4.5,
}
LABEL = {"schema": "driftline.label/v1", "event_id": "7a1e", "model": "fraud",
         "request_id": "r-81", "timestamp": "2026-11-26T08:00:00Z", "label": 1}
DOCS = Path(__file__).resolve().parents[3] / "docs"
SCHEMA_FILE = DOCS / "events.schema.json"


def _with(base: dict[str, Any] = VALID, **changes: object) -> bytes:
    body = dict(base)
    for key, value in changes.items():
        if value is KeyError:
            body.pop(key)
        else:
            body[key] = value
    return json.dumps(body).encode()


def _label(**changes: object) -> bytes:
    return _with(LABEL, **changes)


def _raw_number(token: bytes, **where: object) -> bytes:
    """A valid event with the placeholder "X" replaced by a raw JSON token such as NaN."""
    return _with(VALID, **where).replace(b'"X"', token)


def test_design_examples_decode() -> None:
    event = decode_event(json.dumps(VALID).encode())
    assert event == PredictionEvent(
        event_id="0f9c", model="fraud", timestamp=datetime(2026, 11, 24, 10, 0, 0, 123000, UTC),
        features={"amount": 12.5, "country": "DE", "flag": True, "missing": None},
        prediction=0.93, model_version="7", request_id="r-81", tags={"region": "eu"},
        latency_ms=4.5)
    label = decode_event(json.dumps(LABEL).encode())
    assert label == LabelEvent("7a1e", "fraud", "r-81", datetime(2026, 11, 26, 8, 0, tzinfo=UTC), 1)


# One or more cases per dead-letter reason; test_every_reason_is_covered keeps the list whole.
BAD_EVENTS: list[tuple[str, bytes, str]] = [
    ("truncated JSON", b'{"schema": ', "invalid_json"),
    ("not JSON at all", b"hello", "invalid_json"),
    ("empty message", b"", "invalid_json"),
    ("trailing garbage", json.dumps(VALID).encode() + b"}", "invalid_json"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    ("latin-1 byte", b'{"schema": "driftline.prediction/v1", "model": "\xff"}', "invalid_utf8"),
    ("UTF-16", json.dumps(VALID).encode("utf-16"), "invalid_utf8"),
    ("lone surrogate escape", _with(model="\ud800"), "invalid_utf8"),
    ("lone surrogate in a feature name", _with(features={"\udc00": 1}), "invalid_utf8"),
    ("array", b"[1, 2]", "not_an_object"),
    ("string", b'"driftline.prediction/v1"', "not_an_object"),
    ("number", b"42", "not_an_object"),
    ("null", b"null", "not_an_object"),
    ("next version", _with(schema="driftline.prediction/v2"), "unknown_schema"),
    ("other system", _with(schema="seldon.inference/v2"), "unknown_schema"),
    ("schema not a string", _with(schema=1), "unknown_schema"),
    ("no schema", _with(schema=KeyError), "missing_field"),
    ("no event_id", _with(event_id=KeyError), "missing_field"),
    ("null event_id", _with(event_id=None), "missing_field"),
    ("no model", _with(model=KeyError), "missing_field"),
    ("no timestamp", _with(timestamp=KeyError), "missing_field"),
    ("no features", _with(features=KeyError), "missing_field"),
    ("no prediction", _with(prediction=KeyError), "missing_field"),
    ("label without request_id", _label(request_id=KeyError), "missing_field"),
    ("label without label", _label(label=KeyError), "missing_field"),
    ("null label", _label(label=None), "missing_field"),
    ("model a number", _with(model=7), "wrong_type"),
    ("event_id a list", _with(event_id=["a"]), "wrong_type"),
    ("features a list", _with(features=[1, 2]), "wrong_type"),
    ("nested feature", _with(features={"a": {"nested": 1}}), "wrong_type"),
    ("feature a list", _with(features={"a": [1]}), "wrong_type"),
    ("prediction an object", _with(prediction={"p": 1}), "wrong_type"),
    ("nested prediction list", _with(prediction=[[0.1, 0.9]]), "wrong_type"),
    ("latency a string", _with(latency_ms="fast"), "wrong_type"),
    ("latency a boolean", _with(latency_ms=True), "wrong_type"),
    ("tag not a string", _with(tags={"a": 1}), "wrong_type"),
    ("tags a list", _with(tags=[]), "wrong_type"),
    ("tags false", _with(tags=False), "wrong_type"),
    ("timestamp a number", _with(timestamp=1764000000), "wrong_type"),
    ("label a list", _label(label=[1]), "wrong_type"),
    ("model_version a boolean", _with(model_version=True), "wrong_type"),
    ("NaN feature", _raw_number(b"NaN", features={"a": "X"}), "non_finite"),
    ("Infinity prediction", _raw_number(b"Infinity", prediction="X"), "non_finite"),
    ("-Infinity latency", _raw_number(b"-Infinity", latency_ms="X"), "non_finite"),
    ("1e999 feature", _raw_number(b"1e999", features={"a": "X"}), "non_finite"),
    ("-1e999 in a prediction list", _raw_number(b"-1e999", prediction=[0.5, "X"]), "non_finite"),
    ("NaN label", _label(label="X").replace(b'"X"', b"NaN"), "non_finite"),
    ("integer beyond a double", _with(features={"a": 10**400}), "non_finite"),
    ("unparseable timestamp", _with(timestamp="yesterday"), "invalid_value"),
    ("timestamp without timezone", _with(timestamp="2026-11-24T10:00:00"), "invalid_value"),
    ("date only", _with(timestamp="2026-11-24"), "invalid_value"),
    ("month 13", _with(timestamp="2026-13-01T00:00:00Z"), "invalid_value"),
    ("before year 1 in UTC", _with(timestamp="0001-01-01T00:00:00+01:00"), "invalid_value"),
    ("after year 9999 in UTC", _with(timestamp="9999-12-31T23:59:59-01:00"), "invalid_value"),
    ("negative latency", _with(latency_ms=-1), "invalid_value"),
    ("empty event_id", _with(event_id=""), "invalid_value"),
    ("over-long model", _with(model="m" * 201), "invalid_value"),
    ("empty request_id", _label(request_id=""), "invalid_value"),
    ("prediction list too long", _with(prediction=[0.0] * 1001), "invalid_value"),
]


@pytest.mark.parametrize(("raw", "reason"), [pytest.param(raw, reason, id=name)
                                             for name, raw, reason in BAD_EVENTS])
def test_every_bad_event_has_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode_event(raw)
    assert caught.value.reason == reason
    assert str(caught.value)  # a message for the driftline.error.message header


def test_every_reason_is_covered() -> None:
    covered = {reason for _name, _raw, reason in BAD_EVENTS} | {"oversized"}
    assert covered == set(DEAD_LETTER_REASONS)


def test_no_value_is_a_missing_field() -> None:
    with pytest.raises(EventDecodeError, match="no value") as caught:
        decode_event(None)
    assert caught.value.reason == "missing_field"


def test_oversized_is_checked_before_parsing() -> None:
    # Not even JSON: the size check alone decides.
    with pytest.raises(EventDecodeError, match="101 bytes exceeds 100") as caught:
        decode_event(b"\xff" * 101, max_bytes=100)
    assert caught.value.reason == "oversized"


def test_oversized_default_is_one_mebibyte() -> None:
    padding = MAX_EVENT_BYTES - len(_with(features={"pad": ""}))
    at_limit = _with(features={"pad": "x" * padding})
    assert len(at_limit) == MAX_EVENT_BYTES
    assert isinstance(decode_event(at_limit), PredictionEvent)
    with pytest.raises(EventDecodeError) as caught:
        decode_event(_with(features={"pad": "x" * (padding + 1)}))
    assert caught.value.reason == "oversized"


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-24T10:00:00Z", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
    ("2026-11-24T10:00:00.5z", datetime(2026, 11, 24, 10, 0, 0, 500000, tzinfo=UTC)),
    ("2026-11-24T12:00:00+02:00", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
    ("2026-11-24 05:30:00-04:30", datetime(2026, 11, 24, 10, 0, tzinfo=UTC)),
])
def test_timestamps_are_normalised_to_utc(text: str, expected: datetime) -> None:
    event = decode_event(_with(timestamp=text))
    assert event.timestamp == expected
    assert event.timestamp.tzinfo is UTC


def test_optional_fields_may_be_absent_or_null() -> None:
    bare = decode_event(_with(model_version=KeyError, request_id=KeyError, tags=None,
                              latency_ms=None))
    assert isinstance(bare, PredictionEvent)
    assert (bare.model_version, bare.request_id, bare.tags, bare.latency_ms) == (None, None, {},
                                                                                 None)


def test_integer_model_version_is_kept_as_text() -> None:
    event = decode_event(_with(model_version=7))
    assert isinstance(event, PredictionEvent)
    assert event.model_version == "7"


def test_prediction_may_be_a_list_of_class_scores() -> None:
    event = decode_event(_with(prediction=[0.1, 0.9]))
    assert isinstance(event, PredictionEvent)
    assert event.prediction == [0.1, 0.9]


def test_encode_is_compact_utf8_json_without_empty_optionals() -> None:
    event = PredictionEvent("e1", "fraud", datetime(2026, 11, 24, 10, 0, 0, 123456, UTC),
                            {"city": "Zürich"}, 1)
    raw = encode_event(event)
    body = json.loads(raw.decode("utf-8"))
    assert body == {"schema": PREDICTION_SCHEMA, "event_id": "e1", "model": "fraud",
                    "timestamp": "2026-11-24T10:00:00.123Z", "features": {"city": "Zürich"},
                    "prediction": 1}
    assert b" " not in raw


def test_encode_converts_other_offsets_to_utc() -> None:
    east = timezone(timedelta(hours=5, minutes=30))
    event = LabelEvent("e1", "m", "r1", datetime(2026, 11, 24, 15, 30, tzinfo=east), "fraud")
    assert json.loads(encode_event(event))["timestamp"] == "2026-11-24T10:00:00.000Z"
    assert json.loads(encode_event(event))["schema"] == LABEL_SCHEMA


@pytest.mark.parametrize(("value", "reason"), [
    (float("nan"), "non_finite"), (float("-inf"), "non_finite"), (object(), "wrong_type"),
])
def test_encode_refuses_what_json_cannot_carry(value: object, reason: str) -> None:
    event = PredictionEvent("e", "m", datetime.now(UTC), {"x": value}, 1.0)  # type: ignore[dict-item]
    with pytest.raises(EventDecodeError) as caught:
        encode_event(event)
    assert caught.value.reason == reason


def test_new_event_ids_are_unique_hex() -> None:
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_json_schema_file_agrees_with_the_codec() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    kinds = {"prediction": (VALID, PREDICTION_SCHEMA), "label": (LABEL, LABEL_SCHEMA)}
    for kind, (example, schema_name) in kinds.items():
        definition = schema["$defs"][kind]
        assert definition["properties"]["schema"]["const"] == schema_name
        assert set(definition["properties"]) == set(example) | (
            {"model_version", "request_id", "tags", "latency_ms"} & set(definition["properties"]))
        # What the schema requires is exactly what the codec refuses to go without.
        for field in example:
            required = field in definition["required"]
            if required:
                with pytest.raises(EventDecodeError) as caught:
                    decode_event(_with(example, **{field: KeyError}))
                assert caught.value.reason == "missing_field", field
            else:
                decode_event(_with(example, **{field: KeyError}))


def _table_keys(markdown: str, heading: str) -> set[str]:
    """The backticked first cells of the first table after `heading`."""
    lines = markdown.split(heading, 1)[1].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return {row.split("`")[1] for row in table if row.startswith("| `")}


def test_docs_list_every_reason_and_header() -> None:
    markdown = (DOCS / "events.md").read_text(encoding="utf-8")
    assert _table_keys(markdown, "## What is rejected: dead letters") == set(DEAD_LETTER_REASONS)
    from types import SimpleNamespace

    from collector.ingest import deadletter_headers
    from collector.sidecar import DROP_REASONS

    record = SimpleNamespace(topic="driftline.predictions", partition=2, offset=41)
    written = deadletter_headers(record, EventDecodeError("non_finite", "features.a is NaN"))
    assert dict(written)["driftline.source.offset"] == b"41"
    assert _table_keys(markdown, "A dead letter carries these headers") == {
        name for name, _value in written} | {"driftline.error.truncated"}

    assert _table_keys(markdown, "**Nothing is raised; everything is counted.**") == \
        set(DROP_REASONS)


# -- properties --------------------------------------------------------------------------------
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(st.none(), st.booleans(), st.text(max_size=20),
                    st.integers(-(2**63), 2**63), finite_floats)
ids = st.text(min_size=1, max_size=200).filter(lambda s: s.isprintable())
# The wire format keeps milliseconds: draw timestamps that survive it exactly.
# (hypothesis takes naive bounds and attaches the timezone itself)
timestamps = st.datetimes(min_value=datetime(1970, 1, 1),  # noqa: DTZ001
                          max_value=datetime(2100, 1, 1),  # noqa: DTZ001
                          timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


@settings(max_examples=300)
@given(event_id=ids, model=ids, timestamp=timestamps,
       features=st.dictionaries(st.text(max_size=30), scalars, max_size=12),
       prediction=st.one_of(scalars, st.lists(scalars, max_size=10)),
       model_version=st.none() | ids, request_id=st.none() | ids,
       tags=st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4),
       latency_ms=st.none() | st.floats(min_value=0, allow_infinity=False))
def test_prediction_round_trip(event_id: str, model: str, timestamp: datetime,
                               features: dict[str, Any], prediction: Any,
                               model_version: str | None, request_id: str | None,
                               tags: dict[str, str], latency_ms: float | None) -> None:
    event = PredictionEvent(event_id, model, timestamp, features, prediction, model_version,
                            request_id, tags, latency_ms)
    assert decode_event(encode_event(event)) == event


@given(event_id=ids, model=ids, request_id=ids, timestamp=timestamps,
       label=st.one_of(st.booleans(), st.text(max_size=20), st.integers(), finite_floats))
def test_label_round_trip(event_id: str, model: str, request_id: str, timestamp: datetime,
                          label: Any) -> None:
    event = LabelEvent(event_id, model, request_id, timestamp, label)
    assert decode_event(encode_event(event)) == event


def _decode_or_reason(raw: bytes) -> PredictionEvent | LabelEvent | str:
    """The event, or the dead-letter reason; any other exception escapes and fails the test."""
    try:
        return decode_event(raw)
    except EventDecodeError as error:
        return error.reason


@settings(max_examples=500)
@given(raw=st.binary(max_size=300))
def test_any_bytes_decode_or_fail_with_a_reason(raw: bytes) -> None:
    outcome = _decode_or_reason(raw)
    assert not isinstance(outcome, str) or outcome in DEAD_LETTER_REASONS


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)


@settings(max_examples=500)
@given(kind=st.sampled_from([VALID, LABEL]), field=st.sampled_from(sorted(VALID)),
       value=json_values)
def test_any_json_in_any_field_decodes_or_fails_with_a_reason(
        kind: dict[str, Any], field: str, value: Any) -> None:
    # NaN and Infinity reach the wire too: json.dumps writes them unless told not to.
    outcome = _decode_or_reason(json.dumps({**kind, field: value}).encode())
    if isinstance(outcome, str):
        assert outcome in DEAD_LETTER_REASONS
    else:  # what is accepted survives a second trip through the codec unchanged
        assert decode_event(encode_event(outcome)) == outcome


@pytest.mark.parametrize(("raw", "reason"), [pytest.param(raw, reason, id=name)
                                             for name, raw, reason in BAD_EVENTS])
def test_ingest_parser_gives_the_same_reason(raw: bytes, reason: str) -> None:
    """Ingest parses with orjson; a refusal falls back to json to name the same reason."""
    import orjson

    with pytest.raises(EventDecodeError) as caught:
        decode_event(raw, loads=orjson.loads)
    assert caught.value.reason == reason


@settings(max_examples=500)
@given(kind=st.sampled_from([VALID, LABEL]), field=st.sampled_from(sorted(VALID)),
       value=json_values)
def test_ingest_parser_decodes_as_the_standard_library_does(
        kind: dict[str, Any], field: str, value: Any) -> None:
    import orjson

    raw = json.dumps({**kind, field: value}).encode()
    expected = _decode_or_reason(raw)
    try:
        outcome: Any = decode_event(raw, loads=orjson.loads)
    except EventDecodeError as error:
        outcome = error.reason
    try:
        same_values = orjson.loads(raw) == json.loads(raw)
    except (ValueError, TypeError):
        same_values = True  # one of them refuses: the reasons must agree
    if not same_values:
        return  # orjson reads integers beyond 64 bits as doubles (documented in docs/events.md)
    assert outcome == expected
