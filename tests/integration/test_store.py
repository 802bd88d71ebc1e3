"""The store on SQLite and PostgreSQL: migrations, idempotent writes, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from collector.events import LabelEvent, PredictionEvent
from collector.store import make_engine, make_session_factory, upgrade
from collector.store.queries import (
    count_predictions,
    insert_labels,
    insert_predictions,
)
from collector.store.window import read_window

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _prediction(i: int, model: str = "m") -> PredictionEvent:
    return PredictionEvent(
        event_id=f"e{i}", model=model, timestamp=T0 + timedelta(seconds=i),
        features={"x": float(i), "c": "k" if i % 2 else "j"}, prediction=0.5, model_version="3",
        request_id=f"r{i}",
    )


def test_migrations_create_every_table_and_are_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"event_batches", "event_keys", "request_keys", "ingest_offsets", "labels", "runs",
            "feature_results", "reference_profiles",
            "deliveries", "alembic_version"} <= tables
    engine.dispose()


def test_redelivered_events_are_stored_once(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        first = insert_predictions(session, [_prediction(i) for i in range(100)], now)
    with sessions.begin() as session:
        # a redelivered batch overlapping the first, with a duplicate inside itself
        batch = [_prediction(i) for i in range(50, 150)] + [_prediction(120)]
        second = insert_predictions(session, batch, now)
    assert len(first) == 100
    assert second == {f"e{i}" for i in range(100, 150)}
    with sessions() as session:
        assert count_predictions(session, "m") == 150
    label = LabelEvent("l1", "m", "r1", T0, 1)
    with sessions.begin() as session:
        assert insert_labels(session, [label, label], now) == {"l1"}
    with sessions.begin() as session:
        assert insert_labels(session, [label], now) == set()
    engine.dispose()


def test_window_by_count_and_by_time(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        insert_predictions(session, [_prediction(i) for i in range(300)], datetime.now(UTC))
        insert_predictions(session, [_prediction(1000 + i, "other") for i in range(10)],
                           datetime.now(UTC))
    with sessions() as session:
        window = read_window(session, "m", now=T0, last_events=100)
        assert window.n == 100
        assert sorted(window.features["x"]) == [float(i) for i in range(200, 300)]
        assert list(window.features["x"]) == sorted(window.features["x"])  # arrival order
        assert window.first_at == T0 + timedelta(seconds=200)
        assert window.last_at == T0 + timedelta(seconds=299)
        assert window.last_at is not None
        assert window.last_at.tzinfo is not None
        assert window.main_version == "3"
        window = read_window(session, "m", now=T0 + timedelta(seconds=299), last_seconds=49.5)
        assert sorted(window.features["x"]) == [float(i) for i in range(250, 300)]
        empty = read_window(session, "none", now=T0, last_events=10)
        assert empty.n == 0
        assert empty.first_at is None
    engine.dispose()


def test_offsets_move_only_forward_from_where_the_store_is(database_url: str) -> None:
    """A batch whose first offset is behind the stored one was stored by another process."""
    from kafka import TopicPartition

    from collector.store.offsets import StaleOffsetError, claim_offsets, stored_offsets

    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    tp, other = TopicPartition("t", 0), TopicPartition("t", 1)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        claim_offsets(session, "g", {tp: (0, 500)}, now)
    with sessions.begin() as session:
        claim_offsets(session, "g", {tp: (500, 900), other: (7, 8)}, now)
    with pytest.raises(StaleOffsetError, match=r"t\[0\]: offsets from 400"), \
            sessions.begin() as session:
        claim_offsets(session, "g", {tp: (400, 1000)}, now)
    with sessions.begin() as session:  # a gap (compacted or deleted records) is fine
        claim_offsets(session, "g", {tp: (950, 1000)}, now)
    with sessions() as session:
        assert stored_offsets(session, "g", [tp, other, TopicPartition("u", 0)]) == {
            tp: 1000, other: 8}
        assert stored_offsets(session, "another-group", [tp]) == {}
    engine.dispose()


def test_prediction_rows_of_an_older_store_move_into_batches(database_url: str) -> None:
    """Upgrading a store of JSON rows (revision 0005) keeps every event, its order and labels."""
    import json

    from sqlalchemy import text

    engine = make_engine(database_url)
    upgrade(engine, "0005")
    rows = [{"event_id": f"e{i}", "model": "m" if i % 3 else "n", "model_version": "2",
             "request_id": f"r{i}", "event_at": T0 + timedelta(seconds=i),
             "received_at": T0 + timedelta(seconds=i + 1),
             "features": json.dumps({"x": i, "c": "k"} if i % 5 else {"x": None}),
             "prediction": json.dumps(i % 2), "tags": None, "latency_ms": 1.5}
            for i in range(300)]
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO predictions (event_id, model, model_version, request_id, event_at, "
            "received_at, features, prediction, tags, latency_ms) VALUES (:event_id, :model, "
            ":model_version, :request_id, :event_at, :received_at, :features, :prediction, "
            ":tags, :latency_ms)"), rows)
        conn.execute(text(
            "INSERT INTO labels (event_id, model, request_id, event_at, received_at, label) "
            "VALUES ('l1', 'm', 'r1', :t, :t, '1')"), {"t": T0})
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        assert count_predictions(session) == 300
        window = read_window(session, "m", now=T0, last_events=1000)
    assert window.n == 200
    expected_x = [float(i) if i % 5 else None for i in range(300) if i % 3]
    assert [None if v != v else v for v in window.features["x"]] == expected_x
    assert window.predictions[:3] == [1, 0, 0]
    assert window.labels[0] == 1
    assert all(v is None for v in window.labels[1:])
    assert window.absent["c"].sum() == sum(1 for i in range(300) if i % 3 and not i % 5)
    engine.dispose()
