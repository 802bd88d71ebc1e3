"""The example model server's traffic: predictions logged through the sidecar, labels later.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python examples/traffic.py [--drift-after 120]

Traffic follows the reference distribution, then drifts after `--drift-after` seconds into the
region where the model is unsure (see fraud.py): accuracy falls. The truth of a prediction is
known 5 to 20 seconds after it was served, and for one in ten never. `driftline demo` runs the
same loop in a thread; docker-compose runs this script as the `model-server` service.
"""

from __future__ import annotations

import argparse
import heapq
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fraud import MODEL_SEED, FraudModel, generate, true_labels

from driftline_sidecar import PredictionLogger

LABEL_DELAY_SECONDS = (5.0, 20.0)
LABEL_SHARE = 0.9


def run(stop: threading.Event, drift_at: float, bootstrap: str, topics: tuple[str, str],
        counters: dict[str, int], *, batch: int = 20, pause_seconds: float = 0.4) -> None:
    """Serve generated requests until `stop` is set, logging each prediction and its label."""
    model = FraudModel.train(np.random.default_rng(MODEL_SEED))
    # Seeded, so every demo serves the same requests. Seeds 11 and 12 drew, by chance, a run
    # of amounts or hours whose windows test p < 0.01 against the reference before any drift;
    # every demo replayed that false alarm. 17's first 4,000 requests have none.
    rng = np.random.default_rng(17)
    pending: list[tuple[float, str, int]] = []  # a heap of (due, request id, label)
    with PredictionLogger(bootstrap_servers=bootstrap, model="fraud", model_version="1",
                          predictions_topic=topics[0], labels_topic=topics[1]) as sidecar:
        while not stop.is_set():
            frame = generate(batch, rng, drift=time.monotonic() >= drift_at)
            labels = true_labels(frame, rng)
            delays = rng.uniform(*LABEL_DELAY_SECONDS, batch)
            known = rng.random(batch) < LABEL_SHARE
            rows = frame.to_dict("records")
            for row, label, delay, sent in zip(rows, labels, delays, known, strict=True):
                started = time.perf_counter()
                score = model.predict(row)
                latency_ms = (time.perf_counter() - started) * 1000
                request_id = uuid.uuid4().hex[:12]
                sidecar.log(features=row, prediction=round(score, 6), request_id=request_id,
                            latency_ms=latency_ms)
                counters["sent"] = counters.get("sent", 0) + 1
                if sent:
                    heapq.heappush(pending, (time.monotonic() + delay, request_id, int(label)))
            while pending and pending[0][0] <= time.monotonic():
                _, request_id, label = heapq.heappop(pending)
                sidecar.log_label(request_id=request_id, label=label)
                counters["labels"] = counters.get("labels", 0) + 1
            stop.wait(pause_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--drift-after", type=float, default=120.0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    counters: dict[str, int] = {}
    run(stop, time.monotonic() + args.drift_after, bootstrap,
        ("driftline.predictions", "driftline.labels"), counters)
    print(f"sent {counters.get('sent', 0)} predictions and {counters.get('labels', 0)} labels")


if __name__ == "__main__":
    main()
