"""The scheduler: one APScheduler job per monitored model, never two runs of a model at once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from collector.monitor import ModelMonitor

logger = logging.getLogger(__name__)


class MonitorScheduler:
    """Runs each model's monitor on its schedule in a background thread pool."""

    def __init__(
        self, monitors: Mapping[str, ModelMonitor], *, first_run_delay_seconds: float = 1.0
    ) -> None:
        self.monitors = dict(monitors)
        self._first_delay = first_run_delay_seconds
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def start(self) -> None:
        """Add one job per model and start the scheduler thread."""
        first = datetime.now(UTC) + timedelta(seconds=self._first_delay)
        for name, monitor in self.monitors.items():
            self._scheduler.add_job(
                monitor.run,
                trigger=IntervalTrigger(seconds=monitor.model.schedule.every_seconds, timezone=UTC),
                id=f"monitor:{name}",
                name=f"monitor {name}",
                next_run_time=first,
                replace_existing=True,
            )
        self._scheduler.start()
        logger.info("scheduler started", extra={"models": sorted(self.monitors)})

    def stop(self, *, wait: bool = True) -> None:
        """Stop scheduling; with `wait`, let running runs finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        """True while the scheduler thread runs."""
        return bool(self._scheduler.running)
