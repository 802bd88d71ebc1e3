"""What channels receive: frozen values, never database rows.

A `Message` is one delivery attempt's content (its id is the idempotency key, the same on
every attempt). For alerts its payload is a `Notification`: one transition of one alert
instance, with everything a channel renders (Slack blocks, an e-mail, an Alertmanager alert).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

NotificationStatus = Literal["firing", "resolved"]
ALERT_EVENT_TYPES = ("alert.firing", "alert.repeat", "alert.resolved")


@dataclass(frozen=True)
class Message:
    """One delivery to one channel: the id (idempotency key) and the exact JSON payload."""

    id: str
    channel: str
    event_type: str
    payload: str
    attempt: int = 1

    @property
    def body(self) -> bytes:
        """The exact bytes every attempt sends."""
        return self.payload.encode("utf-8")

    def data(self) -> dict[str, Any]:
        """The payload, parsed."""
        parsed: dict[str, Any] = json.loads(self.payload)
        return parsed


@dataclass(frozen=True)
class Notification:
    """One transition of one alert instance, as every channel receives it.

    `labels` identify the instance (alertname, model, severity, feature or segment where
    the rule has them, and the rule's extra labels); `fingerprint` is derived from them
    alone, so it is stable across runs and restarts. `values` are the numbers that
    breached (or recovered). `ends_at` is set on resolve.
    """

    event_type: str
    status: NotificationStatus
    fingerprint: str
    rule: str
    kind: str
    model: str
    severity: str
    labels: Mapping[str, str]
    summary: str
    description: str
    values: Mapping[str, Any]
    starts_at: str
    timestamp: str
    ends_at: str | None = None
    run_id: str | None = None
    run_url: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """The JSON object sent (webhook body; source of every other rendering)."""
        return {
            "type": self.event_type, "status": self.status, "fingerprint": self.fingerprint,
            "rule": self.rule, "kind": self.kind, "model": self.model,
            "severity": self.severity, "labels": dict(self.labels), "summary": self.summary,
            "description": self.description, "values": dict(self.values),
            "starts_at": self.starts_at, "ends_at": self.ends_at, "run_id": self.run_id,
            "run_url": self.run_url, "annotations": dict(self.annotations),
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> Notification:
        """Read a payload written by `to_payload`."""
        return cls(
            event_type=str(data["type"]), status=data["status"],
            fingerprint=str(data["fingerprint"]), rule=str(data["rule"]),
            kind=str(data["kind"]), model=str(data["model"]), severity=str(data["severity"]),
            labels={str(k): str(v) for k, v in dict(data["labels"]).items()},
            summary=str(data["summary"]), description=str(data["description"]),
            values=dict(data.get("values") or {}), starts_at=str(data["starts_at"]),
            timestamp=str(data["timestamp"]), ends_at=data.get("ends_at"),
            run_id=data.get("run_id"), run_url=data.get("run_url"),
            annotations={str(k): str(v) for k, v in dict(data.get("annotations") or {}).items()},
        )
