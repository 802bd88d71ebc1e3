"""The channel protocol the dispatcher calls."""

from __future__ import annotations

from typing import Protocol

from alerts.outbox import Delivery


class Channel(Protocol):
    """Sends one delivery; returns on success or raises `DeliveryError(retryable=...)`."""

    name: str

    def send(self, delivery: Delivery) -> None:
        """Make one attempt."""
