"""Issue 3, must-show 1, 2 and 4: the spine on a real broker, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from kafka import KafkaConsumer
from scipy import stats
from sqlalchemy import select
from standardwebhooks import Webhook

from collector.app import Service
from collector.store.models import FeatureResult, Run
from collector.store.queries import count_predictions
from tests.integration.spine import (
    Receiver,
    encode_all,
    make_frame,
    new_secret,
    prediction_events,
    produce,
    scrape,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.integration

SEED = 20261124


@pytest.fixture
def topics(topic_factory: Any) -> dict[str, str]:
    return {
        "predictions_topic": topic_factory("predictions"),
        "labels_topic": topic_factory("labels"),
        "deadletter_topic": topic_factory("deadletter"),
    }


@pytest.fixture
def webhook_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    secret = new_secret()
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", secret)
    return secret


def _run_with_window(service: Service, n: int) -> Run:
    def finished() -> Run | None:
        with service.sessions() as session:
            return session.execute(
                select(Run).where(Run.model == "m", Run.n_current == n, Run.status == "ok")
                .order_by(Run.started_at.desc()).limit(1)
            ).scalar_one_or_none()

    return wait_for(finished, timeout=90, message=f"a run over {n} events")


def _results(service: Service, run: Run) -> dict[str, FeatureResult]:
    with service.sessions() as session:
        rows = session.execute(select(FeatureResult).where(FeatureResult.run_id == run.id))
        return {r.feature: r for r in rows.scalars()}


def _expected_chisquare(reference: pd.Series, current: pd.Series) -> tuple[float, float]:
    # Evidently's chi-square: expected = reference counts scaled to the current size.
    keys = sorted(set(reference) | set(current))
    ref_counts = reference.value_counts()
    cur_counts = current.value_counts()
    scale = len(current) / len(reference)
    expected = [ref_counts.get(k, 0) * scale for k in keys]
    observed = [cur_counts.get(k, 0) for k in keys]
    result = stats.chisquare(observed, expected)
    return float(result.statistic), float(result.pvalue)


def _serve(settings: Any) -> Service:
    service = Service(settings, health_interval_seconds=0.5)
    service.start()
    return service


def test_no_drift_flags_nothing_and_sends_no_webhook(
    tmp_path: Path, kafka_bootstrap: str, database_url: str, topics: dict[str, str],
    webhook_secret: str,
) -> None:
    rng = np.random.default_rng(SEED)
    reference = make_frame(rng, 5000)
    current = make_frame(rng, 2000)
    receiver = Receiver()
    settings = settings_for(tmp_path, database_url=database_url, bootstrap=kafka_bootstrap,
                            topics=topics, reference=reference, webhook_url=receiver.url)
    service = _serve(settings)
    try:
        produce(kafka_bootstrap, topics["predictions_topic"],
                encode_all(prediction_events(current, "m")))
        run = _run_with_window(service, 2000)
        results = _results(service, run)
        assert set(results) == set(reference.columns)
        assert [f for f, r in results.items() if r.drifted] == []
        assert run.dataset_drifted is False
        assert run.share_drifted == 0.0
        time.sleep(2)  # a delivery would have been attempted within the dispatcher's poll
        assert receiver.requests == []
        with service.sessions() as session:
            assert count_predictions(session, "m") == 2000
    finally:
        service.stop()
        receiver.close()


def test_drift_flags_exactly_the_shifted_features_and_sends_one_signed_webhook(
    tmp_path: Path, kafka_bootstrap: str, database_url: str, topics: dict[str, str],
    webhook_secret: str,
) -> None:
    rng = np.random.default_rng(SEED + 1)
    reference = make_frame(rng, 5000)
    current = make_frame(rng, 2000, drift=True)
    receiver = Receiver()
    settings = settings_for(tmp_path, database_url=database_url, bootstrap=kafka_bootstrap,
                            topics=topics, reference=reference, webhook_url=receiver.url)
    service = _serve(settings)
    try:
        produce(kafka_bootstrap, topics["predictions_topic"],
                encode_all(prediction_events(current, "m")))
        run = _run_with_window(service, 2000)
        results = _results(service, run)
        assert sorted(f for f, r in results.items() if r.drifted) == ["a", "b", "color"]
        assert run.dataset_drifted is True
        assert run.share_drifted == pytest.approx(3 / 6, abs=1e-12)

        # Statistics equal scipy's on the same data (the window is exactly `current`).
        for name in ["a", "b", "c", "d"]:
            expected = stats.ks_2samp(reference[name], current[name])
            assert results[name].method == "ks"
            assert math.isclose(results[name].statistic, expected.statistic, rel_tol=1e-9)
            assert math.isclose(results[name].p_value, expected.pvalue, rel_tol=1e-9,
                                abs_tol=1e-300)
        for name in ["color", "shape"]:
            statistic, p_value = _expected_chisquare(reference[name], current[name])
            assert results[name].method == "chisquare"
            assert math.isclose(results[name].statistic, statistic, rel_tol=1e-9)
            assert math.isclose(results[name].p_value, p_value, rel_tol=1e-9, abs_tol=1e-300)

        # One webhook, signed per Standard Webhooks, verified with the reference package.
        wait_for(lambda: receiver.requests, timeout=30, message="the retraining webhook")
        time.sleep(3)  # later runs are inside the cooldown: no second webhook
        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        payload = Webhook(webhook_secret).verify(body, headers)
        assert payload["type"] == "model.drift_detected"
        assert payload["data"]["model"] == "m"
        # The webhook names the first run that found drift (the window may still have been
        # filling), and carries exactly that run's drifted features and statistics.
        with service.sessions() as session:
            hook_run = session.get(Run, payload["data"]["run_id"])
            assert hook_run is not None
            assert hook_run.dataset_drifted is True
            hook_results = {r.feature: r for r in session.execute(
                select(FeatureResult).where(FeatureResult.run_id == hook_run.id)).scalars()}
        sent = {f["name"]: f for f in payload["data"]["drifted_features"]}
        assert set(sent) == {name for name, r in hook_results.items() if r.drifted}
        for name, feature in sent.items():
            assert feature["statistic"] == hook_results[name].statistic
            assert feature["p_value"] == hook_results[name].p_value
        assert headers["webhook-id"].startswith("msg_")

        # The gauges are on /metrics.
        assert service.http_port is not None
        samples = scrape(service.http_port)
        for feature in ["a", "b", "c", "d", "color", "shape"]:
            method = "ks" if feature in {"a", "b", "c", "d"} else "chisquare"
            labels = (("feature", feature), ("method", method), ("model", "m"))
            drifted = 1.0 if feature in {"a", "b", "color"} else 0.0
            assert samples[("driftline_drift_feature_drifted", labels)] == drifted
            assert samples[("driftline_drift_feature_statistic", labels)] == pytest.approx(
                results[feature].statistic, rel=1e-12)
        assert samples[("driftline_drift_dataset_drifted", (("model", "m"),))] == 1.0
        assert samples[("driftline_drift_share_drifted_ratio", (("model", "m"),))] == 0.5
        stored = (("kind", "prediction"), ("model", "m"), ("outcome", "stored"))
        assert samples[("driftline_ingest_events_total", stored)] == 2000
        delivered = (("channel", "retraining:m"), ("outcome", "delivered"))
        assert samples[("driftline_alerts_deliveries_total", delivered)] == 1

        # The runs endpoint shows the same run.
        body = httpx.get(f"http://127.0.0.1:{service.http_port}/v1/models/m/runs").json()
        by_id = {r["id"]: r for r in body["runs"]}
        assert by_id[run.id]["dataset_drifted"] is True
        assert by_id[run.id]["features"]["color"]["drifted"] is True
    finally:
        service.stop()
        receiver.close()


def _malformed(rng: np.random.Generator, valid: list[bytes]) -> list[tuple[bytes, str]]:
    """500 bad events of 8 kinds, each with the reason the collector must give."""
    template = json.loads(valid[0])
    kinds: list[tuple[bytes, str]] = []

    def variant(**changes: Any) -> bytes:
        body = dict(template, event_id=f"bad-{len(kinds)}")
        for key, value in changes.items():
            if value is KeyError:
                body.pop(key)
            else:
                body[key] = value
        return json.dumps(body).encode()

    makers = [
        (lambda: b'{"schema": "driftline.prediction/v1", "event_id": ', "invalid_json"),
        (lambda: b'{"schema": "driftline.prediction/v1", "model": "m\xff\xfe"}', "invalid_utf8"),
        (lambda: variant(model=KeyError), "missing_field"),
        (lambda: variant(features=[1, 2, 3]), "wrong_type"),
        (lambda: variant(features={"a": "NaN-placeholder"}).replace(
            b'"NaN-placeholder"', b"NaN"), "non_finite"),
        (lambda: variant(schema="driftline.prediction/v9"), "unknown_schema"),
        (lambda: b"[" + b"1," * (1024 * 1024) + b"1]", "oversized"),
        (lambda: b'"just a string"', "not_an_object"),
    ]
    for i in range(500):
        make, reason = makers[i % len(makers)]
        kinds.append((make(), reason))
    return kinds


def test_malformed_events_are_deadlettered_and_valid_ones_stored(
    tmp_path: Path, kafka_bootstrap: str, database_url: str, topics: dict[str, str],
) -> None:
    rng = np.random.default_rng(SEED + 2)
    reference = make_frame(rng, 1000)
    valid = encode_all(prediction_events(make_frame(rng, 500), "m"))
    bad = _malformed(rng, valid)
    assert len({reason for _, reason in bad}) >= 7
    interleaved: list[bytes] = []
    for good, (payload, _reason) in zip(valid, bad, strict=True):
        interleaved.extend([payload, good])
    settings = settings_for(tmp_path, database_url=database_url, bootstrap=kafka_bootstrap,
                            topics=topics, reference=reference, every_seconds=3600)
    service = _serve(settings)
    try:
        produce(kafka_bootstrap, topics["predictions_topic"], interleaved)

        def stored() -> bool:
            with service.sessions() as session:
                return count_predictions(session, "m") == 500

        wait_for(stored, timeout=90, message="500 stored predictions")
        consumer = KafkaConsumer(
            topics["deadletter_topic"], bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
            max_partition_fetch_bytes=16 * 1024 * 1024, consumer_timeout_ms=20000,
        )
        letters = []
        deadline = time.monotonic() + 60
        while len(letters) < 500 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=1000).values():
                letters.extend(records)
        consumer.close()
        assert len(letters) == 500
        expected = {payload: reason for payload, reason in bad}
        got_reasons: Counter[str] = Counter()
        for record in letters:
            headers = {k: v.decode() for k, v in record.headers}
            assert headers["driftline.error.reason"] == expected[record.value]
            assert headers["driftline.source.topic"] == topics["predictions_topic"]
            assert int(headers["driftline.source.offset"]) >= 0
            got_reasons[headers["driftline.error.reason"]] += 1
        assert got_reasons == Counter(reason for _, reason in bad)

        # The collector is still running and its counters match.
        assert any(t.name == "driftline-ingest" and t.is_alive() for t in service._threads)
        port = service.http_port
        assert port is not None
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        samples = scrape(port)
        for reason, count in got_reasons.items():
            assert samples[("driftline_ingest_deadletters_total", (("reason", reason),))] == count
        stored_key = (("kind", "prediction"), ("model", "m"), ("outcome", "stored"))
        assert samples[("driftline_ingest_events_total", stored_key)] == 500
    finally:
        service.stop()
