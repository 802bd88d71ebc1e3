"""The channel protocol the dispatcher calls."""

from __future__ import annotations

from typing import Protocol

from alerts.message import Message


class Channel(Protocol):
    """Sends one delivery; returns on success or raises `DeliveryError(retryable=...)`."""

    name: str

    def send(self, message: Message) -> None:
        """Make one attempt."""
