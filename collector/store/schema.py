"""The metadata every migration targets: the collector's tables, the alerts outbox and state."""

from __future__ import annotations

from sqlalchemy import MetaData

import alerts.state  # noqa: F401 - registers the alert-state tables on the alerts metadata
from alerts.outbox import metadata as alerts_metadata
from collector.store.models import Base

target_metadata: list[MetaData] = [Base.metadata, alerts_metadata]
