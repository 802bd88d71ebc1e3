"""The dispatcher: claims due deliveries from the outbox and sends them, with retries.

Each delivery is claimed with a lease by a conditional UPDATE (atomic on SQLite
and PostgreSQL alike), sent with no database transaction open, and then marked
delivered, rescheduled with backoff, or failed. A process that dies mid-send
leaves the lease to expire; the delivery is then sent again under the same
webhook-id (at-least-once; receivers dedupe on webhook-id).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import func, or_, select, true, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from alerts.channels.base import Channel
from alerts.clock import utcnow
from alerts.errors import DeliveryError
from alerts.message import Message
from alerts.outbox import Delivery, DeliveryStatus

logger = logging.getLogger(__name__)

Outcome = Literal["delivered", "retry", "failed"]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts.

    Args:
        base_seconds: Delay before the second attempt (before jitter).
        max_backoff_seconds: Cap on any one delay.
        max_attempts: After this many failed attempts the delivery is `failed`.
        lease_seconds: How long a claimed delivery is reserved for its sender.
    """

    base_seconds: float = 5.0
    max_backoff_seconds: float = 3600.0
    max_attempts: int = 25
    lease_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.max_backoff_seconds < self.base_seconds:
            raise ValueError(
                f"need 0 < base_seconds ({self.base_seconds}) <= max_backoff_seconds "
                f"({self.max_backoff_seconds})"
            )
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def delay_seconds(self, attempts: int, rng: random.Random) -> float:
        """Delay after the `attempts`-th failure: half fixed, half jitter.

        Examples:
            >>> policy = RetryPolicy(base_seconds=2, max_backoff_seconds=60)
            >>> 4.0 <= policy.delay_seconds(3, random.Random(0)) <= 8.0
            True
        """
        ceiling = min(self.max_backoff_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass(frozen=True)
class _Claimed:
    id: str
    channel: str
    event_type: str
    payload: str
    attempts: int


class Dispatcher:
    """Sends due deliveries in its own daemon thread; never blocks its caller."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        channels: Mapping[str, Channel],
        *,
        policy: RetryPolicy | None = None,
        on_outcome: Callable[[str, Outcome], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        poll_interval_seconds: float = 1.0,
        batch_size: int = 20,
        rng: random.Random | None = None,
    ) -> None:
        self._sessions = session_factory
        self._channels = dict(channels)
        self.policy = policy or RetryPolicy()
        self._on_outcome = on_outcome
        self._clock = clock
        self._poll = poll_interval_seconds
        self._batch = batch_size
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start one sending thread per channel (and one for deliveries to unknown channels).

        A channel whose receiver is slow or down then delays only its own deliveries.
        """
        if self._threads:
            return
        self._stop.clear()
        for channel in [*self._channels, None]:
            thread = threading.Thread(target=self._loop, args=(channel,), daemon=True,
                                      name=f"driftline-dispatcher-{channel or 'other'}")
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Stop after the attempts in progress (if any)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout_seconds)
        self._threads = []

    def _loop(self, channel: str | None) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once(channel, unconfigured=channel is None)
            except Exception:  # the store may be briefly unreachable; try again next tick
                logger.warning("dispatcher pass failed", exc_info=True)
                sent = 0
            if sent == 0:
                self._stop.wait(self._poll)

    # -- work -----------------------------------------------------------------------------------
    def pending_count(self) -> int:
        """Deliveries still waiting to be sent."""
        with self._sessions() as session:
            query = select(func.count()).select_from(Delivery).where(
                Delivery.status == DeliveryStatus.PENDING.value)
            return int(session.execute(query).scalar_one())

    def run_once(self, channel: str | None = None, *, unconfigured: bool = False) -> int:
        """Send the deliveries due now, up to the batch size; returns how many were tried.

        Those of `channel` only when given; with `unconfigured`, those of channels this
        dispatcher has no sender for (they fail with a retryable error until one exists).
        """
        claimed = self._claim(channel, unconfigured=unconfigured)
        for delivery in claimed:
            if self._stop.is_set() and self._threads:
                break
            self._attempt(delivery)
        return len(claimed)

    def _claim(self, channel: str | None = None, *, unconfigured: bool = False
               ) -> list[_Claimed]:
        now = self._clock()
        lease_end = now + timedelta(seconds=self.policy.lease_seconds)
        due = (Delivery.status == DeliveryStatus.PENDING.value) & (Delivery.next_attempt_at <= now)
        free = or_(Delivery.claimed_until.is_(None), Delivery.claimed_until < now)
        mine: ColumnElement[bool]
        if unconfigured:
            mine = Delivery.channel.not_in(list(self._channels))
        elif channel is not None:
            mine = Delivery.channel == channel
        else:
            mine = true()
        claimed: list[_Claimed] = []
        with self._sessions.begin() as session:
            candidates = session.execute(
                select(Delivery.id, Delivery.channel, Delivery.event_type, Delivery.payload,
                       Delivery.attempts)
                .where(due, free, mine).order_by(Delivery.next_attempt_at).limit(self._batch)
            ).all()
            for row in candidates:
                # The conditional update is the claim: only one claimant sees rowcount 1.
                result = session.execute(
                    update(Delivery).where(Delivery.id == row.id, due, free)
                    .values(claimed_until=lease_end)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(_Claimed(row.id, row.channel, row.event_type, row.payload,
                                            row.attempts))
        return claimed

    def _attempt(self, claimed: _Claimed) -> None:
        channel = self._channels.get(claimed.channel)
        error: DeliveryError | None = None
        if channel is None:
            error = DeliveryError(f"channel {claimed.channel!r} is not configured", retryable=True)
        else:
            attempt = Message(id=claimed.id, channel=claimed.channel,
                              event_type=claimed.event_type, payload=claimed.payload,
                              attempt=claimed.attempts + 1)
            try:
                channel.send(attempt)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a channel bug must not kill the dispatcher
                error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
        self._record(claimed, error)

    def _record(self, claimed: _Claimed, error: DeliveryError | None) -> None:
        now = self._clock()
        attempts = claimed.attempts + 1
        values: dict[str, object] = {"attempts": attempts, "claimed_until": None}
        outcome: Outcome
        if error is None:
            outcome = "delivered"
            values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now,
                          last_error=None, last_status_code=None)
        elif error.retryable and attempts < self.policy.max_attempts:
            outcome = "retry"
            delay = self.policy.delay_seconds(attempts, self._rng)
            if error.retry_after_seconds is not None:
                delay = max(delay, min(error.retry_after_seconds, self.policy.max_backoff_seconds))
            values.update(next_attempt_at=now + timedelta(seconds=delay),
                          last_error=str(error)[:2000], last_status_code=error.status_code)
        else:
            outcome = "failed"
            values.update(status=DeliveryStatus.FAILED.value, last_error=str(error)[:2000],
                          last_status_code=error.status_code)
        with self._sessions.begin() as session:
            session.execute(update(Delivery).where(Delivery.id == claimed.id).values(**values)
                            .execution_options(synchronize_session=False))
        log = logger.info if outcome == "delivered" else logger.warning
        log("delivery attempt", extra={"delivery": claimed.id, "channel": claimed.channel,
                                       "outcome": outcome, "attempt": attempts,
                                       "error": None if error is None else str(error)})
        if self._on_outcome is not None:
            self._on_outcome(claimed.channel, outcome)
