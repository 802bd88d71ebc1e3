"""One POST for the HTTP channels (webhook, Slack, Alertmanager), transport errors classified.

A timeout or a connection that cannot be made is retryable: the receiver may be back later.
What the receiver answered is each channel's to classify.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from alerts.errors import DeliveryError


def post(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str], *,
         where: str) -> httpx.Response:
    """POST `body` to `url`; `where` names the receiver in errors (never a secret URL).

    Raises:
        DeliveryError: retryable, on a timeout or a transport failure.
    """
    try:
        return client.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException as exc:
        raise DeliveryError(f"timeout posting to {where}", retryable=True) from exc
    except httpx.TransportError as exc:
        raise DeliveryError(f"cannot reach {where}: {type(exc).__name__}",
                            retryable=True) from exc
