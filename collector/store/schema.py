"""The metadata every migration targets: the collector's tables and the alerts outbox."""

from __future__ import annotations

from sqlalchemy import MetaData

from alerts.outbox import metadata as alerts_metadata
from collector.store.models import Base

target_metadata: list[MetaData] = [Base.metadata, alerts_metadata]
