"""Alert state: inactive → pending → firing → resolved, stored with its history.

`advance` is the pure state machine of one instance; `apply_run` evaluates a model's rules
on a finished run inside the caller's transaction (the run's own), updates the stored
instances, records the history and enqueues one notification per transition per channel in
the durable outbox. So a crash either keeps the run, its state and its notifications, or
none of them: a restart neither repeats a notification nor forgets a pending count.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from alerts.clock import iso_z
from alerts.message import Notification
from alerts.outbox import AwareDateTime, Base, enqueue
from alerts.rules import AlertRule, Observation, RunSnapshot, render

State = Literal["inactive", "pending", "firing"]
Event = Literal["firing", "repeat", "resolved", "refresh"]


@dataclass(frozen=True)
class InstanceState:
    """Where one alert instance stands between runs."""

    state: State = "inactive"
    breaches: int = 0
    active_since: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    silenced_until: datetime | None = None
    missed_while_silenced: bool = False


def advance(previous: InstanceState, breached: bool | None, now: datetime, rule: AlertRule
            ) -> tuple[InstanceState, list[Event]]:
    """One run's step of the state machine; returns the new state and what to send.

    - `None` (the run says nothing: failed, no labels yet) changes nothing.
    - A breach counts; `for_runs` consecutive breaches fire. A clear run before that
      returns to inactive silently (a pending alert never notifies).
    - Firing and still breached: `repeat` once `repeat_interval_seconds` passed since the
      last notification, and `refresh` every run (Alertmanager needs re-sending).
    - Firing and clear: resolved (back to inactive), notified when `notify_resolved`.
    - While silenced nothing is notified; the first run after the silence that is still
      firing notifies again.

    Examples:
        >>> from datetime import UTC
        >>> rule = AlertRule(name="r", kind="dataset_drift", model="m", for_runs=2)
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> s, events = advance(InstanceState(), True, t, rule)
        >>> s.state, events
        ('pending', [])
        >>> s, events = advance(s, True, t, rule)
        >>> s.state, events
        ('firing', ['firing'])
        >>> s, events = advance(s, False, t, rule)
        >>> s.state, events
        ('inactive', ['resolved'])
    """
    if breached is None:
        return previous, []
    silenced = previous.silenced_until is not None and now < previous.silenced_until
    if not breached:
        if previous.state == "firing":
            after = InstanceState(resolved_at=now, silenced_until=previous.silenced_until,
                                  last_notified_at=previous.last_notified_at)
            return after, (["resolved"] if rule.notify_resolved and not silenced else [])
        return InstanceState(silenced_until=previous.silenced_until,
                             resolved_at=previous.resolved_at,
                             last_notified_at=previous.last_notified_at), []
    breaches = previous.breaches + 1
    active_since = previous.active_since or now
    if previous.state != "firing":
        if breaches < rule.for_runs:
            return replace(previous, state="pending", breaches=breaches,
                           active_since=active_since), []
        fired = replace(previous, state="firing", breaches=breaches, active_since=active_since,
                        fired_at=now, resolved_at=None)
        if silenced:
            return replace(fired, missed_while_silenced=True), []
        return replace(fired, last_notified_at=now, missed_while_silenced=False), ["firing"]
    state = replace(previous, breaches=breaches)
    if silenced:
        return replace(state, missed_while_silenced=True), []
    if previous.missed_while_silenced:
        return (replace(state, last_notified_at=now, missed_while_silenced=False),
                ["repeat", "refresh"])
    interval = rule.repeat_interval_seconds
    last = previous.last_notified_at
    if interval is not None and (last is None or now - last >= timedelta(seconds=interval)):
        return replace(state, last_notified_at=now), ["repeat", "refresh"]
    return state, ["refresh"]


# -- storage ----------------------------------------------------------------------------------
class AlertInstance(Base):
    """The stored state of one alert instance (rule, model, and feature where the rule has one)."""

    __tablename__ = "alert_instances"
    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    breaches: Mapped[int] = mapped_column(Integer)
    active_since: Mapped[datetime | None] = mapped_column(AwareDateTime())
    fired_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    last_notified_at: Mapped[datetime | None] = mapped_column(AwareDateTime())
    silenced_until: Mapped[datetime | None] = mapped_column(AwareDateTime())
    missed_while_silenced: Mapped[bool] = mapped_column(Boolean, default=False)
    values: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    summary: Mapped[str | None] = mapped_column(Text)
    last_run_id: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime())

    __table_args__ = (Index("ix_alert_instances_model_state", "model", "state"),)

    def snapshot(self) -> InstanceState:
        """The row as the state machine's value."""
        return InstanceState(
            state=self.state, breaches=self.breaches,  # type: ignore[arg-type]
            active_since=self.active_since, fired_at=self.fired_at,
            resolved_at=self.resolved_at, last_notified_at=self.last_notified_at,
            silenced_until=self.silenced_until,
            missed_while_silenced=bool(self.missed_while_silenced))


class AlertTransition(Base):
    """One change of state of one alert instance (the history)."""

    __tablename__ = "alert_transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(AwareDateTime())
    run_id: Mapped[str | None] = mapped_column(String(40))
    values: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (Index("ix_alert_transitions_at", "at"),)


def identity_labels(rule: AlertRule, key: Mapping[str, str]) -> dict[str, str]:
    """The labels that identify an instance (and name it in every channel)."""
    labels = {"alertname": rule.name, "model": rule.model, "severity": rule.severity,
              "kind": rule.kind}
    labels.update(rule.labels)
    labels.update(key)
    return labels


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable id of an instance from its labels alone (sorted, SHA-256, 32 hex digits).

    Examples:
        >>> fingerprint({"b": "2", "a": "1"}) == fingerprint({"a": "1", "b": "2"})
        True
    """
    text = "\x1f".join(f"{k}\x1e{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Outcome:
    """What `apply_run` did: each instance's (rule, state) after the run, notifications."""

    states: Mapping[str, tuple[str, str]]
    notifications: tuple[Notification, ...]
    retrain: bool


ChannelFilter = Callable[[str, Event], bool]


def _default_filter(channel_type: str, event: Event) -> bool:
    # Alertmanager wants every firing alert re-sent (it forgets them at endsAt); the other
    # channels only get firing, repeat and resolved.
    if channel_type == "alertmanager":
        return event in ("firing", "resolved", "refresh")
    return event != "refresh"


def apply_run(session: Session, rules: Sequence[AlertRule], run: RunSnapshot, *,
              channel_types: Mapping[str, str], run_url: str | None = None,
              now: datetime | None = None) -> Outcome:
    """Evaluate `rules` on `run`, store the new states and enqueue the notifications.

    Runs in the caller's transaction. `channel_types` maps each channel name to its type
    (slack, webhook, email, alertmanager), which decides what it is sent.
    """
    at = now or run.at
    states: dict[str, tuple[str, str]] = {}
    sent: list[Notification] = []
    retrain = False
    fields_base: dict[str, Any] = dict(run.result or {})
    for rule in rules:
        for observation in rule.evaluate(run):
            labels = identity_labels(rule, observation.key)
            key = fingerprint(labels)
            row = session.get(AlertInstance, key)
            previous = row.snapshot() if row is not None else InstanceState()
            after, events = advance(previous, observation.breached, at, rule)
            fields = {**fields_base, "model": rule.model, "rule": rule.name,
                      "severity": rule.severity, "run_id": run.run_id,
                      "values": dict(observation.values), **observation.key}
            summary = render(rule.summary or _default_summary(rule), fields)
            if row is None:
                row = AlertInstance(fingerprint=key, rule=rule.name, model=rule.model,
                                    labels=labels, state="inactive", breaches=0)
                session.add(row)
            if after.state != previous.state or "resolved" in events:
                session.add(AlertTransition(
                    fingerprint=key, rule=rule.name, model=rule.model,
                    from_state=previous.state,
                    to_state="resolved" if "resolved" in events or (
                        previous.state == "firing" and after.state == "inactive")
                    else after.state,
                    at=at, run_id=run.run_id, values=_json(observation.values)))
            _store(row, after, observation, summary, run.run_id, at)
            states[key] = (rule.name, after.state)
            if "firing" in events and rule.retrain:
                retrain = True
            origin = previous if "resolved" in events else after
            started = origin.fired_at or origin.active_since or at
            for event in events:
                note = _notification(rule, event, key, labels, summary, fields, observation,
                                     started, run, at, run_url)
                for channel in rule.channels:
                    if _default_filter(channel_types.get(channel, "webhook"), event):
                        enqueue(session, channel=channel, event_type=note.event_type,
                                model=rule.model, run_id=run.run_id,
                                payload=note.to_payload(), now=at)
                        sent.append(note)
    return Outcome(states, tuple(sent), retrain)


def _store(row: AlertInstance, after: InstanceState, observation: Observation, summary: str,
           run_id: str, at: datetime) -> None:
    row.state = after.state
    row.breaches = after.breaches
    row.active_since = after.active_since
    row.fired_at = after.fired_at
    row.resolved_at = after.resolved_at
    row.last_notified_at = after.last_notified_at
    row.silenced_until = after.silenced_until
    row.missed_while_silenced = after.missed_while_silenced
    if observation.breached is not None:
        row.values = _json(observation.values)
        row.summary = summary
    row.last_run_id = run_id
    row.updated_at = at


def _json(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as JSON allows them (non-finite numbers as null, other objects as text)."""
    def clean(value: Any) -> Any:
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if value is None or isinstance(value, str | int | bool):
            return value
        return str(value)

    return {str(k): clean(v) for k, v in values.items()}


def _default_summary(rule: AlertRule) -> str:
    target = " {feature}" if rule.kind in ("feature_drift", "data_quality") else ""
    return f"{rule.kind.replace('_', ' ')}{target} on model {{model}} ({rule.name})"


def _notification(rule: AlertRule, event: Event, key: str, labels: Mapping[str, str],
                  summary: str, fields: Mapping[str, Any], observation: Observation,
                  started: datetime, run: RunSnapshot, at: datetime,
                  run_url: str | None) -> Notification:
    resolved = event == "resolved"
    return Notification(
        event_type=f"alert.{'firing' if event == 'refresh' else event}",
        status="resolved" if resolved else "firing", fingerprint=key, rule=rule.name,
        kind=rule.kind, model=rule.model, severity=rule.severity, labels=dict(labels),
        summary=summary, description=render(rule.description, fields),
        values=_json(observation.values),
        starts_at=iso_z(started),
        timestamp=iso_z(at), ends_at=iso_z(at) if resolved else None, run_id=run.run_id,
        run_url=run_url, annotations={"summary": summary})


def silence(session: Session, key: str, until: datetime) -> AlertInstance | None:
    """Silence an instance until `until` (None when there is no such instance)."""
    row = session.get(AlertInstance, key)
    if row is not None:
        row.silenced_until = until
    return row


def active_instances(session: Session) -> list[AlertInstance]:
    """Pending and firing instances, firing first."""
    query = select(AlertInstance).where(AlertInstance.state.in_(("pending", "firing")))
    return sorted(session.execute(query).scalars(),
                  key=lambda r: (r.state != "firing", r.model, r.rule))


def history(session: Session, *, limit: int = 200, model: str | None = None
            ) -> list[AlertTransition]:
    """The latest transitions, newest first."""
    query = select(AlertTransition)
    if model is not None:
        query = query.where(AlertTransition.model == model)
    return list(session.execute(query.order_by(AlertTransition.id.desc()).limit(limit))
                .scalars())
