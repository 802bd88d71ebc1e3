"""The sidecar's exception hierarchy: one root, one leaf per failure."""

from __future__ import annotations


class SidecarError(Exception):
    """Root of every error `driftline_sidecar` raises on purpose."""


class EventDecodeError(SidecarError):
    """An event could not be encoded or decoded; `reason` is the dead-letter reason code.

    Args:
        reason: One of `DEAD_LETTER_REASONS`, written as the dead letter's reason header.
        message: What was wrong, naming the field but never its value.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
