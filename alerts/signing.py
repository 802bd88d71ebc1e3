"""Standard Webhooks signatures (webhook-id, webhook-timestamp, webhook-signature).

Signed content is ``{id}.{timestamp}.{body}`` with HMAC-SHA256 under the
base64 secret after its ``whsec_`` prefix (Standard Webhooks spec, "Signature
scheme"); the `standardwebhooks` package computes it, so receivers verifying
with any Standard Webhooks library agree with us.
"""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks import Webhook


def sign_headers(msg_id: str, timestamp: datetime, body: bytes, secret: str) -> dict[str, str]:
    """The three signature headers for one attempt.

    Examples:
        >>> from datetime import datetime, UTC
        >>> h = sign_headers("msg_1", datetime(2026, 11, 24, tzinfo=UTC), b"{}",
        ...                  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        >>> sorted(h), h["webhook-signature"].startswith("v1,")
        (['webhook-id', 'webhook-signature', 'webhook-timestamp'], True)
    """
    moment = timestamp.astimezone(UTC)
    signature = Webhook(secret).sign(msg_id, moment, body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }
