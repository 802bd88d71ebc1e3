"""The service at production volume on the real broker, in one run, as ratios (issue 12, item 6).

    python bench/service.py [--bootstrap HOST:PORT] [--postgres-url URL] [--json]
                            [--stores sqlite,postgresql] [--parts ingest,window,latency]
                            [--events N] [--partitions N] [--processes 1,2] [--ingest-repeats N]
                            [--window-sizes 100k,1M] [--repeats N] [--large-repeats N]
                            [--probes N] [--every SECONDS] [--latency-window N]
                            [--reference-rows N] [--label TEXT]
    python bench/service.py --from-json FILE     (the table of results saved with --json)

The broker is KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:29092; PostgreSQL is the server of
DRIFTLINE_TEST_POSTGRES_URL (or scripts/postgres-local's), where the bench creates and drops its
own databases. A measurement that fails (a store down, a process dead) is reported as FAILED with
its error; the others still run.

Data: bench/run.py's window (bench/drift.py's generator: 40 numeric and 10 categorical features,
drifted; a score from two of them) and its 100,000-row reference with `prediction` and `label`;
model `bench` declares the 50 features and a numeric prediction (bench/run.py's settings, default
drift, quality and CBPE). Events are prediction events without labels, about 1.5 KB of JSON each.

Ingest: EVENTS events produced beforehand to a fresh topic of PARTITIONS partitions (keyed by
request id). Each figure is events/s from the end of the first stored batch to the last event,
read from `driftline_ingest_events_total` on the processes' /metrics (scraped every 0.2 s):
- baseline: a bare kafka-python consumer that `json.loads` every message (bench/service_worker.py
  consume), in a fresh process, run before and after each collector configuration;
- `driftline serve --only ingest` (one process, then two in one consumer group sharing the
  partitions), on SQLite and on PostgreSQL, each on a fresh database and consumer group; its
  ratio is against the mean of the baseline runs just before and after it.
Bytes on disk per event: after the one-process run stops, the SQLite file (with its -wal, -shm
and -journal files) or the `pg_total_relation_size` of every table of the PostgreSQL database
(indexes and TOAST included), divided by the events stored.

Runs: the store is filled directly through the store's write API (`insert_predictions`, one
transaction per `kafka.max_poll_records` events, as the ingest writes a full poll), not through
Kafka: the ingest part already covered Kafka. Where the store has maintenance (compaction of
small batches, vacuum), it is then run over every batch, as a running service keeps its store.
For each window size, the last N events:
`read_window` + `run_input` + `compute_run` (a scheduled run) against `detectors.detect_drift` of
the same 50 features in memory (bench/service_worker.py window, alternating), and the peak RSS of
one run of each in its own process (VmHWM restarted just before the run: interpreter, imports,
fitted reference and, in memory, the frame are in `before`).

Latency: `driftline serve` (every role) on a fresh store, the model's window the last
--latency-window events (produced and stored first), its schedule every --every seconds. Each
probe produces one event at a random moment of the schedule and times, on the wall clock: stored
(the ingest counter on /metrics, scraped every 0.02 s), its run started and finished (the first
run in the API whose window ends at the event's time or later), and that run's metrics on /metrics
(`driftline_monitor_last_run_timestamp_seconds` at or past the run's end). The end-to-end figure
includes waiting for the next tick (on average half the schedule); `without the wait` leaves it out.

The machine is shared: the output starts with its cores and load averages.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg
import yaml
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

# bench/run.py's data and model (this directory is on sys.path when run as a script).
from run import MODEL, N_EVENTS, VERSION, Workload, workload
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from collector.config import KafkaSettings
from collector.events import PredictionEvent, encode_event
from collector.reference import PREDICTION_COLUMN
from collector.store.engine import make_engine, make_session_factory
from collector.store.migrate import upgrade
from collector.store.queries import insert_predictions

WORKER = Path(__file__).resolve().parent / "service_worker.py"
DEFAULT_BOOTSTRAP = "127.0.0.1:29092"
# scripts/postgres-local's server, when DRIFTLINE_TEST_POSTGRES_URL is not set.
DEFAULT_POSTGRES = "postgresql+psycopg://driftline:driftline@127.0.0.1:55432/driftline"
GOAL_INGEST, GOAL_RUN = 0.8, 1.5
STORES = ("sqlite", "postgresql")
PARTS = ("ingest", "window", "latency")
LARGE_WINDOW = 1_000_000  # windows at least this large run --large-repeats rounds, no warm-up
SCRAPE_SECONDS, PROBE_SCRAPE_SECONDS = 0.2, 0.02


def _count(text_value: str) -> int:
    return int(float(text_value.replace("k", "e3").replace("M", "e6")))


def conditions() -> dict[str, Any]:
    """The machine's cores and load averages (1, 5 and 15 minutes), now."""
    return {"cpus": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()]}


# --- services ---------------------------------------------------------------------------------

@dataclass
class Store:
    """A fresh, empty database of one kind."""

    kind: str
    url: str
    path: Path | None = None

    def size_bytes(self) -> int:
        """Bytes on disk: the SQLite files, or every table of the PostgreSQL database."""
        if self.path is not None:
            return sum(p.stat().st_size for p in (
                self.path, *(self.path.with_name(self.path.name + s)
                             for s in ("-wal", "-shm", "-journal"))) if p.exists())
        engine = create_engine(self.url)
        try:
            with engine.connect() as connection:
                return int(connection.execute(text(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') "
                    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                    "AND n.nspname NOT LIKE 'pg_toast%'")).scalar_one())
        finally:
            engine.dispose()


def _admin_dsn(url: str) -> str:
    parsed = make_url(url)
    return (f"host={parsed.host} port={parsed.port or 5432} user={parsed.username} "
            f"password={parsed.password or ''} dbname={parsed.database}")


@contextmanager
def fresh_store(kind: str, postgres_url: str, directory: Path) -> Iterator[Store]:
    """A new SQLite file, or a new database on the PostgreSQL server (dropped afterwards)."""
    if kind == "sqlite":
        path = directory / f"store-{uuid.uuid4().hex[:8]}.db"
        yield Store(kind, f"sqlite+pysqlite:///{path}", path)
        for suffix in ("", "-wal", "-shm", "-journal"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        return
    name = f"driftline_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_admin_dsn(postgres_url), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Store(kind, make_url(postgres_url).set(database=name).render_as_string(
            hide_password=False))
    finally:
        with psycopg.connect(_admin_dsn(postgres_url), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Topics:
    """Fresh topics on the broker, deleted at the end."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="driftline-bench")
        self.created: list[str] = []

    def create(self, prefix: str, partitions: int = 1) -> str:
        name = f"bench.{prefix}.{uuid.uuid4().hex[:8]}"
        self.admin.create_topics([NewTopic(name, num_partitions=partitions,
                                           replication_factor=1)])
        self.created.append(name)
        return name

    def for_service(self, partitions: int) -> dict[str, str]:
        return {"predictions_topic": self.create("predictions", partitions),
                "labels_topic": self.create("labels"),
                "deadletter_topic": self.create("deadletter")}

    def close(self) -> None:
        with suppress(Exception):  # a topic left behind is harmless; the bench's result is not
            self.admin.delete_topics(self.created)
        self.admin.close()


def producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                         batch_size=512 * 1024, max_request_size=4 * 1024 * 1024)


def send(to: KafkaProducer, topic: str, events: Sequence[PredictionEvent]) -> None:
    """Produce the events (keyed by request id, so spread over the partitions) and flush."""
    for event in events:
        to.send(topic, key=(event.request_id or "").encode(), value=encode_event(event))
    to.flush(timeout=120)


def produce(bootstrap: str, topic: str, events: Sequence[PredictionEvent]) -> None:
    client = producer(bootstrap)
    try:
        send(client, topic, events)
    finally:
        client.close(timeout=10)


def events_of(frame: pd.DataFrame, scores: np.ndarray, times: Sequence[datetime], tag: str,
              start: int = 0) -> list[PredictionEvent]:
    """Prediction events of model `bench`, one per row, ids unique to `tag`."""
    return [PredictionEvent(event_id=f"{tag}-{start + i}", model=MODEL, timestamp=at,
                            features=features, prediction=float(score), model_version=VERSION,
                            request_id=f"{tag}-r{start + i}")
            for i, (features, score, at) in enumerate(
                zip(frame.to_dict("records"), scores, times, strict=True))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Serve:
    """`driftline serve` processes on one config (one consumer group), each its own port."""

    def __init__(self, directory: Path, store: Store, bootstrap: str, topics: dict[str, str],
                 *, processes: int, only: str | None, every_seconds: float = 3600.0,
                 window_events: int = 1000) -> None:
        self.ports = [_free_port() for _ in range(processes)]
        self.topic = topics["predictions_topic"]
        config = {
            "database_url": store.url,
            "kafka": {"bootstrap_servers": bootstrap, "group_id": f"bench-{uuid.uuid4().hex[:8]}",
                      **topics},
            "http": {"host": "127.0.0.1", "port": 0},
            "models": [{"name": MODEL, "features": FEATURES, "prediction": "numeric",
                        "reference": {"path": str(directory / "reference.parquet")},
                        "schedule": {"every_seconds": every_seconds},
                        "window": {"last_events": window_events}}],
        }
        path = directory / f"serve-{uuid.uuid4().hex[:8]}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if k not in {"KAFKA_BOOTSTRAP_SERVERS", "DRIFTLINE_DATABASE_URL"}}
        self.logs = [path.with_suffix(f".{i}.log") for i in range(processes)]
        self.processes = []
        for port, log in zip(self.ports, self.logs, strict=True):
            with log.open("wb") as output:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "collector.cli", "serve", "--config", str(path),
                     "--port", str(port), *(["--only", only] if only else [])],
                    stdout=output, stderr=subprocess.STDOUT, env=env))

    def check_alive(self) -> None:
        for process, log in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                raise RuntimeError(f"driftline serve exited {process.returncode}:\n"
                                   f"{log.read_text()[-3000:]}")

    def samples(self, port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        try:
            body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return {}
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body) for s in family.samples}

    def ingested(self, outcome: str = "stored") -> int:
        key = ("driftline_ingest_events_total",
               (("kind", "prediction"), ("model", MODEL), ("outcome", outcome)))
        return int(sum(self.samples(port).get(key, 0.0) for port in self.ports))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, log in zip(self.processes, self.logs, strict=True):
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            if code != 0:
                raise RuntimeError(f"driftline serve exited {code}:\n{log.read_text()[-3000:]}")


FEATURES = {**{f"num_{i:02d}": "numeric" for i in range(40)},
            **{f"cat_{j}": "categorical" for j in range(10)}}


def attempt(errors: dict[str, str], name: str, call: Callable[[], Any]) -> Any:
    """`call()`, or None with its error kept under `name`: one failure stops no other measure."""
    try:
        return call()
    except Exception as exc:
        traceback.print_exc()
        errors[name] = f"{type(exc).__name__}: {exc}"[:2000]
        return None


def _worker(*args: object) -> dict[str, Any]:
    done = subprocess.run([sys.executable, str(WORKER), *map(str, args)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"service_worker.py {args[0]} exited {done.returncode}:\n"
                           f"{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- ingest -----------------------------------------------------------------------------------

def collector_ingest(directory: Path, store: Store, bootstrap: str, topic: str, events: int,
                     processes: int, topics: Topics) -> dict[str, Any]:
    """events/s of `driftline serve --only ingest` reading `topic` into a fresh `store`."""
    serve = Serve(directory, store, bootstrap,
                  {**topics.for_service(1), "predictions_topic": topic},
                  processes=processes, only="ingest")
    try:
        first: tuple[float, int] | None = None
        empty = time.perf_counter()  # the last scrape that found nothing stored yet
        deadline = time.monotonic() + 1800
        while True:
            stored = serve.ingested()
            now = time.perf_counter()
            if stored == 0:
                empty = now
            if first is None and stored > 0:
                first = (now, stored)
            if stored >= events:
                break
            serve.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stored} of {events} events stored in 1800 s")
            time.sleep(SCRAPE_SECONDS)
        duplicates = serve.ingested("duplicate")
    finally:
        serve.stop()
    assert first is not None
    if first[1] < stored:
        seconds, counted = now - first[0], stored - first[1]
    else:  # all of them in the first scrape (a tiny run): from the last scrape with none
        seconds, counted = now - empty, stored
    return {"processes": processes, "stored": stored, "duplicates": duplicates,
            "seconds": seconds, "events_per_second": counted / seconds,
            "bytes_on_disk": store.size_bytes(), "load_average": os.getloadavg()[0]}


def data(args: argparse.Namespace, events: int, directory: Path) -> Workload:
    """bench/run.py's workload of `events` events; its reference written for the processes."""
    work = workload(events)
    work.reference.iloc[:args.reference_rows].to_parquet(directory / "reference.parquet")
    return work


def measure_ingest(args: argparse.Namespace, directory: Path, errors: dict[str, str]
                   ) -> dict[str, Any]:
    work = data(args, args.events, directory)
    start = datetime.now(UTC) - timedelta(hours=2)
    times = [start + timedelta(milliseconds=i) for i in range(args.events)]
    events = events_of(work.features, work.scores, times, f"i{uuid.uuid4().hex[:6]}")
    topics = Topics(args.bootstrap)
    try:
        topic = topics.create("ingest", args.partitions)
        started = time.perf_counter()
        produce(args.bootstrap, topic, events)
        produce_seconds = time.perf_counter() - started
        size = sum(len(encode_event(e)) for e in events[:1000]) / min(1000, len(events))
        del events
        max_poll = KafkaSettings().max_poll_records
        baseline: list[dict[str, Any]] = []

        def bare() -> dict[str, Any]:
            result = _worker("consume", args.bootstrap, topic, args.events, max_poll)
            result["load_average"] = os.getloadavg()[0]
            baseline.append(result)
            print(f"  bare consumer: {result['events_per_second']:,.0f} events/s",
                  file=sys.stderr)
            return result

        configs: list[dict[str, Any]] = []
        for _ in range(args.ingest_repeats):
            before = bare()
            for kind in args.stores:
                for processes in args.processes:

                    def one(kind: str = kind, processes: int = processes) -> dict[str, Any]:
                        with fresh_store(kind, args.postgres_url, directory) as store:
                            return collector_ingest(directory, store, args.bootstrap, topic,
                                                    args.events, processes, topics)

                    result = attempt(errors, f"ingest {kind} x{processes}", one)
                    if result is None:
                        continue
                    after = bare()
                    rate = (before["events_per_second"] + after["events_per_second"]) / 2
                    result.update(store=kind, baseline_events_per_second=rate,
                                  ratio=result["events_per_second"] / rate)
                    print(f"  serve {kind} x{processes}: {result['events_per_second']:,.0f} "
                          f"events/s ({result['ratio']:.2f}x)", file=sys.stderr)
                    configs.append(result)
                    before = after
    finally:
        topics.close()
    return {"events": args.events, "partitions": args.partitions, "event_bytes": size,
            "produce_seconds": produce_seconds, "max_poll_records": max_poll,
            "baseline": baseline, "collector": configs}


# --- runs over windows ------------------------------------------------------------------------

def fill(store: Store, frame: pd.DataFrame, scores: np.ndarray, times: Sequence[datetime],
         batch: int) -> float:
    """Write the events through the store's write API, `batch` a transaction; seconds taken."""
    engine = make_engine(store.url)
    try:
        upgrade(engine)
        sessions = make_session_factory(engine)
        started = time.perf_counter()
        for offset in range(0, len(frame), batch):
            chunk = events_of(frame.iloc[offset:offset + batch], scores[offset:offset + batch],
                              times[offset:offset + batch], "w", offset)
            with sessions.begin() as session:
                insert_predictions(session, chunk, datetime.now(UTC))
        return time.perf_counter() - started
    finally:
        engine.dispose()


def maintain(store: Store) -> str:
    """Bring a freshly filled store to the state a running service keeps it in.

    Where the store has maintenance (`collector.store.retention`: compaction of small batches
    and SQLite's vacuum, run by the scheduler under a lease), run it over every batch, as the
    service does once they are settled; a store without it is left as written.
    """
    try:
        from collector.store import retention
    except ImportError:
        return "no store maintenance in this version"
    from collector.config import RetentionSettings  # present wherever retention is

    engine = make_engine(store.url)
    try:
        sessions = make_session_factory(engine)
        target = RetentionSettings().compact_events
        outcome = retention.compact(sessions, now=datetime.now(UTC) + timedelta(days=1),
                                    target_events=target)
        retention.vacuum(engine)
    finally:
        engine.dispose()
    return (f"compacted as the service does (collector.store.retention.compact, batches of up "
            f"to {target:,} events: {outcome.batches_merged:,} merged into "
            f"{outcome.batches_written:,}) and vacuumed")


def measure_windows(args: argparse.Namespace, directory: Path, errors: dict[str, str]
                    ) -> dict[str, Any]:
    sizes = sorted(args.window_sizes)
    work = data(args, sizes[-1], directory)
    window = work.features.copy()
    window[PREDICTION_COLUMN] = work.scores
    window.to_parquet(directory / "window.parquet")
    del window
    times = [t.to_pydatetime() for t in work.prediction_at]
    batch = KafkaSettings().max_poll_records
    results: dict[str, Any] = {"batch_events": batch, "stores": {}}
    for kind in args.stores:
        entry = attempt(errors, f"window {kind}", partial(
            store_windows, args, directory, kind, work, times, batch))
        if entry is not None:
            results["stores"][kind] = entry
    return results


def store_windows(args: argparse.Namespace, directory: Path, kind: str, work: Workload,
                  times: Sequence[datetime], batch: int) -> dict[str, Any]:
    """Fill a fresh store of `kind`, then time and weigh a run over each window size."""
    sizes = sorted(args.window_sizes)
    with fresh_store(kind, args.postgres_url, directory) as store:
        seconds = fill(store, work.features, work.scores, times, batch)
        written = store.size_bytes()
        started = time.perf_counter()
        maintenance = maintain(store)
        entry: dict[str, Any] = {
            "events": sizes[-1], "fill_seconds": seconds, "bytes_per_event_written":
            written / sizes[-1], "bytes_per_event": store.size_bytes() / sizes[-1],
            "maintenance": maintenance, "maintenance_seconds": time.perf_counter() - started,
            "windows": {}}
        print(f"  {kind}: {sizes[-1]:,} events written in {seconds:.0f} s; {maintenance}",
              file=sys.stderr)
        for size in sizes:
            large = size >= LARGE_WINDOW
            service_peak = _worker("peak", directory, store.url, size, "service")
            memory_peak = _worker("peak", directory, store.url, size, "memory")
            timing = _worker("window", directory, store.url, size,
                             args.large_repeats if large else args.repeats,
                             *([] if large else ["--warm-up"]))
            service = statistics.median(timing["service_seconds"])
            memory = statistics.median(timing["memory_seconds"])
            entry["windows"][size] = {
                **timing, "service_median": service, "memory_median": memory,
                "read_median": statistics.median(timing["read_seconds"]),
                "ratio": service / memory, "service_peak": service_peak,
                "memory_peak": memory_peak, "load_average": os.getloadavg()[0]}
            print(f"  {kind} {size:,}: {service:.2f} s vs {memory:.2f} s "
                  f"({service / memory:.2f}x)", file=sys.stderr)
    return entry


# --- latency ----------------------------------------------------------------------------------

def _stamp(iso: str | None) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else 0.0


def _wait(predicate: Callable[[], Any], serve: Serve, timeout: float, what: str,
          interval: float = PROBE_SCRAPE_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        serve.check_alive()
        time.sleep(interval)
    raise TimeoutError(f"no {what} within {timeout} s")


def _run_with(port: int, event_at: float) -> dict[str, Any] | None:
    """The first finished run whose window ends at `event_at` or later."""
    try:
        runs = httpx.get(f"http://127.0.0.1:{port}/v1/models/{MODEL}/runs?limit=5",
                         timeout=5).json()["runs"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    found = [r for r in runs if r["finished_at"] and _stamp(r["window_end"]) >= event_at - 1e-3]
    return min(found, key=lambda r: _stamp(r["started_at"])) if found else None


def latency(args: argparse.Namespace, directory: Path, kind: str) -> dict[str, Any]:
    work = data(args, args.latency_window + args.probes, directory)
    start = datetime.now(UTC) - timedelta(hours=1)
    tag = f"l{uuid.uuid4().hex[:6]}"
    prefill = events_of(work.features.iloc[:args.latency_window],
                        work.scores[:args.latency_window],
                        [start + timedelta(milliseconds=i) for i in range(args.latency_window)],
                        tag)
    rng = np.random.default_rng(7)
    topics = Topics(args.bootstrap)
    probes: list[dict[str, float]] = []
    client = producer(args.bootstrap)
    try:
        service_topics = topics.for_service(args.partitions)
        produce(args.bootstrap, service_topics["predictions_topic"], prefill)
        with fresh_store(kind, args.postgres_url, directory) as store:
            serve = Serve(directory, store, args.bootstrap, service_topics, processes=1,
                          only=None, every_seconds=args.every,
                          window_events=args.latency_window)
            port = serve.ports[0]
            try:
                _wait(lambda: serve.ingested() >= args.latency_window, serve, 300,
                      "prefill stored", SCRAPE_SECONDS)
                _wait(lambda: _run_with(port, start.timestamp()), serve, 120, "first run",
                      SCRAPE_SECONDS)
                for i in range(args.probes):
                    time.sleep(float(rng.uniform(0, args.every)))
                    probes.append(_probe(args, serve, client, work, args.latency_window + i,
                                         tag))
            finally:
                serve.stop()
    finally:
        client.close(timeout=10)
        topics.close()
    keys = ("end_to_end", "without_wait", "stored", "wait", "run", "metrics")
    return {"store": kind, "every_seconds": args.every, "window_events": args.latency_window,
            "probes": probes,
            "median": {k: statistics.median(p[k] for p in probes) for k in keys},
            "max": {k: max(p[k] for p in probes) for k in keys}}


def _probe(args: argparse.Namespace, serve: Serve, client: KafkaProducer, work: Any, row: int,
           tag: str) -> dict[str, float]:
    """One event produced now; wall-clock seconds to each step of its way to /metrics."""
    port = serve.ports[0]
    stored_before = serve.ingested()
    sent = time.time()
    event = events_of(work.features.iloc[row:row + 1], work.scores[row:row + 1],
                      [datetime.fromtimestamp(sent, UTC)], tag, row)
    event_at = datetime.fromisoformat(json.loads(encode_event(event[0]))["timestamp"].replace(
        "Z", "+00:00")).timestamp()
    send(client, serve.topic, event)
    _wait(lambda: serve.ingested() > stored_before, serve, 60, "probe stored")
    stored = time.time()
    run = _wait(lambda: _run_with(port, event_at), serve, 60 + 3 * args.every, "probe's run",
                0.05)
    finished = _stamp(run["finished_at"])
    key = ("driftline_monitor_last_run_timestamp_seconds", (("model", MODEL),))
    _wait(lambda: serve.samples(port).get(key, 0.0) >= finished, serve, 60, "run's metrics")
    visible = time.time()
    started = _stamp(run["started_at"])
    return {"end_to_end": visible - sent, "stored": stored - sent,
            "wait": max(started - stored, 0.0), "run": finished - started,
            "metrics": visible - finished,
            "without_wait": visible - sent - max(started - stored, 0.0)}


# --- output -----------------------------------------------------------------------------------

def _goal(met: bool) -> str:
    return "met" if met else "MISSED"


def _names(kind: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[kind]


def ingest_lines(ingest: dict[str, Any]) -> list[str]:
    rates = [b["events_per_second"] for b in ingest["baseline"]]
    lines = [f"ingest: {ingest['events']:,} events x 50 features (40 numeric, 10 categorical), "
             f"{ingest['event_bytes']:,.0f} bytes of JSON each, on a topic of "
             f"{ingest['partitions']} partitions, produced beforehand "
             f"({ingest['events'] / ingest['produce_seconds']:,.0f} events/s)",
             f"bare kafka-python consumer + json.loads: median {statistics.median(rates):,.0f} "
             f"events/s over {len(rates)} runs (min {min(rates):,.0f}, max {max(rates):,.0f}), "
             "run before and after each configuration below",
             f"{'driftline serve --only ingest':<38} {'events/s':>9} {'ratio':>7} "
             f"{'vs 1 proc':>9}  goal >= {GOAL_INGEST}x"]
    single: dict[str, float] = {}
    for config in ingest["collector"]:
        name = f"{_names(config['store'])}, {config['processes']} process" + (
            "es" if config["processes"] > 1 else "")
        if config["processes"] == 1:
            single[config["store"]] = config["events_per_second"]
        versus = (f"{config['events_per_second'] / single[config['store']]:>8.2f}x"
                  if config["processes"] > 1 and config["store"] in single else f"{'':>9}")
        exact = "" if config["stored"] == ingest["events"] and not config["duplicates"] else (
            f"  (stored {config['stored']:,}, duplicates {config['duplicates']:,})")
        lines.append(f"{name:<38} {config['events_per_second']:>9,.0f} {config['ratio']:>6.2f}x "
                     f"{versus}  {_goal(config['ratio'] >= GOAL_INGEST)}{exact}")
    lines.append("bytes on disk per event after the 1-process ingest: " + "; ".join(
        f"{_names(c['store'])} {c['bytes_on_disk'] / c['stored']:,.0f} "
        f"({c['bytes_on_disk'] / 1e6:,.1f} MB / {c['stored']:,})"
        for c in ingest["collector"] if c["processes"] == 1))
    return lines


def window_lines(windows: dict[str, Any]) -> list[str]:
    lines = [f"runs: store filled directly through insert_predictions, {windows['batch_events']} "
             "events a transaction (a full ingest poll), not through Kafka; the last N events of "
             "the store",
             "service = read_window + run_input + compute_run; memory = detectors.detect_drift of "
             "the same 50 features in memory; medians; peak MB = VmHWM of one run in a fresh "
             "process (+ its rise over the RSS before the run: the run's own memory)",
             f"{'store':<11} {'window':>9} {'memory s':>9} {'service s':>10} {'(read s)':>9} "
             f"{'ratio':>7}  {'goal <= ' + str(GOAL_RUN) + 'x':<15} {'peak service MB':>17} "
             f"{'peak memory MB':>17}  same drift"]
    for kind, entry in windows["stores"].items():
        for size, w in entry["windows"].items():
            sp, mp = w["service_peak"], w["memory_peak"]
            goal = f"{_goal(w['ratio'] <= GOAL_RUN)} ({len(w['service_seconds'])} runs)"
            lines.append(
                f"{_names(kind):<11} {int(size):>9,} {w['memory_median']:>9.2f} "
                f"{w['service_median']:>10.2f} {w['read_median']:>9.2f} {w['ratio']:>6.2f}x  "
                f"{goal:<15} "
                f"{sp['peak_mb']:>7,.0f} (+{sp['peak_mb'] - sp['rss_before_mb']:>6,.0f}) "
                f"{mp['peak_mb']:>7,.0f} (+{mp['peak_mb'] - mp['rss_before_mb']:>6,.0f})  "
                f"{'yes' if w['same_drift'] else 'NO'}")
    for kind, e in windows["stores"].items():
        written = e.get("bytes_per_event_written", e["bytes_per_event"])
        lines.append(
            f"{_names(kind)} store: {e['events']:,} events written in {e['fill_seconds']:.0f} s "
            f"({e['events'] / e['fill_seconds']:,.0f} events/s), {written:,.0f} bytes per event; "
            f"{e.get('maintenance', '')}" + (
                f" in {e['maintenance_seconds']:.0f} s: {e['bytes_per_event']:,.0f} bytes per "
                "event" if "maintenance_seconds" in e and "no store" not in e["maintenance"]
                else ""))
    return lines


def latency_lines(latencies: list[dict[str, Any]]) -> list[str]:
    if not latencies:
        return []
    first = latencies[0]
    lines = [f"latency: one event produced -> its run's metrics on /metrics; schedule every "
             f"{first['every_seconds']:g} s, window the last {first['window_events']:,} events; "
             f"median (max) of {len(first['probes'])} probes, seconds",
             f"{'store':<11} {'end to end':>14} {'without wait':>14} {'-> stored':>12} "
             f"{'wait tick':>12} {'run':>12} {'-> metrics':>12}"]
    for entry in latencies:
        cells = " ".join(f"{entry['median'][k]:>6.2f} ({entry['max'][k]:>5.2f})" for k in (
            "end_to_end", "without_wait", "stored", "wait", "run", "metrics"))
        lines.append(f"{_names(entry['store']):<11} {cells}")
    return lines


def table(results: dict[str, Any]) -> str:
    start, end = results["conditions_start"], results["conditions_end"]
    lines = [f"bench/service.py{' (' + results['label'] + ')' if results['label'] else ''}: "
             f"broker {results['bootstrap']}, {start['cpus']} cores, load average "
             f"{'/'.join(f'{v:.1f}' for v in start['load_average'])} at start, "
             f"{'/'.join(f'{v:.1f}' for v in end['load_average'])} at the end (1/5/15 min; "
             f"the machine is shared), {results['minutes']:.0f} min; code: {results['code']}"]
    if "ingest" in results:
        lines += ["", *ingest_lines(results["ingest"])]
    if "window" in results:
        lines += ["", *window_lines(results["window"])]
    if results.get("latency"):
        lines += ["", *latency_lines(results["latency"])]
    for part, error in results.get("errors", {}).items():
        lines += ["", f"{part}: FAILED: {error}"]
    return "\n".join(lines)


def code_version() -> str:
    """Where the measured `collector` comes from, and its commit when that is a git tree."""
    import collector

    root = Path(collector.__file__).resolve().parent.parent
    done = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%h %cI"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return f"{root} (not a git tree)"
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "collector"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return f"{root} at {done.stdout.strip()}" + (" + uncommitted changes in collector/"
                                                  if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS",
                                                              DEFAULT_BOOTSTRAP))
    parser.add_argument("--postgres-url", default=os.environ.get("DRIFTLINE_TEST_POSTGRES_URL",
                                                                 DEFAULT_POSTGRES),
                        help="a server where the bench may create and drop its own databases")
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--events", type=int, default=100_000, help="events produced for ingest")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--processes", default="1,2",
                        help="ingest configurations: numbers of serve processes")
    parser.add_argument("--ingest-repeats", type=int, default=1,
                        help="runs of each ingest configuration")
    parser.add_argument("--window-sizes", default="100k,1M")
    parser.add_argument("--repeats", type=int, default=5,
                        help="rounds of each window smaller than 1M")
    parser.add_argument("--large-repeats", type=int, default=2,
                        help="rounds of each window of 1M events or more")
    parser.add_argument("--probes", type=int, default=5, help="latency probes per store")
    parser.add_argument("--every", type=float, default=2.0,
                        help="the latency model's schedule, seconds")
    parser.add_argument("--latency-window", type=int, default=10_000)
    parser.add_argument("--reference-rows", type=int, default=N_EVENTS,
                        help="rows of the reference (bench/run.py's, cut)")
    parser.add_argument("--label", default="", help="a note printed in the header")
    parser.add_argument("--from-json", type=Path, default=None, metavar="FILE",
                        help="print the table of results saved with --json, measure nothing")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.from_json is not None:
        print(table(json.loads(args.from_json.read_text(encoding="utf-8"))))
        return
    args.processes = [int(p) for p in args.processes.split(",") if p]
    args.stores = [s for s in args.stores.split(",") if s]
    parts = [p for p in args.parts.split(",") if p]
    args.window_sizes = [_count(s) for s in args.window_sizes.split(",") if s]
    if set(args.stores) - set(STORES) or set(parts) - set(PARTS):
        parser.error(f"--stores takes {','.join(STORES)}; --parts takes {','.join(PARTS)}")
    if min(args.events, args.latency_window, *args.window_sizes) < 100 or min(
            args.repeats, args.large_repeats, args.probes, args.ingest_repeats,
            args.partitions, args.reference_rows, *args.processes) < 1:
        parser.error("sizes must be at least 100 events, counts at least 1")
    # SIGTERM unwinds like Ctrl-C, so the serve processes stop and the topics and databases go.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    started = time.perf_counter()
    results: dict[str, Any] = {"label": args.label, "bootstrap": args.bootstrap,
                               "code": code_version(), "conditions_start": conditions()}
    with tempfile.TemporaryDirectory(prefix="driftline-bench-service-") as tmp:
        directory = Path(tmp)
        errors: dict[str, str] = {}
        measures: dict[str, Callable[[], Any]] = {
            "ingest": lambda: measure_ingest(args, directory, errors),
            "window": lambda: measure_windows(args, directory, errors),
            "latency": lambda: [entry for entry in (
                attempt(errors, f"latency {kind}", partial(latency, args, directory, kind))
                for kind in args.stores) if entry is not None]}
        for part in parts:
            print(part, file=sys.stderr)
            found = attempt(errors, part, measures[part])
            if found is not None:
                results[part] = found
        if errors:
            results["errors"] = errors
    results["conditions_end"] = conditions()
    results["minutes"] = (time.perf_counter() - started) / 60
    print(json.dumps(results, indent=2, default=str) if args.json else table(results))


if __name__ == "__main__":
    main()
