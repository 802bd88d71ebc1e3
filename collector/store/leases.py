"""Run leases: each model's scheduled tick runs once across every collector on one database.

Every process keeps its own APScheduler (job stores must never be shared, APScheduler 3.x
FAQ) and, on each tick of a model's job, first claims the tick here. Ticks are numbered
from the wall clock, `floor(unix_time / every_seconds)`, so every process names the same
tick the same way; the claim is one `INSERT ... SELECT ... WHERE NOT EXISTS ... ON CONFLICT
DO NOTHING` on the primary key (model, tick_start), atomic on PostgreSQL and SQLite alike,
so only one inserter runs the tick. The statement refuses the tick too while another run of
the model still holds an unexpired lease (a run longer than its interval), so runs of one
model never overlap, across processes as within one.

A holder renews its lease while its run goes on; when it dies, the lease expires and the next
tick goes to whichever process claims it first. A tick that nobody ran (no claim at all, or a
holder that died before finishing) is counted by the claimant of the next one.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Index, String, and_, delete, exists, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from alerts.clock import utcnow
from alerts.outbox import AwareDateTime as UtcDateTime
from collector.store.models import Base

logger = logging.getLogger(__name__)

# Claims older than this are deleted by the claimant of a later tick of the same model.
KEEP_SECONDS = 86_400.0


class RunLease(Base):
    """One claimed tick of one model: who runs it, until when, and whether it finished."""

    __tablename__ = "run_leases"
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    tick_start: Mapped[datetime] = mapped_column(UtcDateTime(), primary_key=True)
    owner: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    leased_until: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    run_id: Mapped[str | None] = mapped_column(String(40))

    # The claim looks for an unfinished run of the model; this keeps that look short.
    __table_args__ = (Index("ix_run_leases_open", "model", "finished_at"),)


def tick_start(at: datetime, interval_seconds: float) -> datetime:
    """Start of the tick that contains `at`: the same instant in every process.

    Examples:
        >>> tick_start(datetime(2026, 11, 29, 10, 0, 59, tzinfo=UTC), 60.0).isoformat()
        '2026-11-29T10:00:00+00:00'
        >>> tick_start(datetime(2026, 11, 29, 10, 0, 1, 600000, tzinfo=UTC), 1.5).isoformat()
        '2026-11-29T10:00:01.500000+00:00'
    """
    if not interval_seconds > 0:
        raise ValueError(f"interval_seconds must be positive, got {interval_seconds!r}")
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: ticks are numbered on UTC wall-clock time")
    index = math.floor(at.timestamp() / interval_seconds)
    return datetime.fromtimestamp(index * interval_seconds, UTC)


def process_owner() -> str:
    """A name for this process in the leases table: host, pid and a random suffix."""
    return f"{socket.gethostname()[:150]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claim:
    """A tick this process won and must run.

    Attributes:
        model: The model's name.
        tick_start: Start of the claimed tick (wall clock, UTC).
        owner: This process's name in the leases table.
        lease_seconds: How long each renewal of the lease lasts.
        missed_ticks: Ticks since the model's previous claim that had no finished run: ones
            nobody claimed within their interval, and the previous one when its holder died
            (its lease expired unfinished).
        abandoned_by: Owner of the previous tick when it died before finishing, else None.
    """

    model: str
    tick_start: datetime
    owner: str
    lease_seconds: float
    missed_ticks: int = 0
    abandoned_by: str | None = None


class RunLeases:
    """Claims, renews and finishes run leases in the store (PostgreSQL or SQLite)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        keep_seconds: float = KEEP_SECONDS,
    ) -> None:
        if not keep_seconds > 0:
            raise ValueError(f"keep_seconds must be positive, got {keep_seconds!r}")
        self._sessions = session_factory
        self.owner = owner or process_owner()
        self._clock = clock
        self._keep = timedelta(seconds=keep_seconds)

    def current_tick(self, interval_seconds: float) -> datetime:
        """Start of the tick the clock is in now."""
        return tick_start(self._clock(), interval_seconds)

    def claim(self, model: str, interval_seconds: float, *,
              lease_seconds: float | None = None) -> Claim | None:
        """Claim the current tick of `model`; None when another process has it or is busy.

        Args:
            model: The model's name.
            interval_seconds: The model's schedule; ticks are `interval_seconds` long.
            lease_seconds: Length of the lease (renewed while the run goes on); half the
                interval by default, so that a holder that dies right after its claim has
                lost the lease before the next tick starts.
        """
        lease = interval_seconds / 2 if lease_seconds is None else lease_seconds
        if not lease > 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds!r}")
        now = self._clock()
        start = tick_start(now, interval_seconds)
        table = RunLease.__table__
        newer_or_same = select(table.c.model).where(
            table.c.model == model, table.c.tick_start >= start)
        running = select(table.c.model).where(
            table.c.model == model, table.c.finished_at.is_(None), table.c.leased_until > now)
        row = select(
            literal(model, String()), literal(start, UtcDateTime()),
            literal(self.owner, String()), literal(now, UtcDateTime()),
            literal(now + timedelta(seconds=lease), UtcDateTime()),
        ).where(~exists(newer_or_same), ~exists(running))
        with self._sessions.begin() as session:
            # Written first, so that on SQLite the transaction starts as a writer and waits
            # on busy_timeout instead of failing on a stale read snapshot.
            statement = _insert(session).from_select(
                ["model", "tick_start", "owner", "claimed_at", "leased_until"], row,
            ).on_conflict_do_nothing(index_elements=["model", "tick_start"])
            won = session.execute(statement.returning(table.c.model)).first() is not None
            if not won:
                self._log_refusal(session, model, start, now)
                return None
            previous = session.execute(
                select(RunLease).where(RunLease.model == model, RunLease.tick_start < start)
                .order_by(RunLease.tick_start.desc()).limit(1)
            ).scalars().first()
            session.execute(delete(RunLease).where(
                RunLease.model == model, RunLease.tick_start < now - self._keep))
        missed, abandoned_by = 0, None
        if previous is not None:
            gap = (start - previous.tick_start).total_seconds() / interval_seconds
            missed = max(round(gap) - 1, 0)
            if previous.finished_at is None:
                missed += 1
                abandoned_by = previous.owner
        return Claim(model=model, tick_start=start, owner=self.owner, lease_seconds=lease,
                     missed_ticks=missed, abandoned_by=abandoned_by)

    def _log_refusal(self, session: Session, model: str, start: datetime,
                     now: datetime) -> None:
        latest = session.execute(
            select(RunLease).where(RunLease.model == model)
            .order_by(RunLease.tick_start.desc()).limit(1)
        ).scalars().first()
        if latest is None or latest.tick_start >= start:
            logger.debug("tick claimed elsewhere", extra={"model": model,
                                                          "tick_start": start.isoformat()})
            return
        logger.info("run skipped, the previous run of the model is still going", extra={
            "model": model, "tick_start": start.isoformat(), "holder": latest.owner,
            "held_since": latest.tick_start.isoformat(),
            "leased_for_seconds": round((latest.leased_until - now).total_seconds(), 3)})

    def renew(self, claim: Claim) -> bool:
        """Extend the lease by `claim.lease_seconds` from now; False when it is no longer ours."""
        now = self._clock()
        with self._sessions.begin() as session:
            result = session.execute(
                update(RunLease).where(_mine(claim), RunLease.finished_at.is_(None))
                .values(leased_until=now + timedelta(seconds=claim.lease_seconds))
                .execution_options(synchronize_session=False))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def finish(self, claim: Claim, run_id: str | None) -> None:
        """Mark the tick done (with the run's id when there was one) and release the lease."""
        now = self._clock()
        with self._sessions.begin() as session:
            session.execute(
                update(RunLease).where(_mine(claim))
                .values(finished_at=now, leased_until=now, run_id=run_id)
                .execution_options(synchronize_session=False))

    @contextmanager
    def held(self, claim: Claim) -> Iterator[None]:
        """Renew the lease in a background thread while the block runs."""
        stop = threading.Event()
        every = claim.lease_seconds / 4

        def renew_until_stopped() -> None:
            while not stop.wait(every):
                try:
                    if not self.renew(claim):
                        logger.warning("run lease lost", extra={
                            "model": claim.model, "tick_start": claim.tick_start.isoformat()})
                        return
                except Exception:  # the store may be briefly unreachable; try again
                    logger.warning("run lease not renewed", exc_info=True,
                                   extra={"model": claim.model})

        thread = threading.Thread(target=renew_until_stopped, daemon=True,
                                  name=f"driftline-lease-{claim.model}")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=10)


def _mine(claim: Claim) -> ColumnElement[bool]:
    return and_(RunLease.model == claim.model, RunLease.tick_start == claim.tick_start,
                RunLease.owner == claim.owner)


def _insert(session: Session) -> postgresql.Insert | sqlite.Insert:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(RunLease)
    if dialect == "sqlite":
        return sqlite.insert(RunLease)
    raise ValueError(f"unsupported database dialect {dialect!r}: use sqlite or postgresql")
