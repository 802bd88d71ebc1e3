"""Delivery channels: each turns a delivery into one attempt, or raises DeliveryError."""

from alerts.channels.base import Channel

__all__ = ["Channel"]
