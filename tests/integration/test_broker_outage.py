"""Issue 3: broker unreachable at start and mid-run: the collector stays up, /readyz tells,
and it reconnects by itself. Runs over an empty window are `insufficient_data`."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from collector.app import Service
from collector.store.models import Run
from collector.store.queries import count_predictions
from tests import services
from tests.integration.spine import (
    encode_all,
    make_frame,
    prediction_events,
    produce,
    settings_for,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _broker(action: str, port: int, data: Path) -> None:
    services._run(["bash", str(services.ROOT / "scripts" / "kafka-local"), action],
                  env={"KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(_free_port()),
                       "KAFKA_DATA_DIR": str(data)})


def test_collector_survives_a_missing_and_a_vanishing_broker(tmp_path: Path) -> None:
    port = _free_port()
    bootstrap = f"127.0.0.1:{port}"
    data = tmp_path / "kafka"
    rng = np.random.default_rng(9)
    topics = {"predictions_topic": "outage.predictions", "labels_topic": "outage.labels",
              "deadletter_topic": "outage.deadletter"}
    settings = settings_for(tmp_path, database_url=f"sqlite+pysqlite:///{tmp_path / 'd.db'}",
                            bootstrap=bootstrap, topics=topics, reference=make_frame(rng, 500),
                            every_seconds=1.0)
    service = Service(settings, health_interval_seconds=0.3)
    service.start()
    url = f"http://127.0.0.1:{service.http_port}"
    try:
        # No broker: alive, not ready, and runs over the empty window say so.
        assert httpx.get(f"{url}/healthz").status_code == 200
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"store": True, "kafka": False}

        def runs_status() -> set[str]:
            with service.sessions() as session:
                return set(session.execute(select(Run.status)).scalars())

        assert wait_for(lambda: "insufficient_data" in runs_status(), timeout=30,
                        message="an insufficient_data run")
        assert "failed" not in runs_status()

        # The broker appears: ingest connects by itself.
        _broker("start", port, data)
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=30,
                 message="ready once the broker is up")
        produce(bootstrap, topics["predictions_topic"],
                encode_all(prediction_events(make_frame(rng, 300), "m")))

        def stored(n: int) -> bool:
            with service.sessions() as session:
                return count_predictions(session, "m") == n

        wait_for(lambda: stored(300), timeout=90, message="300 stored")

        # The broker vanishes mid-run, then comes back with the same data.
        _broker("stop", port, data)
        wait_for(lambda: httpx.get(f"{url}/readyz").status_code == 503, timeout=30,
                 message="not ready while the broker is down")
        assert any(t.name == "driftline-ingest" and t.is_alive() for t in service._threads)
        _broker("start", port, data)
        produce(bootstrap, topics["predictions_topic"],
                encode_all(prediction_events(make_frame(rng, 200), "m")))
        wait_for(lambda: stored(500), timeout=120, message="500 stored after the outage")
        assert httpx.get(f"{url}/readyz").status_code == 200
    finally:
        service.stop()
        _broker("stop", port, data)
        shutil.rmtree(data, ignore_errors=True)
