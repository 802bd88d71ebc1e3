"""Queries of the store: idempotent event writes, windows, runs."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, TextClause, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.events import LabelEvent, PredictionEvent
from collector.store.batches import encode, event_key, read_table, request_key
from collector.store.models import (
    EventBatch,
    FeatureResult,
    Label,
    Reference,
    RequestKey,
    Run,
)

# Parameters per INSERT statement stay below SQLite's and PostgreSQL's limits.
_CHUNK_ROWS = 500


def _insert_ignoring(session: Session, table: Table, conflict: list[str]) -> Insert:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=conflict)
    raise ValueError(f"unsupported database dialect {dialect!r}: use sqlite or postgresql")


def _write(session: Session, table: Table, rows: list[dict[str, Any]]) -> set[str]:
    """Insert rows, skipping event ids already stored; returns the ids actually inserted."""
    if not rows:
        return set()
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["event_id"], row)  # a redelivery inside one batch
    inserted: set[str] = set()
    batch = list(unique.values())
    for start in range(0, len(batch), _CHUNK_ROWS):
        chunk = batch[start : start + _CHUNK_ROWS]
        statement = _insert_ignoring(session, table, ["event_id"]).values(chunk)
        result = session.execute(statement.returning(table.c.event_id))
        inserted.update(result.scalars())
    return inserted


def insert_predictions(
    session: Session, events: Sequence[PredictionEvent], received_at: datetime
) -> set[str]:
    """Store predictions once each (idempotent on event_id); returns the new event ids.

    The new events of each model become one columnar batch (collector/store/batches.py);
    their ids' keys make a redelivered event, in this batch or a later one, a duplicate.
    """
    unique: dict[bytes, PredictionEvent] = {}
    for event in events:
        unique.setdefault(event_key(event.event_id), event)  # a redelivery inside one batch
    if not unique:
        return set()
    fresh = _insert_keys(session, list(unique))
    by_model: dict[str, list[PredictionEvent]] = {}
    for key, event in unique.items():
        if key in fresh:
            by_model.setdefault(event.model, []).append(event)
    for model, stored in by_model.items():
        times = [e.timestamp for e in stored]
        session.execute(insert(EventBatch).values(
            model=model, n_events=len(stored), first_at=min(times), last_at=max(times),
            received_at=received_at, payload=encode(stored)))
        requests: dict[int, datetime] = {}
        for e in stored:
            if e.request_id is not None:
                requests.setdefault(request_key(model, e.request_id), e.timestamp)
        if requests:
            rows = [{"key": k, "event_at": t} for k, t in requests.items()]
            table: Table = RequestKey.__table__  # type: ignore[assignment]
            statement = _insert_ignoring(session, table, ["key"])
            for start in range(0, len(rows), _CHUNK_ROWS):
                session.execute(statement, rows[start:start + _CHUNK_ROWS])
    return {e.event_id for model_events in by_model.values() for e in model_events}


@functools.cache
def _sqlite_key_insert(n: int) -> TextClause:
    """One statement text per chunk size, so SQLAlchemy compiles it once, not per batch."""
    values = ", ".join(f"(:k{i})" for i in range(n))  # placeholders only, no data
    return text(f"INSERT INTO event_keys (key) VALUES {values} "  # noqa: S608
                "ON CONFLICT DO NOTHING RETURNING key")


def _insert_keys(session: Session, keys: list[bytes]) -> set[bytes]:
    """Insert event keys, returning those that were not stored yet."""
    if session.get_bind().dialect.name == "postgresql":
        result = session.execute(
            text("INSERT INTO event_keys (key) SELECT unnest(CAST(:keys AS bytea[])) "
                 "ON CONFLICT DO NOTHING RETURNING key"), {"keys": keys})
        return {bytes(k) for k in result.scalars()}
    fresh: set[bytes] = set()
    for start in range(0, len(keys), _CHUNK_ROWS):
        chunk = keys[start:start + _CHUNK_ROWS]
        rows = session.execute(_sqlite_key_insert(len(chunk)),
                               {f"k{i}": key for i, key in enumerate(chunk)})
        fresh.update(bytes(k) for k in rows.scalars())
    return fresh


def insert_labels(
    session: Session, events: Sequence[LabelEvent], received_at: datetime
) -> set[str]:
    """Store labels once each (idempotent on event_id); returns the new event ids."""
    rows = [
        {
            "event_id": e.event_id,
            "model": e.model,
            "request_id": e.request_id,
            "event_at": e.timestamp,
            "received_at": received_at,
            "label": e.label,
        }
        for e in events
    ]
    return _write(session, Label.__table__, rows)  # type: ignore[arg-type]


def count_predictions(session: Session, model: str | None = None) -> int:
    """Number of stored predictions, of one model or of all."""
    query = select(func.coalesce(func.sum(EventBatch.n_events), 0))
    if model is not None:
        query = query.where(EventBatch.model == model)
    return int(session.execute(query).scalar_one())


def stored_event_ids(session: Session, model: str | None = None) -> list[str]:
    """The event ids of the stored predictions, in storage order (for tests and audits)."""
    query = select(EventBatch.payload).order_by(EventBatch.id)
    if model is not None:
        query = query.where(EventBatch.model == model)
    ids: list[str] = []
    for payload in session.execute(query).scalars():
        ids.extend(read_table(payload, ["_event_id"]).column("_event_id").to_pylist())
    return ids


def find_reference(session: Session, model: str, fingerprint: str) -> Reference | None:
    """The stored profile of `model` fitted on the reference file with this digest."""
    query = select(Reference).where(Reference.model == model, Reference.fingerprint == fingerprint)
    return session.execute(query).scalar_one_or_none()


def latest_runs(session: Session, model: str, limit: int = 20) -> list[Run]:
    """The model's most recent runs, newest first."""
    query = select(Run).where(Run.model == model).order_by(Run.started_at.desc()).limit(limit)
    return list(session.execute(query).scalars())


def feature_results(session: Session, run_ids: Sequence[str]) -> dict[str, list[FeatureResult]]:
    """Per-feature results of the given runs, keyed by run id."""
    if not run_ids:
        return {}
    query = select(FeatureResult).where(FeatureResult.run_id.in_(run_ids))
    grouped: dict[str, list[FeatureResult]] = {run_id: [] for run_id in run_ids}
    for result in session.execute(query).scalars():
        grouped[result.run_id].append(result)
    return grouped
