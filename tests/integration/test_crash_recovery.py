"""Issue 3, must-show 3: SIGKILL mid-stream loses nothing and stores nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from collector.store import make_engine, make_session_factory, upgrade
from collector.store.models import Prediction
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
            return int(session.execute(select(func.count()).select_from(Prediction)).scalar_one())

    payloads = encode_all(prediction_events(make_frame(rng, TOTAL), "m"))
    producer = threading.Thread(
        target=produce, args=(kafka_bootstrap, topics["predictions_topic"], payloads),
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
        producer.join(timeout=180)
        assert not producer.is_alive()
        second = _start_collector(config, log)
        try:
            wait_for(lambda: stored() >= TOTAL, timeout=240, message=f"{TOTAL} stored")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()[-3000:]
        with sessions() as session:
            rows = session.execute(select(func.count(), func.count(Prediction.event_id.distinct()))
                                   .select_from(Prediction)).one()
        assert tuple(rows) == (TOTAL, TOTAL)
        expected_ids = {e.split(b'"event_id":"')[1].split(b'"')[0].decode() for e in payloads}
        with sessions() as session:
            ids = set(session.execute(select(Prediction.event_id)).scalars())
        assert ids == expected_ids
    finally:
        if first.poll() is None:
            first.kill()
        engine.dispose()
