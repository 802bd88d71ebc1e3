"""The alert state machine over every transition, and its stored form across restarts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from alerts.message import Notification
from alerts.outbox import Delivery, metadata
from alerts.rules import AlertRule, RuleError, RunSnapshot, render, unknown_template_fields
from alerts.state import AlertInstance, AlertTransition, InstanceState, advance, apply_run

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _rule(**kwargs: Any) -> AlertRule:
    base: dict[str, Any] = {"name": "drift", "kind": "dataset_drift", "model": "fraud"}
    base.update(kwargs)
    return AlertRule(**base)


def _steps(rule: AlertRule, readings: list[bool | None], *, minutes: float = 1.0
           ) -> list[tuple[str, list[str]]]:
    state, out = InstanceState(), []
    for i, reading in enumerate(readings):
        state, events = advance(state, reading, T0 + timedelta(minutes=minutes * i), rule)
        out.append((state.state, list(events)))
    return out


def test_for_runs_counts_consecutive_breaches() -> None:
    assert _steps(_rule(for_runs=3), [True, True, True, True, False]) == [
        ("pending", []), ("pending", []), ("firing", ["firing"]), ("firing", ["refresh"]),
        ("inactive", ["resolved"])]


def test_flapping_inside_for_runs_never_fires() -> None:
    assert _steps(_rule(for_runs=3), [True, True, False, True, True, False, True]) == [
        ("pending", []), ("pending", []), ("inactive", []), ("pending", []), ("pending", []),
        ("inactive", []), ("pending", [])]


def test_no_reading_keeps_the_state_and_the_count() -> None:
    assert _steps(_rule(for_runs=2), [True, None, True, None, False]) == [
        ("pending", []), ("pending", []), ("firing", ["firing"]), ("firing", []),
        ("inactive", ["resolved"])]


def test_for_runs_one_fires_at_once_and_resolved_can_be_quiet() -> None:
    assert _steps(_rule(notify_resolved=False), [True, False, True]) == [
        ("firing", ["firing"]), ("inactive", []), ("firing", ["firing"])]


def test_repeat_interval_renotifies_while_firing() -> None:
    steps = _steps(_rule(repeat_interval_seconds=150), [True] * 6)
    assert [e for _s, e in steps] == [["firing"], ["refresh"], ["refresh"],
                                      ["repeat", "refresh"], ["refresh"], ["refresh"]]


def test_silence_holds_notifications_and_renotifies_after_it() -> None:
    rule = _rule()
    state, _ = advance(InstanceState(), True, T0, rule)
    state = InstanceState(**{**state.__dict__, "silenced_until": T0 + timedelta(minutes=10)})
    state, events = advance(state, True, T0 + timedelta(minutes=5), rule)
    assert events == []
    assert state.missed_while_silenced
    state, events = advance(state, True, T0 + timedelta(minutes=11), rule)
    assert events == ["repeat", "refresh"]
    # A breach that starts and ends inside a silence notifies nothing at all.
    quiet = InstanceState(silenced_until=T0 + timedelta(hours=1))
    quiet, events = advance(quiet, True, T0, rule)
    assert (quiet.state, events) == ("firing", [])
    quiet, events = advance(quiet, False, T0 + timedelta(minutes=1), rule)
    assert (quiet.state, events) == ("inactive", [])


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "performance", "metric": "acuracy", "below": 0.9}, "metric must be one of"),
    ({"kind": "performance", "metric": "accuracy", "below": 1.5}, "out of range"),
    ({"kind": "performance", "metric": "accuracy"}, "exactly one of below, above or drop"),
    ({"kind": "performance", "metric": "accuracy", "drop": 2.0}, r"drop is a relative"),
    ({"kind": "data_quality", "check": "missing", "threshold": 0.1}, "check must be one of"),
    ({"kind": "data_quality", "check": "missing_share", "threshold": 3}, "share in"),
    ({"kind": "no_data"}, "duration_seconds"),
    ({"kind": "labels_missing", "min_coverage": 0.5}, "duration_seconds"),
    ({"kind": "dataset_drift", "for_runs": 0}, "for_runs"),
    ({"kind": "dataset_drift", "summary": "{modle} drifted"}, r"unknown fields \['modle'\]"),
    ({"kind": "sideways"}, "kind must be one of"),
])
def test_bad_rules_are_refused_with_the_reason(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        _rule(**kwargs)


def test_templates_read_the_run_result() -> None:
    assert unknown_template_fields("{estimated_performance.metrics.f1.upper:.2f} "
                                   "{data_quality.features.amount.missing_share:.0%}") == []
    fields = {"model": "fraud", "performance": {"metrics": {"accuracy": 0.8}}}
    assert render("{model} at {performance.metrics.accuracy:.0%}", fields) == "fraud at 80%"


def _result(*, drifted: bool, accuracy: float | None = 0.95) -> dict[str, Any]:
    return {"status": "ok", "dataset_drifted": drifted, "share_drifted": 0.6 if drifted else 0.0,
            "drift_share": 0.5, "features": {"amount": {"drifted": drifted, "status": "ok"}},
            "performance": None if accuracy is None else {
                "metrics": {"accuracy": accuracy}, "n_labelled": 100},
            "reference_performance": {"metrics": {"accuracy": 0.95}},
            "window": {"n_events": 100, "first_at": "2026-11-29T11:00:00Z",
                       "last_at": "2026-11-29T11:59:00Z", "label_coverage": 0.5}}


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path / 'a.db'}")
    metadata.create_all(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def _run(sessions: sessionmaker[Session], rules: list[AlertRule], result: dict[str, Any],
         at: datetime, run_id: str) -> None:
    # A fresh call per run, as after a restart: nothing is kept in memory between runs.
    with sessions.begin() as session:
        apply_run(session, rules, RunSnapshot("fraud", run_id, at, "ok", result),
                  channel_types={"slack": "slack", "am": "alertmanager"},
                  run_url="http://driftline/v1/models/fraud/runs")


def _sent(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.execute(select(Delivery).order_by(Delivery.created_at,
                                                         Delivery.id)).scalars()
        return [(d.channel, d.event_type) for d in rows]


def test_stored_state_survives_restarts_and_notifies_once_per_transition(
        sessions: sessionmaker[Session]) -> None:
    rules = [_rule(for_runs=3, channels=("slack", "am"), repeat_interval_seconds=3600,
                   summary="{model} drifted: {share_drifted:.0%}")]
    for i in range(2):
        _run(sessions, rules, _result(drifted=True), T0 + timedelta(minutes=i), f"r{i}")
    assert _sent(sessions) == []
    _run(sessions, rules, _result(drifted=True), T0 + timedelta(minutes=2), "r2")
    assert sorted(_sent(sessions)) == [("am", "alert.firing"), ("slack", "alert.firing")]
    _run(sessions, rules, _result(drifted=True), T0 + timedelta(minutes=3), "r3")
    # Slack is not told again within the repeat interval; Alertmanager gets the re-send.
    assert _sent(sessions)[2:] == [("am", "alert.firing")]
    _run(sessions, rules, _result(drifted=False), T0 + timedelta(minutes=4), "r4")
    assert sorted(_sent(sessions)[3:]) == [("am", "alert.resolved"), ("slack", "alert.resolved")]
    with sessions() as session:
        transitions = [(t.from_state, t.to_state) for t in session.execute(
            select(AlertTransition).order_by(AlertTransition.id)).scalars()]
        instance = session.execute(select(AlertInstance)).scalar_one()
        assert instance.state == "inactive"
        delivery = session.execute(select(Delivery).where(
            Delivery.event_type == "alert.resolved")).scalars().first()
        assert delivery is not None
        note = Notification.from_payload(json.loads(delivery.payload))
    assert transitions == [("inactive", "pending"), ("pending", "firing"),
                           ("firing", "resolved")]
    assert note.status == "resolved"
    assert note.starts_at == "2026-11-29T12:02:00Z"
    assert note.ends_at == "2026-11-29T12:04:00Z"
    assert note.labels["model"] == "fraud"
    assert note.summary == "fraud drifted: 0%"


def test_a_performance_rule_fires_below_and_relative_drop(
        sessions: sessionmaker[Session]) -> None:
    below = _rule(name="acc", kind="performance", metric="accuracy", below=0.9, for_runs=2,
                  channels=("slack",))
    drop = _rule(name="acc-drop", kind="performance", metric="accuracy", drop=0.1,
                 channels=("slack",))
    rules = [below, drop]
    _run(sessions, rules, _result(drifted=False, accuracy=0.85), T0, "a")
    _run(sessions, rules, _result(drifted=False, accuracy=None), T0 + timedelta(minutes=1), "b")
    # No labels yet (None) neither breaks nor continues the count.
    assert _sent(sessions) == [("slack", "alert.firing")]  # the 10% drop: 0.85 < 0.95*0.9
    _run(sessions, rules, _result(drifted=False, accuracy=0.85), T0 + timedelta(minutes=2), "c")
    assert _sent(sessions)[1:] == [("slack", "alert.firing")]
    _run(sessions, rules, _result(drifted=False, accuracy=0.94), T0 + timedelta(minutes=3), "d")
    assert sorted(_sent(sessions)[2:]) == [("slack", "alert.resolved")] * 2


def test_labels_missing_counts_only_predictions_old_enough() -> None:
    rule = _rule(name="labels", kind="labels_missing", min_coverage=0.5,
                 duration_seconds=3600)
    window = {"coverage_after": {"3600": {"n": 40, "n_labelled": 30, "label_coverage": 0.75}},
              "label_coverage": 0.1}  # the whole window is mostly too young to have labels
    run = RunSnapshot("fraud", "r", T0, "ok", {"status": "ok", "window": window})
    assert [o.breached for o in rule.evaluate(run)] == [False]
    window["coverage_after"]["3600"] = {"n": 40, "n_labelled": 10, "label_coverage": 0.25}
    assert [o.breached for o in rule.evaluate(run)] == [True]
    window["coverage_after"]["3600"] = {"n": 0, "n_labelled": 0, "label_coverage": None}
    assert [o.breached for o in rule.evaluate(run)] == [None]
