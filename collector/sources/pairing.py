"""Pairing a request with its response, whatever their order, with a bounded wait.

Loggers send the two halves of an inference as separate messages that may arrive in either
order, twice, or never (KServe's and Seldon's loggers are fire-and-forget). `Pairer` holds the
first half of each key until the other comes, `timeout_seconds` at most, `max_pending` keys at
most (the oldest is given up past it); a half seen again while its key waits, or after the
pair completed (the last `max_pending` completed keys are remembered), is a duplicate.

`OffsetBook` keeps, per partition, the offsets of the messages not yet done with (a half
waiting, a message whose events are not yet acknowledged), so that the offset committed is
never past the oldest of them: a crash loses nothing, and what is read again is deduplicated
by the events' deterministic ids.

Examples:
    >>> from collector.sources.base import Part
    >>> pairer = Pairer(timeout_seconds=60, max_pending=10)
    >>> response = Part("k1", "response", "v1", {"predictions": [1]}, "iris", None, None)
    >>> request = Part("k1", "request", "v1", {"instances": [[1]]}, "iris", None, None)
    >>> pairer.offer(response, ("t", 0, 5), now=0.0).status
    'waiting'
    >>> result = pairer.offer(request, ("t", 0, 6), now=1.0)
    >>> result.status, result.request.part is request, result.response.part is response
    ('paired', True, True)
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from collector.sources.base import Part

Position = tuple[str, int, int]  # topic, partition, offset
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Held:
    """A half waiting for its partner, with where it was read and when it arrived."""

    part: Part
    position: Position
    arrived: float


@dataclass(frozen=True)
class Offer:
    """What offering a half did: it waits, completed a pair, or was a duplicate."""

    status: Literal["waiting", "paired", "duplicate"]
    request: Held | None = None
    response: Held | None = None


class Pairer:
    """Pairs requests and responses by `Part.key` (see the module docstring)."""

    def __init__(self, *, timeout_seconds: float, max_pending: int) -> None:
        """Wait `timeout_seconds` for a partner; hold `max_pending` keys at most."""
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self.timeout_seconds = timeout_seconds
        self.max_pending = max_pending
        self._pending: OrderedDict[str, Held] = OrderedDict()  # arrival order
        self._completed: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        """Number of halves waiting."""
        return len(self._pending)

    def offer(self, part: Part, position: Position, *, now: float) -> Offer:
        """Offer one request or response half read at `position` at time `now`."""
        if part.role not in ("request", "response"):
            raise ValueError(f"only requests and responses pair, got {part.role!r}")
        if part.key in self._completed:
            return Offer("duplicate")
        waiting = self._pending.get(part.key)
        if waiting is not None:
            if waiting.part.role == part.role:
                return Offer("duplicate")
            del self._pending[part.key]
            self._remember(part.key)
            held = Held(part, position, now)
            if part.role == "request":
                return Offer("paired", request=held, response=waiting)
            return Offer("paired", request=waiting, response=held)
        self._pending[part.key] = Held(part, position, now)
        return Offer("waiting")

    def _remember(self, key: str) -> None:
        self._completed[key] = None
        while len(self._completed) > self.max_pending:
            self._completed.popitem(last=False)

    def expire(self, *, now: float) -> list[Held]:
        """Give up the halves that waited `timeout_seconds`, and the oldest past `max_pending`."""
        given_up: list[Held] = []
        while self._pending:
            key, held = next(iter(self._pending.items()))
            if now - held.arrived < self.timeout_seconds and len(self._pending) <= self.max_pending:
                break
            del self._pending[key]
            self._remember(key)  # its partner, arriving later, is not paired any more
            given_up.append(held)
        return given_up

    def drop(self, where: Callable[[Position], bool]) -> list[Held]:
        """Forget the halves read where `where` is true (their partition was revoked)."""
        gone = [key for key, held in self._pending.items() if where(held.position)]
        return [self._pending.pop(key) for key in gone]

    def clear(self) -> None:
        """Forget everything (the consumer reads again from the committed offsets)."""
        self._pending.clear()
        self._completed.clear()


class OffsetBook(Generic[K]):
    """Offsets in use per partition, and how far each partition may be committed."""

    def __init__(self) -> None:
        """An empty book."""
        self._uses: dict[K, dict[int, int]] = {}
        self._heaps: dict[K, list[int]] = {}
        self._next: dict[K, int] = {}

    def hold(self, partition: K, offset: int) -> None:
        """Mark `offset` of `partition` in use (once per use; `release` once per `hold`)."""
        uses = self._uses.setdefault(partition, {})
        if offset not in uses:
            heapq.heappush(self._heaps.setdefault(partition, []), offset)
        uses[offset] = uses.get(offset, 0) + 1
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def release(self, partition: K, offset: int) -> None:
        """One use of `offset` is over."""
        uses = self._uses.get(partition)
        if uses is None or offset not in uses:
            return
        uses[offset] -= 1
        if uses[offset] <= 0:
            del uses[offset]

    def committable(self, partition: K) -> int | None:
        """The offset to commit: the oldest in use, else one past the last seen."""
        if partition not in self._next:
            return None
        heap, uses = self._heaps.get(partition, []), self._uses.get(partition, {})
        while heap and heap[0] not in uses:
            heapq.heappop(heap)
        return heap[0] if heap else self._next[partition]

    def partitions(self) -> list[K]:
        """The partitions with offsets seen."""
        return list(self._next)

    def forget(self, partition: K) -> None:
        """Drop a partition (revoked: its next owner reads from the committed offset)."""
        self._uses.pop(partition, None)
        self._heaps.pop(partition, None)
        self._next.pop(partition, None)

    def in_use(self) -> int:
        """Number of offsets in use, all partitions together."""
        return sum(len(uses) for uses in self._uses.values())
