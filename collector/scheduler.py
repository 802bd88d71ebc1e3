"""The scheduler: one APScheduler job per monitored model; each tick runs once, anywhere.

Every process keeps its own in-memory APScheduler job store (job stores must never be shared
between schedulers, APScheduler 3.x FAQ). Jobs fire on the wall clock, at fixed instants of
each tick (`TickTrigger`), so that the processes on one database fire together and name the
tick alike; each firing first claims the tick in the store (`collector.store.leases`), and
only the claimant runs it. Within a process, a model's monitor lock still keeps two runs of
one model apart.

Each model has two firings per tick: the holder's, early in the tick, where only the process
that ran the previous tick claims; and the standby's, a little later, where any process
claims a tick still free. The process that runs a model thus keeps running it while it
lives (its gauges are the fresh ones, its reference stays fitted in memory), and another
takes over at the standby firing of the first tick after it dies.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from prometheus_client import CollectorRegistry, Counter

from collector.monitor import ModelMonitor, RunSummary
from collector.store.leases import RunLeases

logger = logging.getLogger(__name__)

# The holder fires this far into the tick (a tenth of the interval, at most one second): off
# the boundary, where rounding could name the previous tick.
MAX_TICK_OFFSET_SECONDS = 1.0
# Standbys fire this much later (a quarter of the interval, at most five seconds).
MAX_STANDBY_DELAY_SECONDS = 5.0


# The lease name of store maintenance in `run_leases` (not a model name: models are
# validated as identifiers without a colon).
MAINTENANCE_LEASE = "driftline:maintenance"


def tick_offset_seconds(interval_seconds: float) -> float:
    """How far into each tick the holder's firing comes.

    Examples:
        >>> tick_offset_seconds(60.0), tick_offset_seconds(2.0)
        (1.0, 0.2)
    """
    return min(interval_seconds / 10, MAX_TICK_OFFSET_SECONDS)


def standby_offset_seconds(interval_seconds: float) -> float:
    """How far into each tick the standbys' firing comes.

    Examples:
        >>> standby_offset_seconds(60.0), standby_offset_seconds(2.0)
        (6.0, 0.7)
    """
    return tick_offset_seconds(interval_seconds) + min(interval_seconds / 4,
                                                       MAX_STANDBY_DELAY_SECONDS)


def ticks_missed_counter(registry: CollectorRegistry) -> Counter:
    """`driftline_monitor_ticks_missed_total`, registered on `registry`."""
    return Counter(
        "driftline_monitor_ticks_missed_total",
        "Scheduled ticks of the model that ran nowhere: nobody claimed them within their "
        "interval, or their holder died before finishing (counted by the next claimant).",
        ["model"],
        registry=registry,
    )


class TickTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """Fires at `k * interval + offset` seconds of Unix time: the same instants everywhere."""

    def __init__(self, interval_seconds: float, offset_seconds: float) -> None:
        if not interval_seconds > 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds!r}")
        if not 0 <= offset_seconds < interval_seconds:
            raise ValueError(f"offset_seconds must be in [0, {interval_seconds}), "
                             f"got {offset_seconds!r}")
        self.interval_seconds = interval_seconds
        self.offset_seconds = offset_seconds

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime:
        """The first firing instant strictly after the previous one (or at/after `now`).

        Examples:
            >>> at = datetime(2026, 11, 29, 10, 0, 7, tzinfo=UTC)
            >>> TickTrigger(60.0, 1.0).get_next_fire_time(None, at).isoformat()
            '2026-11-29T10:01:01+00:00'
        """
        after = previous_fire_time if previous_fire_time is not None else now
        index = math.floor((after.timestamp() - self.offset_seconds) / self.interval_seconds)
        fire = self._instant(index)
        # Rounding to microseconds may land on `after` itself: step on until strictly later
        # (or, for a first firing, not earlier than now).
        while fire < after or (previous_fire_time is not None and fire <= after):
            index += 1
            fire = self._instant(index)
        return fire

    def _instant(self, index: int) -> datetime:
        return datetime.fromtimestamp(index * self.interval_seconds + self.offset_seconds, UTC)

    def __str__(self) -> str:
        return f"tick[every {self.interval_seconds}s, +{self.offset_seconds}s]"


class MonitorScheduler:
    """Runs each model's monitor on its schedule in a background thread pool.

    Args:
        monitors: The monitor of each model, by name.
        leases: Claims each tick in the store, so that one process of many runs it.
        ticks_missed: `driftline_monitor_ticks_missed_total` (see `ticks_missed_counter`).
        first_run_delay_seconds: The first run comes this soon after start, in the current
            tick (when no other process has claimed it), rather than at the next tick.
    """

    def __init__(
        self,
        monitors: Mapping[str, ModelMonitor],
        *,
        leases: RunLeases,
        ticks_missed: Counter | None = None,
        first_run_delay_seconds: float = 1.0,
        maintenance: Callable[[], object] | None = None,
        maintenance_every_seconds: float = 300.0,
    ) -> None:
        self.monitors = dict(monitors)
        self._maintenance = maintenance
        self._maintenance_every = maintenance_every_seconds
        self._leases = leases
        self._ticks_missed = ticks_missed
        if ticks_missed is not None:
            for name in self.monitors:
                ticks_missed.labels(name)  # the series starts at zero
        self._held: dict[str, datetime] = {}  # the last tick of each model this process ran
        self._first_delay = first_run_delay_seconds
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def start(self) -> None:
        """Add each model's jobs and start the scheduler thread."""
        first = datetime.now(UTC) + timedelta(seconds=self._first_delay)
        for name, monitor in self.monitors.items():
            every = monitor.model.schedule.every_seconds
            self._scheduler.add_job(
                self.run_tick, args=(name,), kwargs={"standby": False},
                trigger=TickTrigger(every, tick_offset_seconds(every)),
                id=f"monitor:{name}", name=f"monitor {name}", replace_existing=True,
            )
            self._scheduler.add_job(
                self.run_tick, args=(name,), kwargs={"standby": True},
                trigger=TickTrigger(every, standby_offset_seconds(every)),
                id=f"monitor:{name}:standby", name=f"monitor {name} (standby)",
                replace_existing=True,
            )
            # A job of its own, so that a standby firing during it is not reported as skipped.
            self._scheduler.add_job(
                self.run_tick, args=(name,), kwargs={"standby": True},
                trigger="date", run_date=first,
                id=f"monitor:{name}:first", name=f"monitor {name} (first run)",
                replace_existing=True,
            )
        if self._maintenance is not None:
            every = self._maintenance_every
            self._scheduler.add_job(
                self.run_maintenance, trigger=TickTrigger(every, tick_offset_seconds(every)),
                id="maintenance", name="store maintenance", replace_existing=True)
        self._scheduler.start()
        logger.info("scheduler started", extra={"models": sorted(self.monitors),
                                                "owner": self._leases.owner})

    def run_tick(self, name: str, *, standby: bool = True) -> RunSummary | None:
        """Run `name` for the current tick if this process claims it; None otherwise.

        Args:
            name: The model.
            standby: False for the holder's firing: claim only when this process ran the
                model's previous tick. True: claim the tick if it is still free.
        """
        monitor = self.monitors[name]
        every = monitor.model.schedule.every_seconds
        current = self._leases.current_tick(every)
        held = self._held.get(name)
        if held == current or (not standby and held != current - timedelta(seconds=every)):
            return None  # ours already, or the holder's firing and we are not the holder
        try:
            claim = self._leases.claim(name, every)
        except Exception:  # the store may be briefly unreachable: this tick is missed
            logger.warning("tick not claimed, the store did not answer", exc_info=True,
                           extra={"model": name})
            return None
        if claim is None:
            return None
        self._held[name] = claim.tick_start
        if claim.missed_ticks:
            logger.warning("ticks missed", extra={
                "model": name, "missed": claim.missed_ticks, "abandoned_by": claim.abandoned_by,
                "tick_start": claim.tick_start.isoformat()})
            if self._ticks_missed is not None:
                self._ticks_missed.labels(name).inc(claim.missed_ticks)
        summary: RunSummary | None = None
        try:
            with self._leases.held(claim):
                summary = monitor.run()
        finally:
            try:
                self._leases.finish(claim, summary.run_id if summary is not None else None)
            except Exception:  # the lease then expires on its own
                logger.warning("run lease not released", exc_info=True, extra={"model": name})
        return summary

    def run_maintenance(self) -> bool:
        """Retention, compaction and vacuum, when this process claims the tick (one of many)."""
        if self._maintenance is None:
            return False
        try:
            claim = self._leases.claim(MAINTENANCE_LEASE, self._maintenance_every)
        except Exception:
            logger.warning("maintenance tick not claimed, the store did not answer",
                           exc_info=True)
            return False
        if claim is None:
            return False
        try:
            with self._leases.held(claim):
                self._maintenance()
        except Exception:  # the next tick tries again
            logger.exception("store maintenance failed")
        finally:
            try:
                self._leases.finish(claim, None)
            except Exception:
                logger.warning("maintenance lease not released", exc_info=True)
        return True

    def stop(self, *, wait: bool = True) -> None:
        """Stop scheduling; with `wait`, let running runs finish."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)

    @property
    def running(self) -> bool:
        """True while the scheduler thread runs."""
        return bool(self._scheduler.running)
