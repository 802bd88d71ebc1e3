"""Per-call latency of the sidecar's log() against a bare dict copy measured in the same run.

    python bench/sidecar.py [--calls N] [--rate R] [--json]

The baseline is `dict(features)` on the same features: the least any logger must do to keep
a snapshot of the request. Runs with no broker reachable (the case Must-show 6 names), and
against a real broker too when KAFKA_BOOTSTRAP_SERVERS is set (into its own topic,
driftline.bench.sidecar): once back to back, and once paced at --rate calls per second with a
sleep between calls standing for the serving thread's own work. Reports median, p99 and max in
microseconds, the ratios to the baseline, how many calls took over 1 ms, and with a broker the
rate at which the background thread drained the buffer. The goal is p99 under 1 ms.

Back to back is the worst case for a serving thread: the sidecar's thread and kafka-python's
sender thread compete for the GIL all the time, and CPython hands it over to a waiting thread
only every 5 ms (sys.getswitchinterval()); the max column is mostly the cyclic garbage
collector. It also times the two buffer designs the sidecar chose between (a deque under a
lock, a SimpleQueue with a locked counter).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any

import numpy as np

from driftline_sidecar import PredictionLogger

FEATURES = {"amount": 12.5, "age": 41.0, "n_items": 3.0, "hour": 14.5, "country": "DE",
            "device": "ios"}
BENCH_TOPIC = "driftline.bench.sidecar"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(call: Callable[[int], object], n: int, pause_seconds: float = 0.0) -> np.ndarray:
    samples = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        started = clock()
        call(i)
        samples[i] = clock() - started
        if pause_seconds:
            time.sleep(pause_seconds)  # the serving thread's own work, which frees the GIL
    return samples / 1000.0  # microseconds


def _summary(samples: np.ndarray) -> dict[str, float]:
    return {"median_us": float(np.median(samples)), "p99_us": float(np.percentile(samples, 99)),
            "max_us": float(samples.max()), "over_1ms": int((samples > 1000).sum())}


def _ensure_topic(bootstrap: str) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="driftline-bench")
    try:
        admin.create_topics([NewTopic(BENCH_TOPIC, num_partitions=1, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def measure(bootstrap: str, calls: int, *, drain: bool, rate: float = 0.0) -> dict[str, Any]:
    pause = 1.0 / rate if rate else 0.0
    baseline = _summary(_timed(lambda _i: dict(FEATURES), calls, pause))
    with PredictionLogger(bootstrap, model="bench", buffer_size=calls + 10,
                          predictions_topic=BENCH_TOPIC, max_unsent_seconds=600) as logger:
        logger.log(features=FEATURES, prediction=0.5)  # connect before timing
        logger.flush(timeout_seconds=10 if drain else 0)
        started = time.perf_counter()
        logged = _summary(_timed(
            lambda i: logger.log(features=FEATURES, prediction=0.5, request_id=str(i)), calls,
            pause))
        drained = logger.flush(timeout_seconds=300) if drain else False
        elapsed = time.perf_counter() - started
        stats = logger.stats
        logger.close(timeout_seconds=1)
    result: dict[str, Any] = {
        "baseline_dict_copy": baseline, "log": logged,
        "ratio": {"median": logged["median_us"] / baseline["median_us"],
                  "p99": logged["p99_us"] / baseline["p99_us"]},
        "counts": {"enqueued": stats.enqueued, "sent": stats.sent,
                   "dropped": stats.dropped_total}}
    if drain and drained:
        result["sent_per_second"] = stats.sent / elapsed
    return result


def buffer_designs(n: int) -> dict[str, float]:
    """Nanoseconds per append-and-count of the two buffer designs (single thread)."""
    lock = threading.Lock()
    ring: deque[int] = deque()
    queue: SimpleQueue[int] = SimpleQueue()
    counts = [0, 0]

    def with_deque() -> None:
        with lock:
            if len(ring) < n:
                ring.append(1)
                counts[0] += 1

    def with_simple_queue() -> None:
        with lock:
            if counts[1] >= n:
                return
            counts[1] += 1
        queue.put(1)

    result = {}
    for name, call in (("deque_under_lock_ns", with_deque),
                       ("simple_queue_with_counter_ns", with_simple_queue)):
        started = time.perf_counter_ns()
        for _ in range(n):
            call()
        result[name] = (time.perf_counter_ns() - started) / n
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=2000.0,
                        help="calls per second in the paced run against a broker (10 s of it)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "calls": args.calls,
        "no_broker": measure(f"127.0.0.1:{_closed_port()}", args.calls, drain=False)}
    broker = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if broker:
        _ensure_topic(broker)
        results["real_broker"] = measure(broker, args.calls, drain=True)
        paced_calls = min(args.calls, int(args.rate * 10))
        results["real_paced"] = measure(broker, paced_calls, drain=True, rate=args.rate)
        results["real_paced"]["rate_per_second"] = args.rate
    results["buffer"] = buffer_designs(args.calls)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"sidecar log() latency over {args.calls} calls (microseconds)")
    print(f"{'case':<12} {'what':<20} {'median':>8} {'p99':>8} {'max':>9} {'>1ms':>5}")
    for case in ("no_broker", "real_broker", "real_paced"):
        if case not in results:
            continue
        result = results[case]
        for what in ("baseline_dict_copy", "log"):
            r = result[what]
            print(f"{case:<12} {what:<20} {r['median_us']:8.2f} {r['p99_us']:8.2f} "
                  f"{r['max_us']:9.1f} {r['over_1ms']:5d}")
        ratio = result["ratio"]
        goal = "met" if result["log"]["p99_us"] < 1000 else "MISSED"
        print(f"{case:<12} {'ratio log/baseline':<20} {ratio['median']:8.1f} {ratio['p99']:8.1f}"
              f"   p99 goal < 1000 us: {goal}")
        if "sent_per_second" in result:
            print(f"{case:<12} background thread sent {result['sent_per_second']:,.0f} events/s "
                  f"({result['counts']['sent']} sent)")
    buffer = results["buffer"]
    print(f"buffer: deque under a lock {buffer['deque_under_lock_ns']:.0f} ns, SimpleQueue with a "
          f"locked counter {buffer['simple_queue_with_counter_ns']:.0f} ns per append")


if __name__ == "__main__":
    main()
