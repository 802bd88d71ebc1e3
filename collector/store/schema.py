"""The metadata every migration targets: the collector's tables and the alerts outbox."""

from __future__ import annotations

from sqlalchemy import MetaData

from collector.store.models import Base

target_metadata: list[MetaData] = [Base.metadata]
