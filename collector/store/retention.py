"""Keeping the store's size bounded: retention of raw events, compaction, vacuum.

Raw events (prediction batches and labels) older than `retention.raw_days` are deleted
whole batches at a time, with their deduplication and request keys; runs, their results
and performance buckets are kept. Small batches (an ingest batch per poll is small when
traffic is light) are merged into batches of up to `compact_events`, so that a window of a
million events reads a few dozen batches, not thousands. SQLite returns the freed pages
to the file system (incremental vacuum); PostgreSQL's autovacuum reuses them.

One process of many does this at a time: the scheduler claims a lease for it as it does
for a model's tick (collector/scheduler.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select, text
from sqlalchemy.orm import Session, sessionmaker

from collector.store.batches import event_key, merge, read_table, request_key
from collector.store.models import EventBatch, EventKey, Label, RequestKey

logger = logging.getLogger(__name__)

_DELETE_BATCHES = 50
_KEY_CHUNK = 5_000


@dataclass
class Maintenance:
    """What one maintenance pass did."""

    batches_deleted: int = 0
    events_deleted: int = 0
    labels_deleted: int = 0
    batches_merged: int = 0
    batches_written: int = 0


def delete_expired(sessions: sessionmaker[Session], *, now: datetime, raw_days: float,
                   outcome: Maintenance | None = None) -> Maintenance:
    """Delete batches whose newest event, and labels received, before `now - raw_days`."""
    outcome = outcome or Maintenance()
    cutoff = now - timedelta(days=raw_days)
    while True:
        with sessions.begin() as session:
            expired = session.execute(
                select(EventBatch.id, EventBatch.model, EventBatch.n_events,
                       EventBatch.payload)
                .where(EventBatch.last_at < cutoff).order_by(EventBatch.id)
                .limit(_DELETE_BATCHES)).all()
            if not expired:
                break
            keys: list[bytes] = []
            requests: list[int] = []
            for _id, model, _n, payload in expired:
                table = read_table(payload, ["_event_id", "_request_id"])
                keys.extend(event_key(e) for e in table.column("_event_id").to_pylist())
                requests.extend(request_key(model, r)
                                for r in table.column("_request_id").to_pylist()
                                if r is not None)
            for start in range(0, len(keys), _KEY_CHUNK):
                session.execute(delete(EventKey).where(
                    EventKey.key.in_(keys[start:start + _KEY_CHUNK])))
            for start in range(0, len(requests), _KEY_CHUNK):
                session.execute(delete(RequestKey).where(
                    RequestKey.key.in_(requests[start:start + _KEY_CHUNK])))
            session.execute(delete(EventBatch).where(
                EventBatch.id.in_([row.id for row in expired])))
            outcome.batches_deleted += len(expired)
            outcome.events_deleted += sum(row.n_events for row in expired)
    while True:
        with sessions.begin() as session:
            ids = list(session.execute(select(Label.id).where(Label.received_at < cutoff)
                                       .limit(_KEY_CHUNK)).scalars())
            if not ids:
                break
            session.execute(delete(Label).where(Label.id.in_(ids)))
            outcome.labels_deleted += len(ids)
    return outcome


def compact(sessions: sessionmaker[Session], *, now: datetime, target_events: int,
            min_age_seconds: float = 60.0, outcome: Maintenance | None = None) -> Maintenance:
    """Merge runs of consecutive small batches of each model into batches of ~target_events.

    Only batches received at least `min_age_seconds` ago are merged, and only with their
    neighbours in storage order, so a window reads the same events in the same order
    before and after. The merged batch takes the first one's id, in the same transaction
    that deletes the originals: readers see the old batches or the new one, never both.
    """
    outcome = outcome or Maintenance()
    settled = now - timedelta(seconds=min_age_seconds)
    small = target_events // 2
    with sessions() as session:
        models = list(session.execute(select(EventBatch.model).distinct()).scalars())
    for model in models:
        with sessions() as session:
            rows = session.execute(
                select(EventBatch.id, EventBatch.n_events, EventBatch.received_at)
                .where(EventBatch.model == model).order_by(EventBatch.id)).all()
        groups: list[list[int]] = []
        current: list[int] = []
        total = 0
        for batch_id, n_events, received_at in rows:
            if received_at >= settled:
                break  # newer batches stay as they are, and so does everything after them
            if n_events >= small or total + n_events > target_events:
                if len(current) > 1:
                    groups.append(current)
                current, total = ([], 0) if n_events >= small else ([batch_id], n_events)
                continue
            current.append(batch_id)
            total += n_events
        if len(current) > 1:
            groups.append(current)
        for group in groups:
            _merge_group(sessions, model, group)
            outcome.batches_merged += len(group)
            outcome.batches_written += 1
    return outcome


def _merge_group(sessions: sessionmaker[Session], model: str, ids: list[int]) -> None:
    with sessions.begin() as session:
        rows = session.execute(
            select(EventBatch).where(EventBatch.id.in_(ids)).order_by(EventBatch.id)
            .with_for_update()).scalars().all()
        if [row.id for row in rows] != ids:
            return  # another process changed them meanwhile; the next pass looks again
        payload = merge([row.payload for row in rows])
        first = rows[0]
        values = {"n_events": sum(r.n_events for r in rows),
                  "first_at": min(r.first_at for r in rows),
                  "last_at": max(r.last_at for r in rows),
                  "received_at": max(r.received_at for r in rows), "payload": payload}
        session.execute(delete(EventBatch).where(EventBatch.id.in_(ids[1:])))
        for name, value in values.items():
            setattr(first, name, value)
    logger.debug("batches merged", extra={"model": model, "batches": len(ids)})


def vacuum(engine: Engine) -> None:
    """Give freed pages back to the file system (SQLite); PostgreSQL's autovacuum reuses them."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        mode = connection.execute(text("PRAGMA auto_vacuum")).scalar_one()
        if int(mode) == 2:  # incremental
            connection.execute(text("PRAGMA incremental_vacuum"))
            connection.commit()
