"""Per-call latency of the sidecar's log() against a bare dict copy measured in the same run.

    python bench/sidecar.py [--calls N] [--json]

Runs with no broker reachable (the worst case for a serving thread), and against a real
broker too when KAFKA_BOOTSTRAP_SERVERS is set. Reports median and p99 in microseconds and
the ratios to the baseline; the goal is p99 under 1 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time

import numpy as np

from collector.sidecar import PredictionLogger

FEATURES = {"amount": 12.5, "age": 41.0, "n_items": 3.0, "hour": 14.5, "country": "DE",
            "device": "ios"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(call, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    samples = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        started = clock()
        call(i)
        samples[i] = clock() - started
    return samples / 1000.0  # microseconds


def _summary(samples: np.ndarray) -> dict[str, float]:
    return {"median_us": float(np.median(samples)), "p99_us": float(np.percentile(samples, 99)),
            "max_us": float(samples.max())}


def measure(bootstrap: str, calls: int) -> dict[str, dict[str, float]]:
    baseline = _summary(_timed(lambda _i: dict(FEATURES), calls))
    with PredictionLogger(bootstrap, model="bench", buffer_size=calls + 10,
                          max_unsent_seconds=60) as logger:
        logged = _summary(_timed(
            lambda i: logger.log(features=FEATURES, prediction=0.5, request_id=str(i)), calls))
        stats = logger.stats
    return {"baseline_dict_copy": baseline, "log": logged,
            "ratio": {"median": logged["median_us"] / baseline["median_us"],
                      "p99": logged["p99_us"] / baseline["p99_us"]},
            "counts": {"enqueued": stats.enqueued, "sent": stats.sent,
                       "dropped": stats.dropped_total}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {"no_broker": measure(f"127.0.0.1:{_closed_port()}", args.calls)}
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        results["real_broker"] = measure(os.environ["KAFKA_BOOTSTRAP_SERVERS"], args.calls)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"sidecar log() latency over {args.calls} calls (microseconds)")
    print(f"{'case':<12} {'what':<20} {'median':>8} {'p99':>8} {'max':>9}")
    for case, result in results.items():
        for what in ("baseline_dict_copy", "log"):
            r = result[what]
            print(f"{case:<12} {what:<20} {r['median_us']:8.2f} {r['p99_us']:8.2f} "
                  f"{r['max_us']:9.1f}")
        ratio = result["ratio"]
        print(f"{case:<12} {'ratio log/baseline':<20} {ratio['median']:8.1f} {ratio['p99']:8.1f}"
              f"   p99 goal < 1000 us: {'met' if result['log']['p99_us'] < 1000 else 'MISSED'}")


if __name__ == "__main__":
    main()
