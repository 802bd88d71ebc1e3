"""Kafka offsets kept in the store, written in the transaction that stores their batch.

This is what makes ingest exactly-once per offset: a batch's events and the next offsets
of its partitions are durable together or not at all. The update is a compare-and-set on
the batch's first offset, so a process that lost a partition in a rebalance (and still
holds a batch of it) cannot store what the new owner already stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from collector.store.models import IngestOffset


class StaleOffsetError(Exception):
    """The store's offset of a partition is past the batch: another process stored it."""


def stored_offsets(session: Session, group_id: str,
                   partitions: Sequence[Any]) -> dict[Any, int]:
    """The next offset to read of each partition the store knows (TopicPartition keys)."""
    wanted = {(tp.topic, tp.partition): tp for tp in partitions}
    if not wanted:
        return {}
    topics = sorted({topic for topic, _ in wanted})
    query = select(IngestOffset.topic, IngestOffset.partition, IngestOffset.next_offset).where(
        IngestOffset.group_id == group_id, IngestOffset.topic.in_(topics))
    return {wanted[(topic, partition)]: int(offset)
            for topic, partition, offset in session.execute(query)
            if (topic, partition) in wanted}


def claim_offsets(session: Session, group_id: str,
                  spans: Mapping[Any, tuple[int, int]], now: datetime) -> None:
    """Move each partition's stored offset from at most `first` to `next` (first, next).

    Raises:
        StaleOffsetError: A partition's stored offset is already past `first`.
    """
    dialect = session.get_bind().dialect.name
    for tp, (first, following) in spans.items():
        moved = session.execute(
            update(IngestOffset)
            .where(IngestOffset.group_id == group_id, IngestOffset.topic == tp.topic,
                   IngestOffset.partition == tp.partition, IngestOffset.next_offset <= first)
            .values(next_offset=following, updated_at=now)
            .returning(IngestOffset.next_offset)
            .execution_options(synchronize_session=False)).first()
        if moved is not None:
            continue
        values = {"group_id": group_id, "topic": tp.topic, "partition": tp.partition,
                  "next_offset": following, "updated_at": now}
        insert = (postgresql.insert(IngestOffset) if dialect == "postgresql"
                  else sqlite.insert(IngestOffset))
        # rowcount is not reliable here (psycopg reports -1): RETURNING says what happened.
        created = session.execute(insert.values(**values).on_conflict_do_nothing(
            index_elements=["group_id", "topic", "partition"])
            .returning(IngestOffset.next_offset)).first()
        if created is None:
            raise StaleOffsetError(
                f"{tp.topic}[{tp.partition}]: offsets from {first} were stored by another "
                f"process")
