"""SQLAlchemy 2 ORM tables of the store (schema managed by Alembic migrations)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from alerts.outbox import AwareDateTime as UtcDateTime

# SQLite has no 64-bit autoincrement BIGINT primary key; PostgreSQL gets BIGSERIAL.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of the collector's tables."""


class EventBatch(Base):
    """The predictions of one model from one ingest batch, as columns (collector/store/batches.py).

    `first_at` / `last_at` bound the events' times, so a window reads only the batches it
    needs; `received_at` is when ingest stored it. Batches are deleted whole by retention.
    """

    __tablename__ = "event_batches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    n_events: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UtcDateTime())
    last_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    payload: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        Index("ix_event_batches_model_id", "model", "id"),
        Index("ix_event_batches_model_last_at", "model", "last_at"),
        Index("ix_event_batches_model_received", "model", "received_at"),
    )


class EventKey(Base):
    """One stored prediction's event id (16-byte hash): a redelivered event is stored once."""

    __tablename__ = "event_keys"
    key: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)

    __table_args__ = ({"sqlite_with_rowid": False},)


class RequestKey(Base):
    """When a (model, request id) was predicted: finds the buckets a late label changes."""

    __tablename__ = "request_keys"
    key: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    event_at: Mapped[datetime] = mapped_column(UtcDateTime())


class IngestOffset(Base):
    """The next Kafka offset to store, per consumer group and partition.

    Written in the transaction that stores the batch, so a batch and its offsets are
    durable together (exactly once per offset); the consumer seeks here on assignment.
    """

    __tablename__ = "ingest_offsets"
    group_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(250), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Label(Base):
    """Ground truth for a prediction, joined on (model, request_id)."""

    __tablename__ = "labels"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    model: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str] = mapped_column(String(200))
    event_at: Mapped[datetime] = mapped_column(UtcDateTime())
    received_at: Mapped[datetime] = mapped_column(UtcDateTime())
    label: Mapped[Any] = mapped_column(JSON)

    __table_args__ = (Index("ix_labels_model_request", "model", "request_id"),
                      Index("ix_labels_model_received", "model", "received_at"))


class Reference(Base):
    """A fitted reference profile, keyed by model and the reference file's digest."""

    __tablename__ = "reference_profiles"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    n_rows: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    profile: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ux_reference_profiles_model_fp", "model", "fingerprint", unique=True),)


class Run(Base):
    """One monitoring run of one model."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime] = mapped_column(UtcDateTime())
    window_start: Mapped[datetime | None] = mapped_column(UtcDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UtcDateTime())
    n_reference: Mapped[int] = mapped_column(Integer)
    n_current: Mapped[int] = mapped_column(Integer)
    share_drifted: Mapped[float | None] = mapped_column(Float)
    drift_share: Mapped[float] = mapped_column(Float)
    dataset_drifted: Mapped[bool] = mapped_column(Boolean)
    reference_id: Mapped[int | None] = mapped_column(ForeignKey("reference_profiles.id"))
    error: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The whole RunResult (performance, estimate, data quality, segments), issue 10.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    n_labelled: Mapped[int | None] = mapped_column(Integer, nullable=True)
    label_coverage: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_runs_model_started", "model", "started_at"),)


class FeatureResult(Base):
    """One feature's drift result within a run."""

    __tablename__ = "feature_results"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    feature: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    statistic: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    drifted: Mapped[bool] = mapped_column(Boolean)
    effect_size: Mapped[float | None] = mapped_column(Float)
    n_reference: Mapped[int] = mapped_column(Integer)
    n_current: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_feature_results_run", "run_id"),)


class PerformanceBucket(Base):
    """Realized performance of the predictions made in one bucket of time.

    Recomputed whenever labels land for predictions of the bucket, so that "the accuracy
    of Tuesday's predictions" becomes right once Tuesday's labels have arrived.
    """

    __tablename__ = "performance_buckets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(200))
    bucket: Mapped[str] = mapped_column(String(32))
    bucket_start: Mapped[datetime] = mapped_column(UtcDateTime())
    n_predictions: Mapped[int] = mapped_column(Integer)
    n_labelled: Mapped[int] = mapped_column(Integer)
    label_coverage: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        Index("ux_performance_buckets_key", "model", "bucket", "bucket_start", unique=True),
    )
