"""The collector's exception hierarchy: one root, one leaf per failure."""

from __future__ import annotations


class CollectorError(Exception):
    """Root of every error the collector raises on purpose."""


class ConfigError(CollectorError):
    """The configuration file is missing, unreadable or invalid.

    `problems` holds one line per problem found (the message names the first).
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class EventDecodeError(CollectorError):
    """An event could not be decoded; `reason` is the dead-letter reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ReferenceDataError(CollectorError):
    """A model's reference dataset cannot be read or does not match its features."""


class StoreError(CollectorError):
    """The store cannot be reached or a write failed."""
