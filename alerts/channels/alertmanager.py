"""Alertmanager: each notification pushed as one alert to the API v2 (`POST /api/v2/alerts`).

Alertmanager is stateless about its clients: an alert is firing until its `endsAt`, and a
client must re-send firing alerts regularly (Alertmanager docs/alerts_api.md). driftline
does what Prometheus does (rules/alerting.go `sendAlerts`): the rules engine re-sends
every firing alert on every run while it fires (`alert.repeat`), each with
`endsAt = now + 4 * the re-send interval`, so that two lost sends do not resolve it; a
resolved alert carries its real `endsAt`. If driftline stops sending, Alertmanager
resolves the alert by itself once `endsAt` has passed.

Identity is the label set alone (Prometheus notifier/alert.go): labels are the instance's
labels, never a number that changes per run; values, summary and description are
annotations. For Alertmanager in HA, configure one channel per instance: Prometheus sends
to each one, never through a load balancer (docs/high_availability.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from alerts.channels.http import post
from alerts.channels.slack import format_value
from alerts.channels.webhook import parse_retry_after
from alerts.clock import iso_z, utcnow
from alerts.errors import DeliveryError
from alerts.message import Message, Notification

DEFAULT_RESEND_HINT_SECONDS = 300.0


def alertmanager_alert(notification: Notification, *, now: datetime,
                       resend_hint_seconds: float = DEFAULT_RESEND_HINT_SECONDS
                       ) -> dict[str, Any]:
    """One notification as an Alertmanager API v2 alert (`postableAlert`).

    Args:
        notification: The transition to send.
        now: The time of this attempt (firing alerts end 4 * `resend_hint_seconds` later).
        resend_hint_seconds: The longest time between two sends of a firing alert.

    Returns:
        The alert object; the request body is a JSON array of them.

    Examples:
        >>> from datetime import datetime, UTC
        >>> n = Notification(event_type="alert.firing", status="firing", fingerprint="9f2c",
        ...     rule="accuracy_low", kind="performance", model="fraud", severity="critical",
        ...     labels={}, summary="accuracy 0.87 < 0.9", description="",
        ...     values={"accuracy": 0.87}, starts_at="2026-11-24T10:00:00Z",
        ...     timestamp="2026-11-24T10:00:00Z")
        >>> alert = alertmanager_alert(n, now=datetime(2026, 11, 24, 10, tzinfo=UTC))
        >>> alert["labels"], alert["endsAt"]
        ({'alertname': 'accuracy_low', 'model': 'fraud', 'severity': 'critical'}, \
'2026-11-24T10:20:00Z')
    """
    n = notification
    # The instance's labels are its identity as the rules engine fixed it; the three that
    # every driftline alert has are filled in when a payload lacks them.
    labels = {"alertname": n.rule, "model": n.model, "severity": n.severity, **n.labels}
    annotations = dict(n.annotations)
    annotations["summary"] = n.summary
    if n.description:
        annotations["description"] = n.description
    if n.values:
        annotations["values"] = ", ".join(f"{k}={format_value(v)}" for k, v in n.values.items())
    if n.status == "resolved":
        ends_at = n.ends_at or iso_z(now)
    else:
        ends_at = iso_z(now + timedelta(seconds=4 * resend_hint_seconds))
    alert: dict[str, Any] = {"labels": {k: v for k, v in labels.items() if v != ""},
                             "annotations": annotations, "startsAt": n.starts_at,
                             "endsAt": ends_at}
    if n.run_url:
        alert["generatorURL"] = n.run_url
    return alert


class AlertmanagerChannel:
    """Pushes each alert notification to one Alertmanager's API v2.

    2xx is success; 5xx, 429, timeouts and connection errors are retried; other answers
    (400: Alertmanager refused the alert, e.g. empty labels or `endsAt` before
    `startsAt`) are not, and the error quotes Alertmanager's reason.

    Args:
        url: The Alertmanager's base URL, e.g. `http://alertmanager:9093` (with its
            `--web.route-prefix`, if any).
        name: The channel's name in the configuration.
        timeout_seconds: Timeout of one request.
        client: An HTTP client to use instead of a new one (tests pass a mock transport).
        resend_hint_seconds: The longest time between two sends of a firing alert: at least
            the longest run interval of the models whose rules name this channel. A firing
            alert's `endsAt` is now + 4 * this, as Prometheus sets it with
            max(evaluation interval, resend delay).
        clock: The current time.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        timeout_seconds: float = 10.0,
        client: httpx.Client | None = None,
        resend_hint_seconds: float = DEFAULT_RESEND_HINT_SECONDS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Alertmanager url must start with http:// or https://, got {url!r}")
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        if resend_hint_seconds <= 0:
            raise ValueError(f"resend_hint_seconds must be positive, got {resend_hint_seconds}")
        self.name = name
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.resend_hint_seconds = resend_hint_seconds
        self._clock = clock
        self._client = client or httpx.Client(timeout=timeout_seconds, follow_redirects=False)

    def send(self, message: Message) -> None:
        """One attempt: render the alert with this attempt's time, POST it, classify."""
        now = self._clock()
        alert = alertmanager_alert(Notification.from_payload(message.data()), now=now,
                                   resend_hint_seconds=self.resend_hint_seconds)
        body = json.dumps([alert], ensure_ascii=False).encode("utf-8")
        response = post(self._client, self.url, body, {
            "content-type": "application/json", "user-agent": "driftline-alertmanager/1"},
            where=self.url)
        code = response.status_code
        if 200 <= code < 300:
            return
        reason = " ".join(response.text.split())[:300] or "(empty body)"
        raise DeliveryError(f"{self.url} answered {code}: {reason}",
                            retryable=code >= 500 or code == 429,
                            retry_after_seconds=parse_retry_after(
                                response.headers.get("retry-after"), now),
                            status_code=code)

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()
