"""The collector's exception hierarchy: one root, one leaf per failure."""

from __future__ import annotations

# An undecodable event is the event codec's error, raised by `driftline_sidecar` (where the codec
# lives, shared with model servers); it is a `SidecarError`, not a `CollectorError`, and is named
# here for the collector modules that catch it.
from driftline_sidecar import EventDecodeError

__all__ = ["CollectorError", "ConfigError", "EventDecodeError", "ReferenceDataError", "StoreError"]


class CollectorError(Exception):
    """Root of every error the collector raises on purpose."""


class ConfigError(CollectorError):
    """The configuration file is missing, unreadable or invalid.

    `problems` holds one line per problem found (the message names the first).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class ReferenceDataError(CollectorError):
    """A model's reference dataset cannot be read or does not match its features."""


class StoreError(CollectorError):
    """The store cannot be reached or a write failed."""
