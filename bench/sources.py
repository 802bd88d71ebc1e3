"""The loggers' sources on the real broker: the bridge's pairing rate and the CloudEvents endpoint.

    python bench/sources.py [--bootstrap HOST:PORT] [--pairs N] [--partitions N] [--posts N]
                            [--json]

The broker is KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:29092. Each figure is a ratio against a
baseline measured in the same run on the same machine:

- bridge: PAIRS KServe inferences (a request and a response CloudEvent each, one row of four
  features, in the raw topic's shape the endpoint writes, keyed by request id) are produced
  beforehand to a fresh topic of PARTITIONS partitions, halves in random order. The baseline is
  a bare kafka-python consumer that `json.loads` every message of the topic; the bridge
  (`collector.sources.bridge.Bridge`, in this process, a fresh consumer group) decodes, pairs,
  parses the payloads and produces one prediction event per inference with acks=all. Reported:
  messages/s of each and their ratio, read from the time the first message is read to the
  last (the bridge's from `driftline_sources_events_total`).
- endpoint: POSTS KServe request CloudEvents posted one after the other to
  `POST /v1/ingest/cloudevents` (uvicorn in this process, as `serve` runs it), against the
  baseline of the same raw message written with kafka-python's `send(...).get()` (acks=all),
  which is the least a durable answer costs. Reported: median and p99 per call in ms, and the
  ratios.

The machine is shared: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import threading
import time
import uuid
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from prometheus_client import CollectorRegistry

from collector.config import KafkaSettings
from collector.config_sources import CloudEventsSource
from collector.sources.bridge import Bridge
from collector.sources.cloudevents import RawWriter, cloudevents_router, parse_http
from collector.sources.metrics import SourceMetrics

TYPE = "org.kubeflow.serving.inference."


def _headers(kind: str, event_id: str) -> dict[str, str]:
    return {"ce-specversion": "1.0", "ce-id": event_id, "ce-type": TYPE + kind,
            "ce-source": "http://localhost:9081/", "ce-inferenceservicename": "sklearn-iris",
            "ce-namespace": "default", "ce-component": "predictor", "ce-endpoint": "default",
            "ce-time": "2026-11-30T00:00:00Z", "content-type": "application/json"}


def _topics(bootstrap: str, partitions: int, *names: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="driftline-bench")
    made = [f"{name}.{uuid.uuid4().hex[:8]}" for name in names]
    admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1)
                         for t in made])
    admin.close()
    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(probe.partitions_for_topic(t) for t in made):
        time.sleep(0.2)
    probe.close()
    return made


def _fill(bootstrap: str, topic: str, pairs: int, rng: random.Random) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    for _ in range(pairs):
        event_id = str(uuid.uuid4())
        row = [round(rng.uniform(4, 8), 1) for _ in range(4)]
        halves = [("request", json.dumps({"instances": [row]}).encode()),
                  ("response", json.dumps({"predictions": [rng.randrange(3)]}).encode())]
        rng.shuffle(halves)
        for kind, body in halves:
            event = parse_http(_headers(kind, event_id), body)[0]
            producer.send(topic, key=event.key, value=event.value, headers=event.headers)
    producer.flush()
    producer.close()


def _baseline_consume(bootstrap: str, topic: str, expected: int) -> float:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=f"bench-{uuid.uuid4().hex[:8]}", enable_auto_commit=False,
                             max_poll_records=500)
    seen, first = 0, None
    while seen < expected:
        for records in consumer.poll(timeout_ms=500).values():
            if first is None:
                first = time.perf_counter()
            for record in records:
                json.loads(record.value)
                seen += 1
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return expected / elapsed


def _bridge_rate(bootstrap: str, topic: str, pairs: int, partitions: int) -> float:
    predictions, labels, dead = _topics(bootstrap, partitions, "bench.predictions",
                                        "bench.labels", "bench.deadletter")
    kafka = KafkaSettings(bootstrap_servers=bootstrap, group_id=f"bench-{uuid.uuid4().hex[:8]}",
                          predictions_topic=predictions, labels_topic=labels,
                          deadletter_topic=dead)
    source = CloudEventsSource(name="kserve", kind="cloudevents", topic=topic,
                               models={"sklearn-iris": "iris"}, pairing_timeout_seconds=600)
    registry = CollectorRegistry()
    bridge = Bridge(kafka, [source], SourceMetrics.create(registry),
                    model_features={"iris": ["a", "b", "c", "d"]}, poll_timeout_ms=100)
    stop = threading.Event()
    thread = threading.Thread(target=bridge.run, args=(stop,))
    thread.start()

    def produced() -> float:
        value = registry.get_sample_value("driftline_sources_events_total",
                                          {"source": "kserve", "kind": "prediction"})
        return value or 0.0

    first = None
    while produced() < pairs:
        if first is None and registry.get_sample_value(
                "driftline_sources_messages_total", {"source": "kserve", "outcome": "decoded"}):
            first = time.perf_counter()
        time.sleep(0.01)
    elapsed = time.perf_counter() - (first or time.perf_counter())
    stop.set()
    thread.join(timeout=30)
    return 2 * pairs / elapsed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentiles(samples: list[float]) -> dict[str, float]:
    values = np.array(samples) * 1000
    return {"median_ms": float(np.median(values)), "p99_ms": float(np.percentile(values, 99))}


def _endpoint(bootstrap: str, posts: int) -> dict[str, Any]:
    (topic,) = _topics(bootstrap, 3, "bench.cloudevents")
    body = json.dumps({"instances": [[6.8, 2.8, 4.8, 1.4]]}).encode()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    baseline = []
    for _ in range(posts):
        event = parse_http(_headers("request", str(uuid.uuid4())), body)[0]
        started = time.perf_counter()
        producer.send(topic, key=event.key, value=event.value, headers=event.headers).get(30)
        baseline.append(time.perf_counter() - started)
    producer.close()
    source = CloudEventsSource(name="kserve", kind="cloudevents", topic=topic)
    writer = RawWriter(bootstrap, max_event_bytes=source.max_event_bytes,
                       timeout_seconds=source.write_timeout_seconds)
    app = FastAPI()
    app.include_router(cloudevents_router([source], {"kserve": writer},
                                          SourceMetrics.create(CollectorRegistry()).received))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    timings = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(posts + 50):
            started = time.perf_counter()
            answer = client.post("/v1/ingest/cloudevents", content=body,
                                 headers=_headers("request", str(uuid.uuid4())))
            if i >= 50:  # the first posts create the producer and warm the connection
                timings.append(time.perf_counter() - started)
            if answer.status_code != 200:
                raise RuntimeError(f"the endpoint answered {answer.status_code}: {answer.text}")
    server.should_exit = True
    thread.join(timeout=10)
    writer.close()
    base, endpoint = _percentiles(baseline), _percentiles(timings)
    return {"baseline": base, "endpoint": endpoint,
            "median_ratio": endpoint["median_ms"] / base["median_ms"],
            "p99_ratio": endpoint["p99_ms"] / base["p99_ms"]}


def main() -> None:
    """Run both measurements and print them (or their JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap",
                        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092"))
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--posts", type=int, default=2_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    rng = random.Random(20261130)
    (raw,) = _topics(args.bootstrap, args.partitions, "bench.sources")
    _fill(args.bootstrap, raw, args.pairs, rng)
    baseline = _baseline_consume(args.bootstrap, raw, 2 * args.pairs)
    bridge = _bridge_rate(args.bootstrap, raw, args.pairs, args.partitions)
    endpoint = _endpoint(args.bootstrap, args.posts)
    results = {"pairs": args.pairs, "partitions": args.partitions,
               "baseline_messages_per_s": baseline, "bridge_messages_per_s": bridge,
               "bridge_ratio": bridge / baseline, "endpoint": endpoint}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"bridge: {bridge:,.0f} messages/s ({args.pairs:,} pairs, {args.partitions} "
          f"partitions) against a bare JSON-decoding consumer's {baseline:,.0f}: "
          f"{bridge / baseline:.2f}x")
    base, ce = endpoint["baseline"], endpoint["endpoint"]
    print(f"endpoint: median {ce['median_ms']:.2f} ms, p99 {ce['p99_ms']:.2f} ms per "
          f"CloudEvent against send().get() acks=all median {base['median_ms']:.2f} ms, p99 "
          f"{base['p99_ms']:.2f} ms: {endpoint['median_ratio']:.2f}x / "
          f"{endpoint['p99_ratio']:.2f}x")


if __name__ == "__main__":
    main()
