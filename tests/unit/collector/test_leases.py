"""Run leases on SQLite (issue 12): one claimant per tick, takeover, missed ticks, renewal."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from collector.store import make_engine, make_session_factory, upgrade
from collector.store.leases import Claim, RunLease, RunLeases, tick_start

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)  # a tick start for every interval used here
EVERY = 10.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'leases.db'}")
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def _leases(sessions: sessionmaker[Session], owner: str, clock: Clock) -> RunLeases:
    return RunLeases(sessions, owner=owner, clock=clock)


def _rows(sessions: sessionmaker[Session]) -> list[RunLease]:
    with sessions() as session:
        return list(session.execute(select(RunLease).order_by(RunLease.tick_start)).scalars())


# -- tick numbering --------------------------------------------------------------------------
def test_every_instant_of_a_tick_names_the_same_tick() -> None:
    starts = {tick_start(T0 + timedelta(seconds=s), EVERY) for s in (0, 0.001, 5, 9.999999)}
    assert starts == {T0}
    assert tick_start(T0 + timedelta(seconds=10), EVERY) == T0 + timedelta(seconds=10)
    assert tick_start(T0 - timedelta(microseconds=1), EVERY) == T0 - timedelta(seconds=10)


def test_fractional_intervals_number_ticks_on_unix_time() -> None:
    at = datetime.fromtimestamp(1_700_000_000.7, UTC)
    assert tick_start(at, 1.5).timestamp() == pytest.approx(1_700_000_000.5)
    assert tick_start(at, 0.25).timestamp() == pytest.approx(1_700_000_000.5)


@pytest.mark.parametrize("interval", [0.0, -1.0, float("nan")])
def test_a_tick_needs_a_positive_interval(interval: float) -> None:
    with pytest.raises(ValueError, match="interval_seconds must be positive"):
        tick_start(T0, interval)


def test_a_tick_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        tick_start(datetime(2026, 11, 29, 10, 0), EVERY)  # noqa: DTZ001 - the bad input


# -- claims ----------------------------------------------------------------------------------
def test_one_of_several_processes_claims_a_tick(sessions: sessionmaker[Session]) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    claims = [_leases(sessions, f"p{i}", clock).claim("m", EVERY) for i in range(3)]
    won = [c for c in claims if c is not None]
    assert [c.owner for c in won] == ["p0"]
    assert won[0].tick_start == T0
    assert won[0].missed_ticks == 0
    assert won[0].lease_seconds == EVERY / 2
    assert [(r.model, r.tick_start, r.owner) for r in _rows(sessions)] == [("m", T0, "p0")]


def test_concurrent_claims_of_one_tick_have_one_winner(sessions: sessionmaker[Session]) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    contenders = [_leases(sessions, f"p{i}", clock) for i in range(8)]
    barrier = threading.Barrier(len(contenders))
    results: list[Claim | None] = []
    errors: list[BaseException] = []

    def contend(leases: RunLeases) -> None:
        barrier.wait()
        try:
            results.append(leases.claim("m", EVERY))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(c,)) for c in contenders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len([r for r in results if r is not None]) == 1
    assert len(_rows(sessions)) == 1


def test_models_are_claimed_independently(sessions: sessionmaker[Session]) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    first, second = _leases(sessions, "p1", clock), _leases(sessions, "p2", clock)
    assert first.claim("a", EVERY) is not None
    assert second.claim("b", EVERY) is not None
    assert second.claim("a", EVERY) is None


def test_a_late_run_still_claims_its_tick(sessions: sessionmaker[Session]) -> None:
    clock = Clock(T0 + timedelta(seconds=9.9))
    claim = _leases(sessions, "p1", clock).claim("m", EVERY)
    assert claim is not None
    assert claim.tick_start == T0


def test_the_next_tick_goes_to_whoever_claims_it_first(sessions: sessionmaker[Session]) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    first, second = _leases(sessions, "p1", clock), _leases(sessions, "p2", clock)
    claim = first.claim("m", EVERY)
    assert claim is not None
    first.finish(claim, "run-1")
    clock.now += timedelta(seconds=EVERY)
    taken = second.claim("m", EVERY)
    assert taken is not None
    assert (taken.owner, taken.tick_start, taken.missed_ticks) == ("p2", T0 + timedelta(
        seconds=EVERY), 0)
    assert first.claim("m", EVERY) is None
    rows = _rows(sessions)
    assert [(r.owner, r.run_id, r.finished_at is not None) for r in rows] == [
        ("p1", "run-1", True), ("p2", None, False)]


def test_a_host_whose_clock_is_behind_does_not_run_an_older_tick(
    sessions: sessionmaker[Session],
) -> None:
    ahead = Clock(T0 + timedelta(seconds=EVERY + 0.05))
    behind = Clock(T0 + timedelta(seconds=EVERY - 0.05))
    assert _leases(sessions, "ahead", ahead).claim("m", EVERY) is not None
    assert _leases(sessions, "behind", behind).claim("m", EVERY) is None


# -- runs longer than a tick, dead holders, missed ticks -----------------------------------
def test_a_running_holder_keeps_the_next_tick_from_starting_a_second_run(
    sessions: sessionmaker[Session],
) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    holder, other = _leases(sessions, "p1", clock), _leases(sessions, "p2", clock)
    claim = holder.claim("m", EVERY)
    assert claim is not None
    clock.now = T0 + timedelta(seconds=EVERY)  # still running: the lease is renewed
    assert holder.renew(claim)
    clock.now += timedelta(seconds=1)
    assert other.claim("m", EVERY) is None
    assert holder.claim("m", EVERY) is None  # nor a second run in the holder itself
    holder.finish(claim, "run-1")
    clock.now += timedelta(seconds=EVERY)  # the tick after: 1 missed while the run went on
    after = other.claim("m", EVERY)
    assert after is not None
    assert (after.missed_ticks, after.abandoned_by) == (1, None)


def test_a_dead_holder_loses_its_lease_before_the_next_tick(
    sessions: sessionmaker[Session],
) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    dead, alive = _leases(sessions, "dead", clock), _leases(sessions, "alive", clock)
    assert dead.claim("m", EVERY) is not None  # ...and never renews or finishes
    clock.now = T0 + timedelta(seconds=EVERY + 1)
    taken = alive.claim("m", EVERY)
    assert taken is not None
    assert taken.tick_start == T0 + timedelta(seconds=EVERY)
    assert (taken.missed_ticks, taken.abandoned_by) == (1, "dead")


def test_a_holder_that_dies_mid_run_is_replaced_within_two_ticks(
    sessions: sessionmaker[Session],
) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    dead, alive = _leases(sessions, "dead", clock), _leases(sessions, "alive", clock)
    claim = dead.claim("m", EVERY)
    assert claim is not None
    clock.now = T0 + timedelta(seconds=EVERY - 0.5)  # the last renewal, just before dying
    assert dead.renew(claim)
    clock.now = T0 + timedelta(seconds=EVERY + 1)
    assert alive.claim("m", EVERY) is None  # the lease still runs
    clock.now = T0 + timedelta(seconds=2 * EVERY + 1)
    taken = alive.claim("m", EVERY)
    assert taken is not None
    assert (taken.missed_ticks, taken.abandoned_by) == (2, "dead")


def test_ticks_nobody_claimed_are_counted_by_the_next_claimant(
    sessions: sessionmaker[Session],
) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    leases = _leases(sessions, "p1", clock)
    claim = leases.claim("m", EVERY)
    assert claim is not None
    leases.finish(claim, None)
    clock.now += timedelta(seconds=3 * EVERY + 4)
    later = leases.claim("m", EVERY)
    assert later is not None
    assert (later.missed_ticks, later.abandoned_by) == (2, None)


def test_renewal_and_finish_touch_only_the_owners_lease(sessions: sessionmaker[Session]) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    holder = _leases(sessions, "p1", clock)
    claim = holder.claim("m", EVERY)
    assert claim is not None
    impostor = Claim(model="m", tick_start=claim.tick_start, owner="p2",
                     lease_seconds=claim.lease_seconds)
    assert not holder.renew(impostor)
    holder.finish(impostor, "nope")
    assert _rows(sessions)[0].finished_at is None
    clock.now += timedelta(seconds=2)
    assert holder.renew(claim)
    assert _rows(sessions)[0].leased_until == clock.now + timedelta(seconds=EVERY / 2)
    holder.finish(claim, "run-1")
    assert not holder.renew(claim)  # finished: nothing left to renew
    row = _rows(sessions)[0]
    assert (row.run_id, row.finished_at, row.leased_until) == ("run-1", clock.now, clock.now)


def test_old_claims_are_deleted_by_later_claims(sessions: sessionmaker[Session]) -> None:
    clock = Clock(T0 + timedelta(seconds=1))
    leases = RunLeases(sessions, owner="p1", clock=clock, keep_seconds=3 * EVERY)
    for _ in range(6):
        claim = leases.claim("m", EVERY)
        assert claim is not None
        leases.finish(claim, None)
        clock.now += timedelta(seconds=EVERY)
    with sessions() as session:
        kept = session.execute(select(func.count()).select_from(RunLease)).scalar_one()
    assert kept == 3  # ticks that started less than keep_seconds before the last claim


def test_a_lease_and_its_retention_must_be_positive(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="keep_seconds must be positive"):
        RunLeases(sessions, keep_seconds=0)
    with pytest.raises(ValueError, match="lease_seconds must be positive"):
        RunLeases(sessions).claim("m", EVERY, lease_seconds=0)


def test_held_renews_the_lease_while_the_block_runs(sessions: sessionmaker[Session]) -> None:
    renewed = threading.Event()

    class Watched(RunLeases):
        def renew(self, claim: Claim) -> bool:
            ok = super().renew(claim)
            renewed.set()
            return ok

    leases = Watched(sessions, owner="p1")
    claim = leases.claim("m", 0.08)  # renewed every 10 ms
    assert claim is not None
    with leases.held(claim):
        assert renewed.wait(timeout=10)
    renewed.clear()
    assert not renewed.wait(timeout=0.05)  # the renewing thread has stopped
