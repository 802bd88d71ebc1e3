"""Issue 3, must-show 5: refused, then 500, then 200, across a collector crash: one success."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from alerts.outbox import Delivery
from collector.store import make_engine, make_session_factory
from tests.integration.spine import (
    Receiver,
    encode_all,
    make_frame,
    new_secret,
    prediction_events,
    produce,
    settings_for,
    settings_yaml,
    wait_for,
)

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _collector(config: Path, log: Path, secret: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS",
                                                             "DRIFTLINE_DATABASE_URL"}}
    env["TEST_WEBHOOK_SECRET"] = secret
    with log.open("ab") as output:
        return subprocess.Popen([sys.executable, "-m", "collector.cli", "serve", "--config",
                                 str(config)], stdout=output, stderr=subprocess.STDOUT, env=env)


def test_delivery_survives_refusal_errors_and_a_crash_and_succeeds_once(
    tmp_path: Path, kafka_bootstrap: str, database_url: str, topic_factory: Any,
) -> None:
    rng = np.random.default_rng(5)
    port = _free_port()  # nothing listens yet: connections are refused
    secret = new_secret()
    topics = {"predictions_topic": topic_factory("predictions"),
              "labels_topic": topic_factory("labels"),
              "deadletter_topic": topic_factory("deadletter")}
    settings = settings_for(tmp_path, database_url=database_url, bootstrap=kafka_bootstrap,
                            topics=topics, reference=make_frame(rng, 2000),
                            webhook_url=f"http://127.0.0.1:{port}/hook", window_events=500,
                            retry_base_seconds=0.5)
    config = settings_yaml(settings, tmp_path / "driftline.yaml")
    log = tmp_path / "collector.log"
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)

    def delivery() -> Delivery | None:
        try:
            with sessions() as session:
                return session.execute(select(Delivery)).scalars().first()
        except Exception:  # tables appear once the collector has migrated
            return None

    first = _collector(config, log, secret)
    receiver: Receiver | None = None
    try:
        produce(kafka_bootstrap, topics["predictions_topic"],
                encode_all(prediction_events(make_frame(rng, 500, drift=True), "m")))
        refused = wait_for(lambda: (d := delivery()) is not None and d.attempts >= 2 and d,
                           timeout=120, message="two refused attempts")
        assert refused.status == "pending"
        assert "cannot reach" in (refused.last_error or "")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)

        receiver = Receiver(port=port, status=lambda n: 500 if n <= 2 else 200)
        second = _collector(config, log, secret)
        try:
            done = wait_for(lambda: (d := delivery()) is not None and d.status == "delivered"
                            and d, timeout=120, message="the delivery to succeed")
            time.sleep(2)  # nothing more arrives after the success
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()[-3000:]
        with sessions() as session:
            assert len(session.execute(select(Delivery)).scalars().all()) == 1
        ids = {headers["webhook-id"] for headers, _ in receiver.requests}
        assert ids == {done.id}
        assert len(receiver.requests) == 3  # 500, 500, then the one success
        assert done.attempts >= 2 + 3
        from standardwebhooks import Webhook

        for headers, body in receiver.requests:
            Webhook(secret).verify(body, headers)
    finally:
        if first.poll() is None:
            first.kill()
        if receiver is not None:
            receiver.close()
        engine.dispose()
