"""SIGKILL mid-stream loses nothing and stores nothing twice (issue 3), on the columnar store
with offsets kept in it (issue 12): killed twice during ingest, with 10% of the events
redelivered by the producer under the same event id, every event is in the window once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.store import make_engine, make_session_factory, upgrade
from collector.store.queries import count_predictions, stored_event_ids
from collector.store.window import read_window
from tests.integration.spine import (
    encode_all,
    make_frame,
    prediction_events,
    produce,
    settings_for,
    settings_yaml,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOTAL = 20_000


def _start_collector(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS",
                                                             "DRIFTLINE_DATABASE_URL"}}
    with log.open("ab") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "collector.cli", "serve", "--config", str(config),
             "--only", "ingest"],
            stdout=output, stderr=subprocess.STDOUT, env=env,
        )


def test_sigkill_while_streaming_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, kafka_bootstrap: str, database_url: str, topic_factory: Any,
) -> None:
    rng = np.random.default_rng(3)
    topics = {
        "predictions_topic": topic_factory("predictions"),
        "labels_topic": topic_factory("labels"),
        "deadletter_topic": topic_factory("deadletter"),
    }
    settings = settings_for(tmp_path, database_url=database_url, bootstrap=kafka_bootstrap,
                            topics=topics, reference=make_frame(rng, 200))
    config = settings_yaml(settings, tmp_path / "driftline.yaml")
    engine = make_engine(database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    log = tmp_path / "collector.log"

    def stored() -> int:
        with sessions() as session:
            return count_predictions(session)

    payloads = encode_all(prediction_events(make_frame(rng, TOTAL), "m"))
    # The producer redelivers 10% of the events later in the stream, same event ids.
    again = rng.choice(TOTAL, TOTAL // 10, replace=False)
    stream = list(payloads)
    for k, index in enumerate(sorted(again)):
        stream.insert(min(len(stream), int(index) + 3000 + k), payloads[index])
    producer = threading.Thread(
        target=produce, args=(kafka_bootstrap, topics["predictions_topic"], stream),
        kwargs={"pause_every": 500, "pause_seconds": 0.05}, daemon=True,
    )
    first = _start_collector(config, log)
    try:
        producer.start()
        wait_for(lambda: stored() >= 2000, timeout=120, message="the first 2,000 stored")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed_at = stored()
        assert 0 < killed_at < TOTAL, f"kill landed after the stream ({killed_at})"
        first = _start_collector(config, log)
        wait_for(lambda: stored() >= killed_at + 3000, timeout=120,
                 message="3,000 more stored after the first restart")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert stored() < TOTAL, "the second kill landed after the stream"
        producer.join(timeout=180)
        assert not producer.is_alive()
        second = _start_collector(config, log)
        try:
            wait_for(lambda: stored() >= TOTAL, timeout=240, message=f"{TOTAL} stored")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()[-3000:]
        expected_ids = {e.split(b'"event_id":"')[1].split(b'"')[0].decode() for e in payloads}
        with sessions() as session:
            ids = stored_event_ids(session)
            assert count_predictions(session) == TOTAL
            window = read_window(session, "m", now=datetime.now(UTC), last_events=2 * TOTAL)
        assert len(ids) == TOTAL
        assert set(ids) == expected_ids
        assert window.n == TOTAL
    finally:
        if first.poll() is None:
            first.kill()
        engine.dispose()
