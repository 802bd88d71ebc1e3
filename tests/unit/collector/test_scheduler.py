"""The scheduler (issue 12): wall-clock ticks, one run per tick across schedulers, missed ticks."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from collector.monitor import RunSummary
from collector.scheduler import (
    MonitorScheduler,
    TickTrigger,
    standby_offset_seconds,
    tick_offset_seconds,
    ticks_missed_counter,
)
from collector.store import make_engine, make_session_factory, upgrade
from collector.store.leases import RunLease, RunLeases

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
EVERY = 10.0


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FakeMonitor:
    """Counts its runs; the scheduler needs `model.schedule.every_seconds` and `run()`."""

    every_seconds: float
    runs: list[str] = field(default_factory=list)

    @property
    def model(self) -> Any:
        return SimpleNamespace(schedule=SimpleNamespace(every_seconds=self.every_seconds))

    def run(self) -> RunSummary:
        run_id = f"run-{len(self.runs)}"
        self.runs.append(run_id)
        return RunSummary(run_id, "m", "ok", 0, None, False, (), False)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'scheduler.db'}")
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


# -- the trigger -----------------------------------------------------------------------------
def test_ticks_fire_at_the_same_instants_whenever_a_process_starts() -> None:
    trigger = TickTrigger(EVERY, 1.0)
    firsts = {trigger.get_next_fire_time(None, T0 + timedelta(seconds=s)) for s in (1.5, 3, 9)}
    assert firsts == {T0 + timedelta(seconds=EVERY + 1.0)}
    early = T0 + timedelta(seconds=0.5)  # this tick's firing is still ahead
    assert trigger.get_next_fire_time(None, early) == T0 + timedelta(seconds=1)


def test_tick_firings_step_one_interval_at_a_time() -> None:
    trigger = TickTrigger(1.5, tick_offset_seconds(1.5))
    fire = trigger.get_next_fire_time(None, T0)
    seen = [fire]
    for _ in range(1000):
        fire = trigger.get_next_fire_time(fire, fire)
        seen.append(fire)
    steps = {round((b - a).total_seconds(), 6) for a, b in itertools.pairwise(seen)}
    assert steps == {1.5}
    assert seen[0] == T0 + timedelta(seconds=0.15)


def test_a_first_firing_after_start_returns_to_the_tick_grid() -> None:
    trigger = TickTrigger(EVERY, 1.0)
    started = T0 + timedelta(seconds=3.7)  # the first run, soon after the process started
    assert trigger.get_next_fire_time(started, started) == T0 + timedelta(seconds=EVERY + 1.0)


def test_standbys_fire_after_the_holder_within_the_tick() -> None:
    for every in (0.5, 2.0, 10.0, 60.0, 3600.0):
        holder, standby = tick_offset_seconds(every), standby_offset_seconds(every)
        assert 0 < holder < standby < every / 2


@pytest.mark.parametrize(("interval", "offset", "message"), [
    (0.0, 0.0, "interval_seconds must be positive"),
    (10.0, 10.0, "offset_seconds must be in"),
    (10.0, -1.0, "offset_seconds must be in"),
])
def test_a_tick_trigger_checks_its_arguments(interval: float, offset: float,
                                             message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TickTrigger(interval, offset)


# -- runs through leases ---------------------------------------------------------------------
def _schedulers(sessions: sessionmaker[Session], clock: Clock, monitors: list[FakeMonitor],
                missed: Any = None) -> list[MonitorScheduler]:
    return [MonitorScheduler({"m": monitor},  # type: ignore[dict-item]
                             leases=RunLeases(sessions, owner=f"p{i}", clock=clock),
                             ticks_missed=missed)
            for i, monitor in enumerate(monitors)]


def _tick(schedulers: list[MonitorScheduler]) -> list[int]:
    """Every process fires as the holder, then as a standby; the indexes of those that ran."""
    ran = [i for i, s in enumerate(schedulers) if s.run_tick("m", standby=False) is not None]
    ran += [i for i, s in enumerate(schedulers) if s.run_tick("m", standby=True) is not None]
    return ran


def test_three_schedulers_run_each_tick_once_and_one_takes_over(
    sessions: sessionmaker[Session],
) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    registry = CollectorRegistry()
    missed = ticks_missed_counter(registry)
    monitors = [FakeMonitor(EVERY) for _ in range(3)]
    schedulers = _schedulers(sessions, clock, monitors, missed)
    assert registry.get_sample_value("driftline_monitor_ticks_missed_total",
                                     {"model": "m"}) == 0.0
    ran: list[int] = []
    for _ in range(5):
        this_tick = _tick(schedulers)
        assert len(this_tick) == 1
        ran += this_tick
        clock.now += timedelta(seconds=EVERY)
    assert len(set(ran)) == 1  # the holder keeps the model while it lives
    survivors = [s for i, s in enumerate(schedulers) if i != ran[0]]
    after: list[int] = []
    for _ in range(3):  # the holder is gone: a standby takes the next tick, then keeps it
        this_tick = _tick(survivors)
        assert len(this_tick) == 1
        after += this_tick
        clock.now += timedelta(seconds=EVERY)
    assert len(set(after)) == 1
    assert sum(len(m.runs) for m in monitors) == 8
    assert registry.get_sample_value("driftline_monitor_ticks_missed_total",
                                     {"model": "m"}) == 0.0


def test_the_holder_runs_at_its_own_firing_and_standbys_wait(
    sessions: sessionmaker[Session],
) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    monitors = [FakeMonitor(EVERY) for _ in range(2)]
    holder, standby = _schedulers(sessions, clock, monitors)
    assert holder.run_tick("m", standby=False) is None  # not the holder of anything yet
    assert holder.run_tick("m") is not None
    assert holder.run_tick("m") is None  # this tick is done
    clock.now += timedelta(seconds=EVERY)
    assert standby.run_tick("m", standby=False) is None
    assert holder.run_tick("m", standby=False) is not None
    assert standby.run_tick("m") is None
    assert [len(m.runs) for m in monitors] == [2, 0]


def test_missed_ticks_are_counted_once(sessions: sessionmaker[Session]) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    registry = CollectorRegistry()
    missed = ticks_missed_counter(registry)
    schedulers = _schedulers(sessions, clock, [FakeMonitor(EVERY) for _ in range(2)], missed)
    assert schedulers[0].run_tick("m") is not None
    clock.now += timedelta(seconds=4 * EVERY)  # three ticks nobody ran
    assert _tick(schedulers) == [0]
    assert registry.get_sample_value("driftline_monitor_ticks_missed_total",
                                     {"model": "m"}) == 3.0


def test_the_lease_is_finished_with_the_runs_id(sessions: sessionmaker[Session]) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    scheduler = _schedulers(sessions, clock, [FakeMonitor(EVERY)])[0]
    summary = scheduler.run_tick("m")
    assert summary is not None
    with sessions() as session:
        lease = session.execute(select(RunLease)).scalar_one()
    assert (lease.run_id, lease.finished_at) == (summary.run_id, clock.now)


def test_a_store_that_does_not_answer_skips_the_tick(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'empty.db'}")  # never migrated
    monitor = FakeMonitor(EVERY)
    scheduler = MonitorScheduler({"m": monitor},  # type: ignore[dict-item]
                                 leases=RunLeases(make_session_factory(engine)))
    assert scheduler.run_tick("m") is None
    assert monitor.runs == []
    engine.dispose()


def test_the_first_run_comes_soon_after_start(sessions: sessionmaker[Session]) -> None:
    ran = threading.Event()

    class Signalling(FakeMonitor):
        def run(self) -> RunSummary:
            summary = super().run()
            ran.set()
            return summary

    monitor = Signalling(3600.0)
    scheduler = MonitorScheduler({"m": monitor},  # type: ignore[dict-item]
                                 leases=RunLeases(sessions), first_run_delay_seconds=0.01)
    scheduler.start()
    try:
        assert scheduler.running
        assert ran.wait(timeout=10)
    finally:
        scheduler.stop()
    assert not scheduler.running
    assert monitor.runs == ["run-0"]
