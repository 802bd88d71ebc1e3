"""Time in one place: aware UTC now, and ISO 8601 text with a `Z`.

Shared by `alerts` and `collector` (which imports `alerts`), so that the event codec, the
webhook payloads and the HTTP API write timestamps one way.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the default clock of every component)."""
    return datetime.now(UTC)


def iso_z(moment: datetime, timespec: str = "auto") -> str:
    """`moment` in UTC as ISO 8601 with `Z` for the zone; naive times are taken as UTC.

    Examples:
        >>> iso_z(datetime(2026, 11, 24, 10, 0, 0, 123000, tzinfo=UTC), "milliseconds")
        '2026-11-24T10:00:00.123Z'
        >>> iso_z(datetime(2026, 11, 24, 10, 0))
        '2026-11-24T10:00:00Z'
    """
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
