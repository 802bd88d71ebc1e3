"""The alerts package's exception hierarchy."""

from __future__ import annotations


class AlertError(Exception):
    """Root of every error the alerts package raises on purpose."""


class DeliveryError(AlertError):
    """A delivery attempt failed; `retryable` says whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after_seconds: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after_seconds = retry_after_seconds
        self.status_code = status_code
