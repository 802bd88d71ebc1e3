"""Issue 12: retention deletes raw events past `raw_days` (runs stay), compaction merges small
batches without changing any window, and the store stops growing under constant traffic."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from kafka import KafkaProducer
from sqlalchemy import func, select

from collector.app import Service
from collector.config import RetentionSettings
from collector.events import LabelEvent, PredictionEvent, encode_event
from collector.store import make_engine, make_session_factory, upgrade
from collector.store.models import EventBatch, EventKey, Label, RequestKey, Run
from collector.store.queries import count_predictions, insert_labels, insert_predictions
from collector.store.retention import compact, delete_expired
from collector.store.window import read_between, read_window
from tests.integration.spine import make_frame, settings_for

pytestmark = [pytest.mark.integration]

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _event(i: int, at: datetime, features: dict[str, Any] | None = None,
           prediction: Any = 0.5) -> PredictionEvent:
    return PredictionEvent(
        event_id=f"e{i}", model="m", timestamp=at,
        features=features if features is not None else {"x": float(i), "c": "k"},
        prediction=prediction, model_version="1", request_id=f"r{i}")


def _count(session: Any, table: Any) -> int:
    return int(session.execute(select(func.count()).select_from(table)).scalar_one())


def test_retention_deletes_whole_old_batches_and_labels_and_keeps_runs(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    old, recent = NOW - timedelta(days=8), NOW - timedelta(days=1)
    with sessions.begin() as session:
        insert_predictions(session, [_event(i, old + timedelta(seconds=i)) for i in range(100)],
                           old)
        insert_predictions(session, [_event(i, recent + timedelta(seconds=i))
                                     for i in range(100, 150)], recent)
        insert_labels(session, [LabelEvent(f"l{i}", "m", f"r{i}", old, 1) for i in range(100)],
                      old)
        insert_labels(session, [LabelEvent(f"l{i}", "m", f"r{i}", recent, 0)
                                for i in range(100, 150)], recent)
        session.add(Run(id="run-old", model="m", status="ok", started_at=old, finished_at=old,
                        n_reference=1, n_current=1, drift_share=0.5, dataset_drifted=False))
    outcome = delete_expired(sessions, now=NOW, raw_days=7)
    assert (outcome.batches_deleted, outcome.events_deleted, outcome.labels_deleted) == (
        1, 100, 100)
    with sessions() as session:
        assert count_predictions(session) == 50
        assert _count(session, EventKey) == 50
        assert _count(session, RequestKey) == 50
        assert _count(session, Label) == 50
        assert _count(session, Run) == 1
        window = read_window(session, "m", now=NOW, last_events=1000)
    assert window.n == 50
    assert list(window.labels) == [0] * 50
    # A key deleted with its batch is free again; a kept one still deduplicates.
    with sessions.begin() as session:
        again = insert_predictions(session, [_event(5, NOW), _event(120, NOW)], NOW)
    assert again == {"e5"}
    assert delete_expired(sessions, now=NOW, raw_days=7).batches_deleted == 0
    engine.dispose()


def _mixed_batches(rng: np.random.Generator) -> list[list[PredictionEvent]]:
    """30 small batches whose columns change type and presence from batch to batch."""
    batches = []
    i = 0
    for b in range(30):
        events = []
        for _ in range(int(rng.integers(1, 40))):
            at = NOW + timedelta(milliseconds=i)
            features: dict[str, Any] = {"x": float(rng.normal())}
            if b % 3:
                features["n"] = int(rng.integers(0, 5)) if b % 2 else float(rng.normal())
            if b % 4 == 0:
                features["s"] = str(rng.choice(["a", "b"])) if i % 5 else 7
            if b % 5 == 1:
                features["flag"] = bool(i % 2) if i % 3 else None
            prediction: Any = [0.2, 0.8] if b == 7 else (int(i % 2) if b % 2 else "yes")
            events.append(_event(i, at, features, prediction))
            i += 1
        batches.append(events)
    return batches


def _same(a: Any, b: Any) -> None:
    pd.testing.assert_frame_equal(a.features, b.features, check_like=True)  # order by name
    assert a.predictions == b.predictions
    assert list(a.labels) == list(b.labels)
    assert list(a.prediction_at) == list(b.prediction_at)
    assert sorted(a.absent) == sorted(b.absent)
    for name in a.absent:
        assert list(a.absent[name]) == list(b.absent[name]), name


def test_compaction_merges_small_batches_and_changes_no_window(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    rng = np.random.default_rng(12)
    batches = _mixed_batches(rng)
    for events in batches:
        with sessions.begin() as session:
            insert_predictions(session, events, NOW - timedelta(minutes=10))
    with sessions.begin() as session:
        insert_labels(session, [LabelEvent(f"l{i}", "m", f"r{i}", NOW, i % 3)
                                for i in range(0, 200, 7)], NOW)
    total = sum(len(b) for b in batches)
    with sessions() as session:
        before = {
            "all": read_window(session, "m", now=NOW, last_events=total),
            "tail": read_window(session, "m", now=NOW, last_events=total // 3),
            "between": read_between(session, "m", NOW + timedelta(milliseconds=50),
                                    NOW + timedelta(milliseconds=400)),
        }
    outcome = compact(sessions, now=NOW, target_events=200, min_age_seconds=60)
    assert outcome.batches_merged > 20
    with sessions() as session:
        n_batches = _count(session, EventBatch)
        assert n_batches < 30 - outcome.batches_merged + outcome.batches_written + 1
        assert count_predictions(session) == total
        after = {
            "all": read_window(session, "m", now=NOW, last_events=total),
            "tail": read_window(session, "m", now=NOW, last_events=total // 3),
            "between": read_between(session, "m", NOW + timedelta(milliseconds=50),
                                    NOW + timedelta(milliseconds=400)),
        }
    for name in before:
        _same(before[name], after[name])
    assert after["all"].absent["s"].sum() > 0
    # A second pass finds nothing more to merge below the target.
    again = compact(sessions, now=NOW, target_events=200, min_age_seconds=60)
    assert again.batches_written <= 1
    engine.dispose()


def _store_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


@pytest.mark.slow
def test_store_stops_growing_under_constant_traffic_with_short_retention(
        tmp_path: Path, kafka_bootstrap: str, topic_factory: Any) -> None:
    """A soak of about two minutes: 25 s of retention, 200 events/s."""
    rng = np.random.default_rng(5)
    db = tmp_path / "soak.db"
    topics = {"predictions_topic": topic_factory("predictions"),
              "labels_topic": topic_factory("labels"),
              "deadletter_topic": topic_factory("deadletter")}
    settings = settings_for(tmp_path, database_url=f"sqlite+pysqlite:///{db}",
                            bootstrap=kafka_bootstrap, topics=topics,
                            reference=make_frame(rng, 500), every_seconds=5.0,
                            window_events=500)
    settings = settings.model_copy(update={"retention": RetentionSettings(
        raw_days=25 / 86_400, every_seconds=3, compact_events=2000, compact_after_seconds=2)})
    stop = threading.Event()
    frame = make_frame(rng, 4000)
    rows = frame.to_dict("records")

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)

    def traffic() -> None:
        i = 0
        while not stop.is_set():
            now = datetime.now(UTC)
            payloads = [encode_event(PredictionEvent(
                event_id=uuid.uuid4().hex, model="m", timestamp=now,
                features={k: (float(v) if not isinstance(v, str) else v)
                          for k, v in rows[(i + j) % len(rows)].items()},
                prediction=0.5, request_id=f"q{i + j}")) for j in range(100)]
            for payload in payloads:
                producer.send(topics["predictions_topic"], key=b"m", value=payload)
            producer.flush(timeout=30)
            i += 100
            stop.wait(0.5)

    service = Service(settings)
    service.start()
    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    sizes: list[tuple[float, int]] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < 120:
            time.sleep(5)
            sizes.append((time.monotonic() - started, _store_bytes(db)))
        stop.set()
        sender.join(timeout=30)
        producer.close(timeout=10)
        sessions = make_session_factory(service.engine)
        service.maintain()
        with sessions() as session:
            oldest = session.execute(select(func.min(EventBatch.first_at))).scalar_one()
            stored = count_predictions(session)
            runs = _count(session, Run)
    finally:
        stop.set()
        service.stop()
    # Steady state: what the second minute added is a small part of the first minute's.
    early = max(size for t, size in sizes if t <= 65)
    late = max(size for t, size in sizes if t > 65)
    assert late <= early * 1.25, sizes
    # Nothing older than the retention (plus one maintenance interval) is left.
    assert oldest is not None
    assert oldest >= datetime.now(UTC) - timedelta(seconds=25 + 3 + 30)
    # About 25 s of traffic is kept: far fewer than the ~24,000 sent.
    assert 2000 <= stored < 120 * 200 * 0.5
    assert runs > 10  # runs are kept
