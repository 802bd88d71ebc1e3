"""Issue 11, "Alerts that reach people", on the real broker, a real Alertmanager and local
receivers (Slack, a signed webhook, SMTP): `for_runs`, one notification per transition per
channel, resolution everywhere, a SIGKILL while firing, a Slack outage, a performance rule fed
by labels, and the silence endpoint.

Runs are called by the test (the scheduler is stopped) wherever the test runs the service in
its own process, so each run sees a known window; the crash test runs `driftline serve` as a
child process on a one-second schedule.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sqlalchemy import func, select

from collector.events import LabelEvent, encode_event
from collector.store import make_engine, make_session_factory
from collector.store.models import Run
from tests.integration.alerting import (
    MODEL,
    AlertmanagerSink,
    SlackReceiver,
    SmtpSink,
    WebhookReceiver,
    alert_settings,
    alertmanager_alerts,
    api,
    deliveries,
    new_topics,
    parse_z,
    run_now,
    seconds_between,
    start_collector,
    start_runs_on_call,
    still,
    wait_stored,
)
from tests.integration.observability import Processes, free_port, start_alertmanager
from tests.integration.spine import (
    encode_all,
    make_frame,
    new_secret,
    prediction_events,
    produce,
    scrape,
    settings_yaml,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RULE = "dataset_drifted"
SUMMARY = "{share_drifted:.0%} of the features of {model} drifted"
DESCRIPTION = "Drifted: {values.drifted_features}. Run {run_id}."


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    yield procs
    procs.stop()


def _drift_rule(channels: list[str], **changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"name": RULE, "kind": "dataset_drift", "severity": "critical",
                            "labels": {"team": "ml"}, "summary": SUMMARY,
                            "description": DESCRIPTION, "channels": channels}
    rule.update(changes)
    return rule


def _webhook(url: str) -> dict[str, Any]:
    return {"type": "webhook", "url": url, "secret_env": "TEST_WEBHOOK_SECRET"}


def _email(smtp: SmtpSink) -> dict[str, Any]:
    return {"type": "email", "host": "127.0.0.1", "port": smtp.port,
            "sender": "driftline@example.test", "recipients": ["oncall@example.test"],
            "username_env": "TEST_SMTP_USER", "password_env": "TEST_SMTP_PASSWORD"}


def _events(rng: np.random.Generator, n: int, *, drift: bool) -> list[bytes]:
    return encode_all(prediction_events(make_frame(rng, n, drift=drift), MODEL))


def _sample(port: int, name: str, **labels: str) -> float:
    return scrape(port)[(name, tuple(sorted(labels.items())))]


def _active(port: int) -> list[dict[str, Any]]:
    response = api(port, "/v1/alerts")
    assert response.status_code == 200, response.text
    return list(response.json()["alerts"])


def _active_when_up(port: int) -> list[dict[str, Any]]:
    """`_active`, or nothing while the service is not listening yet."""
    try:
        return _active(port)
    except httpx.TransportError:
        return []


def _history(port: int) -> list[str]:
    """The to-states of the model's alert transitions, oldest first."""
    response = api(port, f"/v1/alerts/history?model={MODEL}")
    assert response.status_code == 200, response.text
    return [t["to"] for t in reversed(response.json()["transitions"])]


# -- 1. for_runs, every channel, resolution ----------------------------------------------------
def test_dataset_drift_fires_on_the_third_run_in_every_channel_and_resolves_everywhere(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[[str], str],
    processes: Processes, monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(1101)
    secret = new_secret()
    slack, hook, sink = SlackReceiver(), WebhookReceiver(secret), AlertmanagerSink()
    smtp = SmtpSink(tmp_path)
    # The e-mail channel verifies the server's certificate as it would a real one.
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cafile))
    alertmanager = start_alertmanager(processes, tmp_path, sink.url)
    topics = new_topics(topic_factory)
    settings = alert_settings(
        tmp_path, bootstrap=kafka_bootstrap, topics=topics, reference=make_frame(rng, 2000),
        channels={"slack": {"type": "slack", "url": slack.url}, "hook": _webhook(hook.url),
                  "mail": _email(smtp), "am": {"type": "alertmanager", "url": alertmanager}},
        rules=[_drift_rule(["slack", "hook", "mail", "am"], for_runs=3)])
    service = start_runs_on_call(settings, {
        "TEST_WEBHOOK_SECRET": secret, "TEST_SMTP_USER": smtp.user,
        "TEST_SMTP_PASSWORD": smtp.password})
    port = service.http_port or 0
    try:
        produce(kafka_bootstrap, topics["predictions_topic"], _events(rng, 300, drift=True))
        wait_stored(service.sessions, predictions=300)

        # Two breaching runs: pending, counted, and nothing sent anywhere.
        for breaches in (1, 2):
            summary = run_now(service)
            assert summary.dataset_drifted
            assert [(a["state"], a["breaches"]) for a in _active(port)] == [
                ("pending", breaches)]
            assert deliveries(service.sessions) == []
        assert _sample(port, "driftline_alerts_instances", model=MODEL, rule=RULE,
                       state="pending") == 1
        assert alertmanager_alerts(alertmanager, RULE) == []

        # The third fires: one message in each channel.
        third = run_now(service)
        (alert,) = _active(port)
        assert (alert["state"], alert["breaches"]) == ("firing", 3)
        fingerprint = alert["fingerprint"]
        wait_for(lambda: slack.accepted() and hook.accepted() and smtp.envelopes
                 and sink.alerts("firing", RULE), timeout=30,
                 message="the firing alert in Slack, the webhook, the mailbox and Alertmanager")

        (message,) = slack.messages()
        assert slack.problems == []
        assert slack.headers_text() == ["🔥 FIRING · CRITICAL · dataset_drifted"]
        assert f"fingerprint `{fingerprint}`" in message["blocks"][-1]["elements"][0]["text"]

        (firing,) = hook.payloads()  # verified with the standardwebhooks package
        assert (firing["type"], firing["status"], firing["fingerprint"]) == (
            "alert.firing", "firing", fingerprint)
        assert firing["labels"] == {"alertname": RULE, "model": MODEL, "severity": "critical",
                                    "kind": "dataset_drift", "team": "ml"}
        assert firing["run_id"] == third.run_id
        assert message["text"] == "🔥 [FIRING critical] m: " + firing["summary"]
        assert firing["values"]["share_drifted"] >= 0.5
        assert firing["description"] == (f"Drifted: {firing['values']['drifted_features']}. "
                                         f"Run {third.run_id}.")

        (mail,) = smtp.messages()  # over STARTTLS, logged in
        assert mail["Subject"] == "[FIRING critical] m: " + firing["summary"]
        assert mail["X-Driftline-Fingerprint"] == fingerprint
        assert mail["To"] == "oncall@example.test"
        assert mail.get_body(("plain",)) is not None
        assert mail.get_body(("html",)) is not None

        (in_alertmanager,) = alertmanager_alerts(alertmanager, RULE)
        assert in_alertmanager["labels"] == firing["labels"]
        assert in_alertmanager["status"]["state"] == "active"
        assert in_alertmanager["annotations"]["summary"] == firing["summary"]
        # ...and the shipped route (critical: its own group_wait) delivered it to the receiver.
        (routed,) = sink.alerts("firing", RULE)
        assert routed["labels"]["model"] == MODEL

        still(lambda: (len(slack.requests), len(hook.requests), len(smtp.envelopes),
                       len(sink.alerts("firing", RULE))) == (1, 1, 1, 1),
              seconds=3, message="a channel got a second firing notification")
        assert _sample(port, "driftline_alerts_instances", model=MODEL, rule=RULE,
                       state="firing") == 1
        for channel in ("slack", "hook", "mail", "am"):
            assert _sample(port, "driftline_alerts_deliveries_total", channel=channel,
                           outcome="delivered") == 1, channel

        # The drift ends: the window refills from the reference's distribution.
        produce(kafka_bootstrap, topics["predictions_topic"], _events(rng, 300, drift=False))
        wait_stored(service.sessions, predictions=600)
        assert not run_now(service).dataset_drifted
        assert _active(port) == []
        wait_for(lambda: len(slack.accepted()) == 2 and len(hook.accepted()) == 2
                 and len(smtp.envelopes) == 2 and sink.alerts("resolved", RULE), timeout=30,
                 message="the resolved alert in every channel")
        assert slack.headers_text()[1] == "✅ RESOLVED · CRITICAL · dataset_drifted"
        resolved = hook.payloads()[1]
        assert (resolved["type"], resolved["status"], resolved["fingerprint"]) == (
            "alert.resolved", "resolved", fingerprint)
        assert resolved["ends_at"] is not None
        assert smtp.subjects()[1].startswith("[RESOLVED critical] m: ")
        assert alertmanager_alerts(alertmanager, RULE) == []
        assert sink.alerts("resolved", RULE)[0]["labels"]["model"] == MODEL
        assert slack.problems == []
        assert _history(port) == ["pending", "firing", "resolved"]
        assert _sample(port, "driftline_alerts_instances", model=MODEL, rule=RULE,
                       state="inactive") == 1
    finally:
        service.stop()
        for receiver in (slack, hook, sink):
            receiver.close()
        smtp.close()


# -- 2. SIGKILL while firing -----------------------------------------------------------------------
REPEAT_SECONDS = 15.0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_sigkill_while_firing_repeats_nothing_and_keeps_state_and_repeat_interval(
    tmp_path: Path, kafka_bootstrap: str, database_url: str,
    topic_factory: Callable[[str], str],
) -> None:
    rng = np.random.default_rng(1102)
    secret = new_secret()
    slack, hook = SlackReceiver(), WebhookReceiver(secret)
    port = free_port()
    topics = new_topics(topic_factory)
    settings = alert_settings(
        tmp_path, bootstrap=kafka_bootstrap, topics=topics, reference=make_frame(rng, 2000),
        database_url=database_url, every_seconds=1.0, http_port=port,
        channels={"slack": {"type": "slack", "url": slack.url}, "hook": _webhook(hook.url)},
        rules=[_drift_rule(["slack", "hook"], for_runs=2,
                           repeat_interval_seconds=REPEAT_SECONDS)])
    config = settings_yaml(settings, tmp_path / "driftline.yaml")
    log = tmp_path / "collector.log"
    environ = {"TEST_WEBHOOK_SECRET": secret}
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    first = start_collector(config, log, environ)
    second = None
    try:
        produce(kafka_bootstrap, topics["predictions_topic"], _events(rng, 300, drift=True))
        wait_for(lambda: hook.accepted() and slack.accepted(), timeout=120,
                 message="the firing notification of the first collector")
        # Both deliveries recorded as delivered: the kill interrupts no send.
        wait_for(lambda: [d.status for d in deliveries(sessions)] == ["delivered"] * 2,
                 timeout=10, message="both deliveries marked delivered")
        (before,) = _active(port)
        assert before["state"] == "firing"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed_at = datetime.now(UTC)

        second = start_collector(config, log, environ)
        # The state continues: same instance, same firing time, the breaches keep counting.
        after = wait_for(lambda: (a := _active_when_up(port))
                         and a[0]["breaches"] > before["breaches"] and a[0],
                         timeout=60, message="a run of the restarted collector")
        assert (after["fingerprint"], after["state"], after["fired_at"]) == (
            before["fingerprint"], "firing", before["fired_at"])
        assert hook.types() == ["alert.firing"]

        # repeat_interval_seconds counts from the notification before the crash.
        wait_for(lambda: len(hook.accepted()) == 2 and len(slack.accepted()) == 2,
                 timeout=REPEAT_SECONDS + 30, message="the repeat notification")
        firing, repeat = hook.payloads()
        assert (firing["type"], repeat["type"]) == ("alert.firing", "alert.repeat")
        assert firing["fingerprint"] == repeat["fingerprint"] == before["fingerprint"]
        assert repeat["starts_at"] == firing["starts_at"]
        gap = seconds_between(firing["timestamp"], repeat["timestamp"])
        assert REPEAT_SECONDS <= gap < REPEAT_SECONDS + 5, gap
        with sessions() as session:
            quiet_runs = session.execute(select(func.count()).select_from(Run).where(
                Run.started_at > killed_at,
                Run.started_at < parse_z(repeat["timestamp"]))).scalar_one()
        assert quiet_runs >= 1, "no run of the restarted collector came before the repeat"
        assert slack.headers_text() == ["🔥 FIRING · CRITICAL · dataset_drifted",
                                        "🔁 STILL FIRING · CRITICAL · dataset_drifted"]
        still(lambda: len(hook.requests) == 2 and len(slack.requests) == 2, seconds=2,
              message="a notification was sent twice")
        assert len({r.headers["webhook-id"] for r in hook.requests}) == 2
        assert _history(port) == ["pending", "firing"]
    finally:
        if first.poll() is None:
            first.kill()
        engine.dispose()
        slack.close()
        hook.close()
        if second is not None:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()[-3000:]


# -- 3. Slack down -----------------------------------------------------------------------------
def test_slack_outage_delays_only_slack_which_gets_its_message_once_when_back(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(1103)
    secret = new_secret()
    slack, hook = SlackReceiver(), WebhookReceiver(secret)
    smtp = SmtpSink(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cafile))
    slack.available = False  # 503 to everything
    topics = new_topics(topic_factory)
    settings = alert_settings(
        tmp_path, bootstrap=kafka_bootstrap, topics=topics, reference=make_frame(rng, 2000),
        channels={"slack": {"type": "slack", "url": slack.url}, "hook": _webhook(hook.url),
                  "mail": _email(smtp)},
        rules=[_drift_rule(["slack", "hook", "mail"])])
    service = start_runs_on_call(settings, {
        "TEST_WEBHOOK_SECRET": secret, "TEST_SMTP_USER": smtp.user,
        "TEST_SMTP_PASSWORD": smtp.password})
    port = service.http_port or 0
    try:
        produce(kafka_bootstrap, topics["predictions_topic"], _events(rng, 300, drift=True))
        wait_stored(service.sessions, predictions=300)
        run_now(service)
        fired = time.monotonic()
        # The e-mail and the webhook arrive on time (the dispatcher polls every second)...
        wait_for(lambda: hook.accepted() and smtp.envelopes, timeout=10,
                 message="the webhook and the e-mail while Slack is down")
        assert time.monotonic() - fired < 5
        # ...while Slack answers 503 and its delivery is retried.
        wait_for(lambda: len(slack.refused()) >= 3, timeout=20,
                 message="three refused Slack attempts")
        assert slack.accepted() == []
        assert (hook.types(), len(smtp.envelopes)) == (["alert.firing"], 1)

        slack.available = True
        wait_for(slack.accepted, timeout=15, message="Slack's message once it is back")
        still(lambda: len(slack.accepted()) == 1, seconds=3,
              message="Slack got its message more than once")
        # Every attempt carried the same message.
        assert len({r.body for r in slack.requests}) == 1
        assert slack.headers_text() == ["🔥 FIRING · CRITICAL · dataset_drifted"]
        assert slack.problems == []
        assert (hook.types(), len(smtp.envelopes)) == (["alert.firing"], 1)
        refused = len(slack.refused())
        wait_for(lambda: _sample(port, "driftline_alerts_deliveries_total", channel="slack",
                                 outcome="delivered") == 1, timeout=5,
                 message="the delivered Slack attempt counted")
        assert _sample(port, "driftline_alerts_deliveries_total", channel="slack",
                       outcome="retry") == refused
        for channel in ("hook", "mail"):
            assert _sample(port, "driftline_alerts_deliveries_total", channel=channel,
                           outcome="retry") == 0, channel
    finally:
        service.stop()
        slack.close()
        hook.close()
        smtp.close()


# -- 4. A performance rule fed by labels -------------------------------------------------------
def _score(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """The positive class's score, from feature `a`."""
    return np.asarray(1 / (1 + np.exp(-2.0 * (frame["a"].to_numpy() - 10.0))), dtype=np.float64)


def _scored_batch(rng: np.random.Generator, batch: str, *, wrong: bool
                  ) -> tuple[list[bytes], list[bytes]]:
    """300 scored predictions and a label for each; `wrong` labels are the opposite outcome."""
    frame = make_frame(rng, 300)
    scores = _score(frame)
    outcome = (rng.uniform(size=len(frame)) < scores).astype(int)
    if wrong:
        outcome = 1 - outcome
    predictions = [replace(event, prediction=float(score), request_id=f"{batch}-{i}")
                   for i, (event, score) in enumerate(zip(prediction_events(frame, MODEL),
                                                          scores, strict=True))]
    now = datetime.now(UTC)
    labels = [encode_event(LabelEvent(uuid.uuid4().hex, MODEL, f"{batch}-{i}", now,
                                      int(outcome[i]))) for i in range(len(frame))]
    return encode_all(predictions), labels


def test_performance_rule_fires_after_two_runs_of_low_accuracy_and_resolves(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[[str], str],
) -> None:
    rng = np.random.default_rng(1104)
    secret = new_secret()
    hook = WebhookReceiver(secret)
    reference = make_frame(rng, 2000)
    reference["prediction"] = _score(reference)
    reference["label"] = (rng.uniform(size=len(reference)) < reference["prediction"]).astype(int)
    topics = new_topics(topic_factory)
    settings = alert_settings(
        tmp_path, bootstrap=kafka_bootstrap, topics=topics, reference=reference,
        channels={"hook": _webhook(hook.url)},
        rules=[{"name": "accuracy_low", "kind": "performance", "metric": "accuracy",
                "below": 0.6, "for_runs": 2, "channels": ["hook"],
                "summary": "accuracy {performance.metrics.accuracy:.2f} on {model}"}],
        model={"performance": {"prediction_type": "score", "estimate": False}})
    service = start_runs_on_call(settings, {"TEST_WEBHOOK_SECRET": secret})
    port = service.http_port or 0

    def send(batch: str, *, wrong: bool, total: int) -> None:
        predictions, labels = _scored_batch(rng, batch, wrong=wrong)
        produce(kafka_bootstrap, topics["predictions_topic"], predictions)
        produce(kafka_bootstrap, topics["labels_topic"], labels)
        wait_stored(service.sessions, predictions=total, labels=total)

    def accuracy() -> float:
        result = run_now(service).result
        assert result is not None
        performance = result.to_dict()["performance"]
        assert performance["n_labelled"] == 300
        return float(performance["metrics"]["accuracy"])

    try:
        send("good", wrong=False, total=300)
        assert accuracy() >= 0.7
        assert _active(port) == []

        # The labels of the next 300 predictions show the drop: pending, then firing.
        send("bad", wrong=True, total=600)
        assert accuracy() < 0.4
        assert [a["state"] for a in _active(port)] == ["pending"]
        assert deliveries(service.sessions) == []
        assert accuracy() < 0.4
        (alert,) = _active(port)
        assert alert["state"] == "firing"
        wait_for(hook.accepted, timeout=15, message="the firing accuracy alert")
        (firing,) = hook.payloads()
        assert (firing["type"], firing["rule"], firing["kind"]) == (
            "alert.firing", "accuracy_low", "performance")
        assert firing["values"]["accuracy"] < 0.4
        assert (firing["values"]["below"], firing["values"]["n_labelled"]) == (0.6, 300)
        assert firing["summary"] == f"accuracy {firing['values']['accuracy']:.2f} on m"

        # Accuracy recovers: resolved.
        send("recovered", wrong=False, total=900)
        assert accuracy() >= 0.7
        assert _active(port) == []
        wait_for(lambda: len(hook.accepted()) == 2, timeout=15, message="the resolved alert")
        resolved = hook.payloads()[1]
        assert (resolved["type"], resolved["fingerprint"]) == ("alert.resolved",
                                                              alert["fingerprint"])
        assert resolved["values"]["accuracy"] >= 0.7
        assert _history(port) == ["pending", "firing", "resolved"]
    finally:
        service.stop()
        hook.close()


# -- 5. Silences -------------------------------------------------------------------------------
SILENCE_SECONDS = 6.0


def test_silence_needs_the_token_holds_notifications_and_ends(
    tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[[str], str],
) -> None:
    rng = np.random.default_rng(1105)
    secret, token = new_secret(), uuid.uuid4().hex
    hook = WebhookReceiver(secret)
    topics = new_topics(topic_factory)
    # A repeat every run (1 s apart at least) shows what a silence holds back.
    settings = alert_settings(
        tmp_path, bootstrap=kafka_bootstrap, topics=topics, reference=make_frame(rng, 2000),
        channels={"hook": _webhook(hook.url)},
        rules=[_drift_rule(["hook"], repeat_interval_seconds=1)])
    service = start_runs_on_call(settings, {"TEST_WEBHOOK_SECRET": secret,
                                            "TEST_API_TOKEN": token})
    port = service.http_port or 0

    def run_after_a_second() -> None:
        time.sleep(1.05)
        run_now(service)

    try:
        produce(kafka_bootstrap, topics["predictions_topic"], _events(rng, 300, drift=True))
        wait_stored(service.sessions, predictions=300)
        run_now(service)
        run_after_a_second()
        wait_for(lambda: len(hook.accepted()) == 2, timeout=15,
                 message="the firing and the first repeat")
        assert hook.types() == ["alert.firing", "alert.repeat"]
        (alert,) = _active(port)
        path = f"/v1/alerts/{alert['fingerprint']}/silence"
        body = {"duration_seconds": SILENCE_SECONDS}

        unauthorized = api(port, path, method="POST", body=body)
        assert unauthorized.status_code == 401
        assert unauthorized.headers["www-authenticate"] == "Bearer"
        assert api(port, path, method="POST", body=body, token="not-the-token"
                   ).status_code == 401
        assert api(port, "/v1/alerts/0123/silence", method="POST", body=body, token=token
                   ).status_code == 404
        assert _active(port)[0]["silenced_until"] is None

        silenced = api(port, path, method="POST", body=body, token=token)
        assert silenced.status_code == 200, silenced.text
        until = parse_z(silenced.json()["silenced_until"])
        assert _active(port)[0]["silenced_until"] == silenced.json()["silenced_until"]

        # Still firing, due for a repeat each run, and silent.
        for _ in range(2):
            run_after_a_second()
            assert datetime.now(UTC) < until
        assert [a["state"] for a in _active(port)] == ["firing"]
        assert len(deliveries(service.sessions)) == 2
        still(lambda: len(hook.requests) == 2, seconds=1,
              message="a notification was sent while silenced")

        # The silence ends; the alert still fires: notified again.
        time.sleep(max((until - datetime.now(UTC)).total_seconds(), 0) + 0.1)
        run_now(service)
        wait_for(lambda: len(hook.accepted()) == 3, timeout=15,
                 message="the notification after the silence")
        assert hook.types() == ["alert.firing", "alert.repeat", "alert.repeat"]
        assert _active(port)[0]["silenced_until"] is None
    finally:
        service.stop()
        hook.close()
