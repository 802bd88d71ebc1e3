"""columnar event batches, dedup keys, request keys, ingest offsets in the store (issue 12)

Stored prediction rows move into columnar batches (one per model and 20,000 events),
keeping their order, and the row table is dropped.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOVE_CHUNK = 20_000


def upgrade() -> None:
    op.create_table(
        "event_batches",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("n_events", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_event_batches_model_id", "event_batches", ["model", "id"])
    op.create_index("ix_event_batches_model_last_at", "event_batches", ["model", "last_at"])
    op.create_index("ix_event_batches_model_received", "event_batches",
                    ["model", "received_at"])
    op.create_table(
        "event_keys",
        sa.Column("key", sa.LargeBinary(length=16), nullable=False),
        sa.PrimaryKeyConstraint("key"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "request_keys",
        sa.Column("key", _BigId, autoincrement=False, nullable=False),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "ingest_offsets",
        sa.Column("group_id", sa.String(length=200), nullable=False),
        sa.Column("topic", sa.String(length=250), nullable=False),
        sa.Column("partition", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "topic", "partition"),
    )
    op.create_index("ix_labels_model_received", "labels", ["model", "received_at"])
    _move_rows()
    op.drop_index("ix_predictions_model_event_at", table_name="predictions")
    op.drop_index("ix_predictions_model_id", table_name="predictions")
    op.drop_index("ix_predictions_model_request", table_name="predictions")
    op.drop_table("predictions")


def _move_rows() -> None:
    # Imported here: the codec is the store's, and this is its one-off use in a migration.
    from collector.events import PredictionEvent
    from collector.store.batches import encode, event_key, request_key

    bind = op.get_bind()
    rows_table = sa.table(
        "predictions", sa.column("id"), sa.column("event_id"), sa.column("model"),
        sa.column("model_version"), sa.column("request_id"),
        sa.column("event_at", sa.DateTime(timezone=True)),
        sa.column("received_at", sa.DateTime(timezone=True)), sa.column("features", sa.JSON),
        sa.column("prediction", sa.JSON), sa.column("tags", sa.JSON),
        sa.column("latency_ms", sa.Float))
    from alerts.outbox import AwareDateTime

    batches = sa.table("event_batches", sa.column("model"), sa.column("n_events"),
                       sa.column("first_at", AwareDateTime()),
                       sa.column("last_at", AwareDateTime()),
                       sa.column("received_at", AwareDateTime()),
                       sa.column("payload", sa.LargeBinary))
    keys = sa.table("event_keys", sa.column("key", sa.LargeBinary))
    requests = sa.table("request_keys", sa.column("key"),
                        sa.column("event_at", AwareDateTime()))
    models = [m for (m,) in bind.execute(sa.select(rows_table.c.model).distinct())]
    for model in models:
        last_id = -1
        while True:
            rows = bind.execute(
                sa.select(rows_table).where(rows_table.c.model == model,
                                            rows_table.c.id > last_id)
                .order_by(rows_table.c.id).limit(_MOVE_CHUNK)).all()
            if not rows:
                break
            last_id = rows[-1].id
            events = [PredictionEvent(
                event_id=r.event_id, model=r.model, timestamp=_aware(r.event_at),
                features=r.features or {}, prediction=r.prediction,
                model_version=r.model_version, request_id=r.request_id,
                tags=r.tags or {}, latency_ms=r.latency_ms) for r in rows]
            times = [e.timestamp for e in events]
            bind.execute(batches.insert().values(
                model=model, n_events=len(events), first_at=min(times), last_at=max(times),
                received_at=max(_aware(r.received_at) for r in rows), payload=encode(events)))
            bind.execute(keys.insert(), [{"key": event_key(e.event_id)} for e in events])
            seen: dict[int, datetime] = {}
            for e in events:
                if e.request_id is not None:
                    seen.setdefault(request_key(model, e.request_id), e.timestamp)
            if seen:
                bind.execute(requests.insert(), [{"key": k, "event_at": t}
                                                 for k, t in seen.items()])


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    moment: datetime = value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def downgrade() -> None:
    raise NotImplementedError(
        "0006 moved prediction rows into columnar batches; restore a backup to go back")
