"""Must-show 6: with no broker, log() never raises or blocks, and drops are counted."""

from __future__ import annotations

import socket
import time

import numpy as np
from prometheus_client import CollectorRegistry

from collector.sidecar import PredictionLogger


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_broker_never_raises_and_counts_drops() -> None:
    registry = CollectorRegistry()
    logger = PredictionLogger(f"127.0.0.1:{_closed_port()}", model="m", buffer_size=100,
                              max_unsent_seconds=0.2, registry=registry)
    latencies = []
    for i in range(1000):
        started = time.perf_counter()
        result = logger.log(features={"x": float(i), "c": "a"}, prediction=0.5, request_id=str(i))
        latencies.append(time.perf_counter() - started)
        assert result is None or len(result) == 32
    assert logger.log_label(request_id="1", label=1) is None or True
    started = time.perf_counter()
    logger.close(timeout_seconds=1.0)
    assert time.perf_counter() - started < 3.0
    stats = logger.stats
    assert stats.sent == 0
    assert stats.dropped["buffer_full"] >= 800
    assert stats.enqueued + stats.dropped["buffer_full"] == 1001
    assert stats.dropped_total == 1001  # everything enqueued expired or was dropped at close
    dropped = registry.get_sample_value("driftline_sidecar_dropped_total",
                                        {"reason": "buffer_full"})
    assert dropped == stats.dropped["buffer_full"]
    assert float(np.percentile(latencies, 50)) < 0.01  # sanity only; bench/sidecar.py measures


def test_bad_input_is_dropped_not_raised() -> None:
    with PredictionLogger(f"127.0.0.1:{_closed_port()}", max_unsent_seconds=0.1) as logger:
        assert logger.log(features={"x": 1.0}, prediction=1) is None  # no model name anywhere
        assert logger.log(features=[1, 2], prediction=1, model="m") is None  # type: ignore[arg-type]
        assert logger.log(features={"x": float("nan")}, prediction=1, model="m") is not None
    stats = logger.stats
    assert stats.dropped["invalid"] == 2
    # NaN is caught by the encoder in the background thread (or expired with no broker)
    assert stats.dropped.get("encode_error", 0) + stats.dropped.get("broker_unavailable", 0) \
        + stats.dropped.get("closed", 0) == 1


def test_after_close_events_are_dropped_as_closed() -> None:
    logger = PredictionLogger(f"127.0.0.1:{_closed_port()}", model="m", max_unsent_seconds=0.1)
    logger.close(timeout_seconds=0.5)
    assert logger.log(features={"x": 1.0}, prediction=1) is None
    assert logger.stats.dropped["closed"] >= 1
