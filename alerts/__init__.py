"""driftline alerts: the durable outbox, the dispatcher with retries, signing and channels."""

from alerts.dispatcher import Dispatcher, RetryPolicy
from alerts.errors import AlertError, DeliveryError
from alerts.outbox import Delivery, DeliveryStatus, enqueue, in_cooldown

__all__ = [
    "AlertError",
    "Delivery",
    "DeliveryError",
    "DeliveryStatus",
    "Dispatcher",
    "RetryPolicy",
    "enqueue",
    "in_cooldown",
]
