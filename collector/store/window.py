"""Reading a model's window, with its labels joined: the one interface runs read through.

A run asks for the last N events or the last T seconds of a model and gets a `Window`:
features as columns, the raw predictions, the labels joined on (model, request_id) whatever
their order of arrival, times, versions and tags. How events are stored (columnar batches,
collector/store/batches.py, with keys for deduplication and label joins) is this module's
business alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Select, bindparam, select, text
from sqlalchemy.orm import Session

from collector.store.batches import Columns, decode_all, read_table, request_key
from collector.store.models import EventBatch, Label, RequestKey


@dataclass(frozen=True)
class Window:
    """The events of one window, oldest first.

    Attributes:
        features: One column per feature seen in the window (a feature no event carried
            is absent); rows are events.
        predictions: The `prediction` field of each event as sent (a number, a class, a
            list of class scores, or None).
        labels: The joined label of each event, None when none arrived (object array).
        prediction_at, label_at: Event times (label_at NaT where unlabelled).
        versions: `model_version` of each event (None where not given).
        tags: `tags` of each event.
        absent: Per feature with missing values, True where the event lacked the key
            (null values are False): data quality tells absent from null.
        unknown_fields: Feature keys events carried that the caller did not expect, with
            the number of events that carried each.
    """

    features: pd.DataFrame
    predictions: list[Any]
    labels: np.ndarray[Any, np.dtype[np.object_]]
    prediction_at: pd.DatetimeIndex
    label_at: pd.DatetimeIndex
    versions: list[str | None]
    tags: list[Mapping[str, str]]
    absent: Mapping[str, np.ndarray[Any, np.dtype[np.bool_]]] = field(default_factory=dict)
    unknown_fields: Mapping[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of events."""
        return len(self.predictions)

    @property
    def labelled(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """True where a label was joined."""
        return np.fromiter((v is not None for v in self.labels), bool, self.n)

    @property
    def first_at(self) -> datetime | None:
        """Time of the oldest event."""
        return self.prediction_at.min().to_pydatetime() if self.n else None

    @property
    def last_at(self) -> datetime | None:
        """Time of the newest event."""
        return self.prediction_at.max().to_pydatetime() if self.n else None

    @property
    def main_version(self) -> str | None:
        """The most frequent model version (ties: the latest to appear)."""
        counts = Counter(v for v in self.versions if v is not None)
        if not counts:
            return None
        best = max(counts.values())
        return next(v for v in reversed(self.versions) if v is not None and counts[v] == best)

    def frame(self) -> pd.DataFrame:
        """Features plus a `prediction` column of scalar predictions (lists become None)."""
        frame = self.features.copy()
        frame["prediction"] = [p if not isinstance(p, list | dict) else None
                               for p in self.predictions]
        return frame


def _empty() -> Window:
    empty_times = pd.DatetimeIndex([], tz="UTC")
    return Window(pd.DataFrame(), [], np.empty(0, dtype=object), empty_times, empty_times, [],
                  [])


# Request ids per label lookup (SQLite allows 32,766 parameters a statement).
_LOOKUP_CHUNK = 10_000


def _read(session: Session, query: Select[Any]) -> Columns:
    return decode_all(list(session.execute(query).scalars()), event_ids=False)


def read_window(
    session: Session,
    model: str,
    *,
    now: datetime,
    last_events: int | None = None,
    last_seconds: float | None = None,
    expected: Sequence[str] | None = None,
) -> Window:
    """The current window of `model`, with its labels joined.

    The last `last_events` events stored, or those of the last `last_seconds` before
    `now`; only the batches holding them are read. A prediction with several labels (a
    correction sent later) takes the last one stored.
    """
    if last_seconds is not None:
        cutoff = now - timedelta(seconds=last_seconds)
        query = (select(EventBatch.payload)
                 .where(EventBatch.model == model, EventBatch.last_at >= cutoff)
                 .order_by(EventBatch.id))
        columns = _read(session, query)
        keep = np.asarray(columns.event_at >= pd.Timestamp(cutoff))
        return _build(session, model, _select(columns, keep), expected)
    wanted = last_events or 1000
    ids: list[int] = []
    total = 0
    sizes = (select(EventBatch.id, EventBatch.n_events).where(EventBatch.model == model)
             .order_by(EventBatch.id.desc()))
    for batch_id, n_events in session.execute(sizes):
        ids.append(batch_id)
        total += n_events
        if total >= wanted:
            break
    if not ids:
        return _empty()
    query = select(EventBatch.payload).where(EventBatch.id.in_(ids)).order_by(EventBatch.id)
    columns = _read(session, query)
    keep = np.zeros(columns.n, bool)
    keep[max(columns.n - wanted, 0):] = True
    return _build(session, model, _select(columns, keep), expected)


def read_between(session: Session, model: str, start: datetime, end: datetime,
                 expected: Sequence[str] | None = None) -> Window:
    """The events of `model` with prediction time in [start, end), with their labels."""
    query = (select(EventBatch.payload)
             .where(EventBatch.model == model, EventBatch.last_at >= start,
                    EventBatch.first_at < end)
             .order_by(EventBatch.id))
    columns = _read(session, query)
    times = columns.event_at
    keep = np.asarray((times >= pd.Timestamp(start)) & (times < pd.Timestamp(end)))
    return _build(session, model, _select(columns, keep), expected)


def labelled_prediction_times(session: Session, model: str,
                              received_since: datetime | None) -> list[datetime]:
    """Prediction times of the labelled predictions stored or labelled since a time.

    A pair counts when its label or its prediction was stored at or after
    `received_since` (every pair when None). These are the performance buckets that new
    data changed: a late label, or a prediction whose label had come first. Neither side
    reads the history: labels find their prediction's time by key, new predictions look
    their labels up by request id.
    """
    labels = select(Label.request_id).where(Label.model == model)
    if received_since is not None:
        labels = labels.where(Label.received_at >= received_since)
    keys = sorted({request_key(model, r) for r in session.execute(labels).scalars()})
    times: list[datetime] = []
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[start:start + _LOOKUP_CHUNK]
        times.extend(session.execute(
            select(RequestKey.event_at).where(RequestKey.key.in_(chunk))).scalars())
    if received_since is not None:
        recent = (select(EventBatch.payload)
                  .where(EventBatch.model == model, EventBatch.received_at >= received_since))
        for payload in session.execute(recent).scalars():
            table = read_table(payload, ["_request_id", "_event_at"])
            requests = table.column("_request_id").to_pylist()
            labelled = _labels(session, model, [r for r in requests if r is not None])
            if labelled:
                event_at = table.column("_event_at").to_pylist()
                times.extend(t for r, t in zip(requests, event_at, strict=True)
                             if r in labelled)
    return times


def _labels(session: Session, model: str,
            request_ids: Sequence[str]) -> dict[str, tuple[Any, Any]]:
    """The last stored label and its time per request id that has one.

    When the model has no more labels than twice the ids asked for, its labels are read in
    one indexed range scan; otherwise they are looked up by id, `_LOOKUP_CHUNK` at a time.
    Rows are read without the ORM's per-value conversion: the label's JSON is parsed here,
    and times are left as the driver gives them (text on SQLite) for one vectorised parse.
    """
    unique = set(request_ids)
    if not unique:
        return {}
    connection = session.connection()
    stored = connection.execute(_COUNT_LABELS, {"model": model}).scalar_one()
    if not stored:
        return {}
    parse = orjson.loads if connection.dialect.name == "sqlite" else None
    found: dict[str, tuple[int, Any, Any]] = {}

    def keep(rows: Any) -> None:
        for label_id, request_id, label, label_at in rows:
            if request_id in unique:
                held = found.get(request_id)
                if held is None or label_id > held[0]:
                    found[request_id] = (label_id, label, label_at)

    if stored <= 2 * len(unique):
        keep(connection.execute(_MODEL_LABELS, {"model": model}))
    else:
        ordered = sorted(unique)
        for start in range(0, len(ordered), _LOOKUP_CHUNK):
            keep(connection.execute(_LABELS_OF_REQUESTS, {
                "model": model, "ids": ordered[start:start + _LOOKUP_CHUNK]}))
    if parse is None:
        return {r: (label, at) for r, (_i, label, at) in found.items()}
    # SQLite's JSON column has numeric affinity: numbers come back as numbers, the rest as
    # JSON text.
    return {r: (parse(label) if isinstance(label, str) else label, at)
            for r, (_i, label, at) in found.items()}


_COUNT_LABELS = text("SELECT count(*) FROM labels WHERE model = :model")
_MODEL_LABELS = text("SELECT id, request_id, label, event_at FROM labels WHERE model = :model")
_LABELS_OF_REQUESTS = text(
    "SELECT id, request_id, label, event_at FROM labels "
    "WHERE model = :model AND request_id IN :ids").bindparams(bindparam("ids", expanding=True))


def _select(columns: Columns, keep: np.ndarray[Any, np.dtype[np.bool_]]) -> Columns:
    if bool(keep.all()):
        return columns
    index = np.flatnonzero(keep)
    features = columns.features.iloc[index].reset_index(drop=True)
    absent = {name: mask[index] for name, mask in columns.absent.items() if mask[index].any()}
    return Columns(
        features=features, absent=absent,
        event_ids=[columns.event_ids[i] for i in index] if columns.event_ids else [],
        request_ids=[columns.request_ids[i] for i in index],
        event_at=columns.event_at[index],
        versions=[columns.versions[i] for i in index],
        predictions=[columns.predictions[i] for i in index],
        tags=[columns.tags[i] for i in index],
    )


def _build(session: Session, model: str, columns: Columns,
           expected: Sequence[str] | None) -> Window:
    n = columns.n
    if not n:
        return _empty()
    features = columns.features
    # Columns no kept event carried (all absent) are not part of the window.
    gone = [c for c, mask in columns.absent.items() if bool(mask.all())]
    if gone:
        features = features.drop(columns=gone)
    absent = {c: mask for c, mask in columns.absent.items() if c not in gone}
    for column in features.columns:
        if str(column) not in absent and features[column].isna().any():
            absent[str(column)] = np.zeros(n, bool)
        if features[column].dtype == object and str(column) in absent:
            # One spelling of missing, whatever the batches' layout: an explicit null is
            # None, a key the event lacked is NaN (as a frame built from the JSON rows was).
            values = features[column].to_numpy(copy=True)
            values[pd.isna(values)] = None
            values[absent[str(column)]] = np.nan
            features[column] = values
    unknown: dict[str, int] = {}
    if expected is not None:
        allowed = set(expected)
        for column in features.columns:
            if column not in allowed:
                present = absent.get(str(column))
                unknown[str(column)] = int(n - (present.sum() if present is not None else 0))
    joined = _labels(session, model, [r for r in columns.request_ids if r is not None])
    labels = np.empty(n, dtype=object)
    label_times: list[Any] = [None] * n
    if joined:
        for i, request_id in enumerate(columns.request_ids):
            hit = joined.get(request_id) if request_id is not None else None
            if hit is not None:
                labels[i], label_times[i] = hit
    return Window(
        features=features,
        predictions=columns.predictions,
        labels=labels,
        prediction_at=columns.event_at,
        label_at=pd.DatetimeIndex(pd.to_datetime(label_times, utc=True)),
        versions=columns.versions,
        tags=columns.tags,
        absent=absent,
        unknown_fields=unknown,
    )
