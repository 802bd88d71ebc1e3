"""Queries of the store: idempotent event writes, windows, runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Insert, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.events import LabelEvent, PredictionEvent
from collector.store.models import FeatureResult, Label, Prediction, Reference, Run

# Parameters per INSERT statement stay below SQLite's and PostgreSQL's limits.
_CHUNK_ROWS = 500


def _insert_ignoring_duplicates(session: Session, table: Table) -> Insert:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
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
        statement = _insert_ignoring_duplicates(session, table).values(chunk)
        result = session.execute(statement.returning(table.c.event_id))
        inserted.update(result.scalars())
    return inserted


def insert_predictions(
    session: Session, events: Sequence[PredictionEvent], received_at: datetime
) -> set[str]:
    """Store predictions once each (idempotent on event_id); returns the new event ids."""
    rows = [
        {
            "event_id": e.event_id,
            "model": e.model,
            "model_version": e.model_version,
            "request_id": e.request_id,
            "event_at": e.timestamp,
            "received_at": received_at,
            "features": dict(e.features),
            "prediction": e.prediction,
            "tags": dict(e.tags) or None,
            "latency_ms": e.latency_ms,
        }
        for e in events
    ]
    return _write(session, Prediction.__table__, rows)  # type: ignore[arg-type]


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
    query = select(func.count()).select_from(Prediction)
    if model is not None:
        query = query.where(Prediction.model == model)
    return int(session.execute(query).scalar_one())


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
