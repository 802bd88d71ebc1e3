"""The durable outbox: deliveries written in the same transaction as the run that caused them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Index, Integer, MetaData, String, Text, TypeDecorator, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class DeliveryStatus(StrEnum):
    """Where a delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class AwareDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the outbox keeps timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Read back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the alerts tables (migrated by the collector's Alembic scripts)."""


metadata: MetaData = Base.metadata


class Delivery(Base):
    """One message to one channel; its id is the webhook-id on every attempt."""

    __tablename__ = "deliveries"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(200))
    run_id: Mapped[str | None] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(AwareDateTime())
    claimed_until: Mapped[datetime | None] = mapped_column(AwareDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_model_type", "model", "event_type", "created_at"),
    )

    @property
    def body(self) -> bytes:
        """The exact bytes every attempt sends."""
        return self.payload.encode("utf-8")


def enqueue(
    session: Session,
    *,
    channel: str,
    event_type: str,
    model: str,
    run_id: str | None,
    payload: dict[str, Any],
    now: datetime,
) -> Delivery:
    """Add a pending delivery to `session` (the caller commits, with the run)."""
    delivery = Delivery(
        id="msg_" + uuid.uuid4().hex,
        channel=channel,
        event_type=event_type,
        model=model,
        run_id=run_id,
        payload=json.dumps(payload, separators=(",", ":"), allow_nan=False),
        status=DeliveryStatus.PENDING.value,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    session.add(delivery)
    return delivery


def in_cooldown(
    session: Session, *, model: str, event_type: str, cooldown_seconds: float, now: datetime
) -> bool:
    """True when a delivery of this type for this model was created within the cooldown."""
    since = now - timedelta(seconds=cooldown_seconds)
    query = (
        select(Delivery.id)
        .where(Delivery.model == model, Delivery.event_type == event_type,
               Delivery.created_at > since)
        .limit(1)
    )
    return session.execute(query).first() is not None
