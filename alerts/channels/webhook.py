"""A signed JSON webhook (Standard Webhooks) over HTTP."""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from alerts.channels.http import post
from alerts.clock import utcnow
from alerts.errors import DeliveryError
from alerts.message import Message
from alerts.signing import sign_headers


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date).

    Examples:
        >>> from datetime import datetime, UTC
        >>> parse_retry_after("120", datetime(2026, 1, 1, tzinfo=UTC))
        120.0
        >>> parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", datetime(2026, 1, 1, tzinfo=UTC))
        60.0
        >>> parse_retry_after("soon", datetime(2026, 1, 1, tzinfo=UTC)) is None
        True
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - now).total_seconds(), 0.0)


_TEMPORARY_REDIRECTS = frozenset({302, 303, 307})


class WebhookChannel:
    """POSTs the delivery's JSON body, signed, to `url`; success is any 2xx.

    Redirects are never followed (a signed body must not be re-sent to an address the
    configuration did not name), so 3xx is a failure: a temporary redirect (302, 303,
    307) is retried like a 5xx, since the receiver may be back at its address later; a
    permanent one (301, 308) is not, and the error names the new location to configure.
    5xx, 429, timeouts and connection errors are retryable, other 4xx are not (Standard
    Webhooks spec, "Retry schedule").
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str,
        timeout_seconds: float = 10.0,
        name: str = "webhook",
        clock: Callable[[], datetime] = utcnow,
        client: httpx.Client | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must start with http:// or https://, got {url!r}")
        if not secret:
            raise ValueError("webhook secret must not be empty")
        self.url = url
        self.name = name
        self._secret = secret
        self._clock = clock
        self._client = client or httpx.Client(timeout=timeout_seconds, follow_redirects=False)

    def send(self, message: Message) -> None:
        """One attempt: sign with the attempt's time, POST, classify the outcome."""
        now = self._clock()
        body = message.body
        headers = sign_headers(message.id, now, body, self._secret)
        headers["content-type"] = "application/json"
        headers["user-agent"] = "driftline-webhook/1"
        response = post(self._client, self.url, body, headers, where=self.url)
        code = response.status_code
        if 200 <= code < 300:
            return
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        retryable = code >= 500 or code == 429 or code in _TEMPORARY_REDIRECTS
        problem = f"{self.url} answered {code}"
        if 300 <= code < 400:
            location = response.headers.get("location", "(no location)")
            problem += (f", a redirect to {location} (not followed: point the webhook at "
                        "its final address)")
        raise DeliveryError(problem, retryable=retryable, retry_after_seconds=retry_after,
                            status_code=code)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
