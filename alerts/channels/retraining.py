"""The retraining webhook: a signed webhook that carries `model.drift_detected` events."""

from __future__ import annotations

from alerts.channels.webhook import WebhookChannel


class RetrainingWebhookChannel(WebhookChannel):
    """A `WebhookChannel` for the model's retraining endpoint (see docs/events.md)."""
