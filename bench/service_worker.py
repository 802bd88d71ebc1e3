"""One measurement of bench/service.py in a fresh process.

    python bench/service_worker.py consume BOOTSTRAP TOPIC EVENTS MAX_POLL_RECORDS
    python bench/service_worker.py window  DATA_DIR DATABASE_URL EVENTS ROUNDS [--warm-up]
    python bench/service_worker.py peak    DATA_DIR DATABASE_URL EVENTS {service,memory}

Each prints one JSON object on its last line of stdout.

- consume: the baseline of ingest, a bare kafka-python consumer (a fresh group, the fetch sizes
  of the collector's consumer, no commits) that `json.loads` every message of TOPIC until EVENTS
  were read. events_per_second counts from the end of the first batch to the last message, as
  bench/service.py counts the collector's (the group join is not part of either).
- window: the window of the last EVENTS events of model `bench`, two ways, alternating over
  ROUNDS rounds (the order rotates each round, so a change of the machine's load hits both):
  `service` = `read_window` from the store at DATABASE_URL + `run_input` + `compute_run`, as
  `collector.monitor` makes a run; `memory` = `detectors.detect_drift` of the same 50 feature
  columns, read beforehand from DATA_DIR/window.parquet, against the reference's profile of
  those features. Also checks that the drift statistics of both are the same.
- peak: one run of one path after restarting the kernel's peak-RSS count (VmHWM, through
  /proc/self/clear_refs) once the reference is fitted (and, for `memory`, the frame read): the
  process's peak resident set size during the run and its increase over the RSS before it.

DATA_DIR holds reference.parquet (features, `prediction`, `label`) and window.parquet (the
stored events' features and `prediction`, in order), written by bench/service.py.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

# bench/drift_runner.py's peak-RSS helpers and bench/run.py's model (this directory is on
# sys.path when run as a script).
from drift_runner import _maxrss_mb, _reset_peak, _status_mb
from run import MODEL, model_settings

FETCH_BYTES = 16 * 1024 * 1024  # the collector consumer's max_partition_fetch_bytes


def consume(bootstrap: str, topic: str, events: int, max_poll_records: int) -> dict[str, Any]:
    """Read `events` messages of `topic` with a bare consumer that JSON-decodes each."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap.split(","), group_id=f"bench-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False, auto_offset_reset="earliest",
        max_poll_records=max_poll_records, max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_bytes=2 * FETCH_BYTES)
    read, first_batch, started = 0, 0, 0.0
    subscribed = time.perf_counter()
    deadline = time.monotonic() + 600
    try:
        while read < events:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {read} of {events} events in 600 s")
            batch = consumer.poll(timeout_ms=500, max_records=max_poll_records)
            for records in batch.values():
                for record in records:
                    json.loads(record.value)
                read += len(records)
            if batch and not first_batch:
                first_batch, started = read, time.perf_counter()
        ended = time.perf_counter()
    finally:
        consumer.close(autocommit=False)
    # All in the first batch (a tiny run): counted from the subscription, group join included.
    counted, seconds = ((read - first_batch, ended - started) if read > first_batch
                        else (read, ended - subscribed))
    return {"events": read, "counted_events": counted, "seconds": seconds,
            "events_per_second": counted / seconds}


class Window:
    """The two paths over one window, with everything fitted and read beforehand."""

    def __init__(self, data_dir: Path, database_url: str, events: int, *, frame: bool) -> None:
        from collector.reference import ModelReference
        from collector.run import drift_options, subset
        from collector.store import make_engine, make_session_factory

        self.model = model_settings(segments=False)
        self.features = list(self.model.features)
        reference = pd.read_parquet(data_dir / "reference.parquet")
        self.reference = ModelReference.fit(self.model, reference, "generated")
        self.profile = subset(self.reference.profile, self.features)
        self.options = drift_options(self.model)
        self.events = events
        self.frame: pd.DataFrame | None = None
        if frame:
            # Only the window's rows become a DataFrame (the file holds the largest window).
            table = pq.read_table(data_dir / "window.parquet", columns=self.features)
            self.frame = table.slice(table.num_rows - events).to_pandas()
            del table
        self.engine = make_engine(database_url)
        self.sessions = make_session_factory(self.engine)
        self.now = datetime.now(UTC) + timedelta(days=3650)
        self.read_seconds: list[float] = []

    def service(self) -> Any:
        """read_window + run_input + compute_run, as a scheduled run makes them."""
        from collector.monitor import run_input
        from collector.run import compute_run
        from collector.store.window import read_window

        started = time.perf_counter()
        with self.sessions() as session:
            window = read_window(session, MODEL, now=self.now, last_events=self.events,
                                 expected=self.features)
        self.read_seconds.append(time.perf_counter() - started)
        if window.n != self.events:
            raise RuntimeError(f"the store gave {window.n} events, not {self.events}")
        return compute_run(self.model, self.reference, run_input(self.model, window))

    def memory(self) -> Any:
        """`detectors.detect_drift` of the frame in memory."""
        from detectors import detect_drift

        return detect_drift(self.profile, self.frame, self.options)


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()  # a collection left over from the previous call is not this call's cost
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def _same_drift(run: Any, report: Any, features: list[str]) -> bool:
    """The run's drift statistics and p-values of the features equal the in-memory report's."""
    for name in features:
        stored, memory = run.drift.features[name], report.features[name]
        if (stored.method, stored.status, stored.statistic, stored.p_value) != (
                memory.method, memory.status, memory.statistic, memory.p_value):
            return False
    return bool(run.drift.dataset_drifted == report.dataset_drifted)


def window(data_dir: Path, database_url: str, events: int, rounds: int, *,
           warm_up: bool) -> dict[str, Any]:
    """Alternate the two paths over `rounds` rounds; seconds of each run."""
    paths = Window(data_dir, database_url, events, frame=True)
    calls = {"service": paths.service, "memory": paths.memory}
    results: dict[str, Any] = {}
    if warm_up:
        for name, call in calls.items():
            results[name] = call()
    paths.read_seconds.clear()
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed, results[name] = _timed(calls[name])
            seconds[name].append(elapsed)
    paths.engine.dispose()
    return {"events": events, "service_seconds": seconds["service"],
            "memory_seconds": seconds["memory"], "read_seconds": paths.read_seconds,
            "same_drift": _same_drift(results["service"], results["memory"], paths.features),
            "dataset_drifted": bool(results["memory"].dataset_drifted)}


def peak(data_dir: Path, database_url: str, events: int, path: str) -> dict[str, Any]:
    """One run of `path` with the process's peak RSS restarted just before it."""
    paths = Window(data_dir, database_url, events, frame=path == "memory")
    call = paths.service if path == "service" else paths.memory
    gc.collect()
    before_mb = _status_mb("VmRSS")
    reset = _reset_peak()
    elapsed, _result = _timed(call)
    peak_mb = _status_mb("VmHWM") if reset else None
    paths.engine.dispose()
    return {"path": path, "events": events, "seconds": elapsed, "rss_before_mb": before_mb,
            "peak_mb": peak_mb if peak_mb is not None else _maxrss_mb(),
            "peak_from": "VmHWM" if reset and peak_mb is not None else "ru_maxrss"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    read = commands.add_parser("consume")
    read.add_argument("bootstrap")
    read.add_argument("topic")
    read.add_argument("events", type=int)
    read.add_argument("max_poll_records", type=int)
    for name in ("window", "peak"):
        command = commands.add_parser(name)
        command.add_argument("data_dir", type=Path)
        command.add_argument("database_url")
        command.add_argument("events", type=int)
        if name == "window":
            command.add_argument("rounds", type=int)
            command.add_argument("--warm-up", action="store_true")
        else:
            command.add_argument("path", choices=["service", "memory"])
    args = parser.parse_args()
    if args.command == "consume":
        result = consume(args.bootstrap, args.topic, args.events, args.max_poll_records)
    elif args.command == "window":
        result = window(args.data_dir, args.database_url, args.events, args.rounds,
                        warm_up=args.warm_up)
    else:
        result = peak(args.data_dir, args.database_url, args.events, args.path)
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
