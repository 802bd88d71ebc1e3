"""Columnar micro-batches of prediction events: the store's encoding of raw events.

A batch holds the predictions of one model from one ingest batch as an Apache Arrow IPC
file (zstd-compressed), so that a window is read as columns instead of being rebuilt from
one JSON document per event. Each feature is one column, typed when its values agree
(bool, int64, float64, string) and JSON text when they do not, so that what the window
reads back is what the events carried: ints stay ints, a number sent as text stays text,
and a key an event lacked is told from a null (an `absent` column, only when needed).

Columns (names are prefixed so no feature name can collide with the event's own fields):
    `_event_id`, `_request_id`, `_event_at` (timestamp, microseconds, UTC),
    `_version`, `_prediction`, `_tags` (JSON text or null), `_latency_ms`,
    `f:<feature>` per feature, and `a:<feature>` (True where the event lacked the key).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from collector.events import PredictionEvent

FEATURE = "f:"
ABSENT = "a:"
_JSON = {b"driftline.encoding": b"json"}
_WRITE_OPTIONS = ipc.IpcWriteOptions(compression="zstd")
_INT64_SAFE = 2**63
_FLOAT_EXACT = 2**53


def event_key(event_id: str) -> bytes:
    """The 16-byte key an event id is deduplicated by (BLAKE2b; ids are up to 200 chars)."""
    return hashlib.blake2b(event_id.encode("utf-8"), digest_size=16).digest()


def request_key(model: str, request_id: str) -> int:
    """A signed 64-bit key of (model, request id): finds a prediction's time from its label."""
    digest = hashlib.blake2b(f"{model}\x00{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _column(values: list[Any]) -> tuple[pa.Array, bool]:
    """An Arrow array for one column's values (None = null), and whether it is JSON text."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.nulls(len(values), pa.null()), False
    if kinds == {float}:
        return pa.array(values, pa.float64()), False
    if kinds == {bool}:
        return pa.array(values, pa.bool_()), False
    if kinds == {str}:
        return pa.array(values, pa.string()), False
    if kinds == {int} and all(-_INT64_SAFE <= v < _INT64_SAFE for v in values if v is not None):
        return pa.array(values, pa.int64()), False
    if kinds <= {int, float} and all(isinstance(v, float) or abs(v) <= _FLOAT_EXACT
                                     for v in values if v is not None):
        return pa.array(values, pa.float64()), False
    return pa.array([None if v is None else _dumps(v) for v in values], pa.string()), True


def encode(events: Sequence[PredictionEvent]) -> bytes:
    """One batch's Arrow IPC bytes (the events in their order)."""
    n = len(events)
    # One pass gathers every feature's column; a slot left at _Missing was absent.
    gathered: dict[str, list[Any]] = {}
    for i, event in enumerate(events):
        for name, value in event.features.items():
            column = gathered.get(name)
            if column is None:
                column = gathered[name] = [_Missing] * n
            column[i] = value
    fields: list[pa.Field] = []
    arrays: list[pa.Array] = []

    def add(name: str, values: list[Any], *, json_only: bool = False) -> None:
        if json_only:
            array = pa.array([None if v is None else _dumps(v) for v in values], pa.string())
            is_json = True
        else:
            array, is_json = _column(values)
        fields.append(pa.field(name, array.type, metadata=_JSON if is_json else None))
        arrays.append(array)

    fields.append(pa.field("_event_id", pa.string()))
    arrays.append(pa.array([e.event_id for e in events], pa.string()))
    fields.append(pa.field("_request_id", pa.string()))
    arrays.append(pa.array([e.request_id for e in events], pa.string()))
    fields.append(pa.field("_event_at", pa.timestamp("us", tz="UTC")))
    arrays.append(pa.array([e.timestamp for e in events], pa.timestamp("us", tz="UTC")))
    fields.append(pa.field("_version", pa.string()))
    arrays.append(pa.array([e.model_version for e in events], pa.string()))
    add("_prediction", [e.prediction for e in events])
    add("_tags", [dict(e.tags) if e.tags else None for e in events], json_only=True)
    fields.append(pa.field("_latency_ms", pa.float64()))
    arrays.append(pa.array([e.latency_ms for e in events], pa.float64()))
    for name, values in gathered.items():
        if _Missing in values:
            absent = [v is _Missing for v in values]
            add(FEATURE + name, [None if v is _Missing else v for v in values])
            fields.append(pa.field(ABSENT + name, pa.bool_()))
            arrays.append(pa.array(absent, pa.bool_()))
        else:
            add(FEATURE + name, values)
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    assert table.num_rows == n
    sink = io.BytesIO()
    with ipc.new_file(sink, table.schema, options=_WRITE_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue()


class _MissingType:
    __slots__ = ()


_Missing = _MissingType()


def read_table(payload: bytes, columns: Iterable[str] | None = None) -> pa.Table:
    """The batch as an Arrow table, all columns or the named ones that it has."""
    reader = ipc.open_file(pa.BufferReader(payload))
    if columns is None:
        return reader.read_all()
    wanted = [c for c in columns if reader.schema.get_field_index(c) >= 0]
    # Reading record batches whole decompresses every column; selecting first does not.
    batches = [reader.get_batch(i).select(wanted) for i in range(reader.num_record_batches)]
    schema = pa.schema([reader.schema.field(c) for c in wanted])
    return pa.Table.from_batches(batches, schema=schema)


def _values(table: pa.Table, name: str) -> Any:
    """A column as pandas-ready values: JSON text decoded, nulls as None or NaN."""
    field = table.schema.field(name)
    column = table.column(name)
    if field.metadata and field.metadata.get(b"driftline.encoding") == b"json":
        out = np.empty(len(column), dtype=object)
        out[:] = [None if v is None else json.loads(v) for v in column.to_pylist()]
        return out
    if pa.types.is_null(field.type):
        out = np.empty(len(column), dtype=object)
        out[:] = None
        return out
    return column.to_pandas()


@dataclass(frozen=True)
class Columns:
    """The decoded columns of one or more batches, oldest event first."""

    features: pd.DataFrame
    absent: Mapping[str, np.ndarray[Any, np.dtype[np.bool_]]]
    event_ids: list[str]
    request_ids: list[str | None]
    event_at: pd.DatetimeIndex
    versions: list[str | None]
    predictions: list[Any]
    tags: list[Mapping[str, str]]

    @property
    def n(self) -> int:
        """Number of events."""
        return len(self.event_at)


def decode(table: pa.Table, *, event_ids: bool = True) -> Columns:
    """A batch table's events as columns (see `concat` for several batches).

    Typed feature columns convert to pandas in one call; JSON and all-null ones one by one.
    Without `event_ids` that column is left out (a window does not need it).
    """
    n = table.num_rows
    feature_columns = [c for c in table.column_names if c.startswith(FEATURE)]
    typed = [c for c in feature_columns
             if not _is_json(table.schema.field(c)) and not pa.types.is_null(
                 table.schema.field(c).type)]
    if typed:
        frame = table.select(typed).to_pandas()
        frame.index = pd.RangeIndex(n)
    else:
        frame = pd.DataFrame(index=pd.RangeIndex(n))
    for column in feature_columns:
        if column not in frame.columns:
            frame[column] = _values(table, column)
    features = frame[feature_columns] if list(frame.columns) != feature_columns else frame
    features.columns = pd.Index([c[len(FEATURE):] for c in feature_columns], dtype=object)
    absent = {c[len(FEATURE):]: table.column(ABSENT + c[len(FEATURE):]).to_numpy(
        zero_copy_only=False).astype(bool)
        for c in feature_columns if ABSENT + c[len(FEATURE):] in table.column_names}
    tags_column = table.column("_tags")
    if tags_column.null_count == n:
        tags: list[Mapping[str, str]] = [{} for _ in range(n)]
    else:
        tags = [json.loads(t) if t is not None else {} for t in tags_column.to_pylist()]
    return Columns(
        features=features, absent=absent,
        event_ids=table.column("_event_id").to_pylist() if event_ids else [],
        request_ids=table.column("_request_id").to_pylist(),
        event_at=pd.DatetimeIndex(table.column("_event_at").to_pandas()),
        versions=table.column("_version").to_pylist(),
        predictions=_plain(_values(table, "_prediction")),
        tags=tags,
    )


def decode_all(payloads: Sequence[bytes], *, event_ids: bool = True) -> Columns:
    """Several batches' events as columns, in order.

    Batches of one schema are joined as Arrow tables first, so each column converts once.
    """
    tables = [read_table(p) for p in payloads]
    groups: list[list[pa.Table]] = []
    for table in tables:
        if groups and groups[-1][0].schema.equals(table.schema, check_metadata=True):
            groups[-1].append(table)
        else:
            groups.append([table])
    return concat([decode(pa.concat_tables(g) if len(g) > 1 else g[0], event_ids=event_ids)
                   for g in groups])


def _plain(values: Any) -> list[Any]:
    """Python scalars (not numpy ones), None for missing, as the JSON rows gave them."""
    if isinstance(values, pd.Series):
        if values.dtype.kind in "fiub":
            return [None if v != v else v for v in values.tolist()]  # NaN is a null
        return [None if v is None or (isinstance(v, float) and v != v) else v
                for v in values.tolist()]
    return list(values)


def concat(parts: Sequence[Columns]) -> Columns:
    """Several batches' columns as one, in order (features missing from a batch are absent)."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Columns(pd.DataFrame(), {}, [], [], pd.DatetimeIndex([], tz="UTC"), [], [], [])
    sizes = [p.n for p in parts]
    total = sum(sizes)
    frames = [p.features for p in parts]
    features = pd.concat(frames, ignore_index=True, sort=False) if frames else pd.DataFrame()
    absent: dict[str, np.ndarray[Any, np.dtype[np.bool_]]] = {}
    for name in features.columns:
        pieces = []
        any_absent = False
        for part in parts:
            if name in part.absent:
                pieces.append(part.absent[name])
                any_absent = any_absent or bool(part.absent[name].any())
            elif name in part.features.columns:
                pieces.append(np.zeros(part.n, bool))
            else:
                pieces.append(np.ones(part.n, bool))
                any_absent = any_absent or part.n > 0
        if any_absent:
            absent[str(name)] = np.concatenate(pieces) if pieces else np.zeros(total, bool)
    return Columns(
        features=features, absent=absent,
        event_ids=[i for p in parts for i in p.event_ids],
        request_ids=[r for p in parts for r in p.request_ids],
        event_at=pd.DatetimeIndex(np.concatenate(
            [p.event_at.tz_convert(None).to_numpy() for p in parts])).tz_localize("UTC"),
        versions=[v for p in parts for v in p.versions],
        predictions=[v for p in parts for v in p.predictions],
        tags=[t for p in parts for t in p.tags],
    )


def _is_json(field: pa.Field) -> bool:
    return bool(field.metadata) and field.metadata.get(b"driftline.encoding") == b"json"


def _python_values(table: pa.Table, name: str) -> list[Any]:
    field = table.schema.field(name)
    values = table.column(name).to_pylist()
    if field.metadata and field.metadata.get(b"driftline.encoding") == b"json":
        return [None if v is None else json.loads(v) for v in values]
    return list(values)


def merge(payloads: Sequence[bytes]) -> bytes:
    """Several batches of one model as one batch, their events in order (compaction).

    A column with one type and encoding in every batch is concatenated as it is; others
    are re-typed over all their values, as `encode` would type them. A feature a batch
    lacks is absent in its rows.
    """
    tables = [read_table(p) for p in payloads]
    sizes = [t.num_rows for t in tables]
    names: dict[str, None] = {}
    for table in tables:
        for name in table.column_names:
            if not name.startswith(ABSENT):
                names.setdefault(name, None)
    fields: list[pa.Field] = []
    arrays: list[Any] = []
    for name in names:
        present = [t for t in tables if name in t.column_names]
        kinds = {(str(t.schema.field(name).type), _is_json(t.schema.field(name)))
                 for t in present}
        if len(present) == len(tables) and len(kinds) == 1:
            fields.append(tables[0].schema.field(name))
            arrays.append(pa.chunked_array([t.column(name).combine_chunks() for t in tables]))
        else:
            values: list[Any] = []
            for table, size in zip(tables, sizes, strict=True):
                values.extend(_python_values(table, name) if name in table.column_names
                              else [None] * size)
            array, is_json = (_column(values) if name not in ("_tags",) else
                              (pa.array([None if v is None else _dumps(v) for v in values],
                                        pa.string()), True))
            fields.append(pa.field(name, array.type, metadata=_JSON if is_json else None))
            arrays.append(array)
        if name.startswith(FEATURE):
            feature = name[len(FEATURE):]
            flags = [t.column(ABSENT + feature).to_pylist() if ABSENT + feature in t.column_names
                     else [name not in t.column_names] * size
                     for t, size in zip(tables, sizes, strict=True)]
            if any(any(f) for f in flags):
                fields.append(pa.field(ABSENT + feature, pa.bool_()))
                arrays.append(pa.array([v for f in flags for v in f], pa.bool_()))
    merged = pa.Table.from_arrays(arrays, schema=pa.schema(fields)).combine_chunks()
    sink = io.BytesIO()
    with ipc.new_file(sink, merged.schema, options=_WRITE_OPTIONS) as writer:
        writer.write_table(merged)
    return sink.getvalue()
