"""Shared set-up for the spine's integration tests: data, events, config, receivers, scrapes."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from collector.config import Settings, parse_settings
from collector.events import PredictionEvent, encode_event

NUMERIC = {"a": (10.0, 2.0), "b": (0.0, 1.0), "c": (100.0, 15.0), "d": (5.0, 1.0)}
COLORS, COLOR_P, COLOR_P_DRIFT = ["red", "green", "blue"], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]
SHAPES, SHAPE_P = ["circle", "square"], [0.6, 0.4]
SCHEMA = {"a": "numeric", "b": "numeric", "c": "numeric", "d": "numeric",
          "color": "categorical", "shape": "categorical"}


def make_frame(rng: np.random.Generator, n: int, *, drift: bool = False) -> pd.DataFrame:
    """6 features: a, b, c, d numeric; color, shape categorical. Drift: a, b +1 sd; color mix."""
    data: dict[str, Any] = {}
    for name, (mean, sd) in NUMERIC.items():
        shift = sd if drift and name in {"a", "b"} else 0.0
        data[name] = rng.normal(mean + shift, sd, n)
    data["color"] = rng.choice(COLORS, n, p=COLOR_P_DRIFT if drift else COLOR_P)
    data["shape"] = rng.choice(SHAPES, n, p=SHAPE_P)
    return pd.DataFrame(data)


def prediction_events(frame: pd.DataFrame, model: str) -> list[PredictionEvent]:
    """One prediction event per row, with fresh ids and increasing timestamps."""
    start = datetime.now(UTC) - timedelta(seconds=len(frame))
    events = []
    for i, row in enumerate(frame.to_dict("records")):
        features = {k: (float(v) if isinstance(v, float | np.floating) else str(v))
                    for k, v in row.items()}
        events.append(PredictionEvent(
            event_id=uuid.uuid4().hex, model=model, timestamp=start + timedelta(seconds=i),
            features=features, prediction=float(row["a"] > 10), model_version="1",
            request_id=f"r-{i}", latency_ms=float(5 + i % 7),
        ))
    return events


def produce(bootstrap: str, topic: str, payloads: Iterable[bytes], *, key: bytes = b"m",
            pause_every: int = 0, pause_seconds: float = 0.0) -> int:
    """Produce raw payloads to `topic`, flushing at the end; returns how many were sent."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                             max_request_size=4 * 1024 * 1024)
    count = 0
    try:
        for payload in payloads:
            producer.send(topic, key=key, value=payload)
            count += 1
            if pause_every and count % pause_every == 0:
                producer.flush()
                time.sleep(pause_seconds)
        producer.flush(timeout=60)
    finally:
        producer.close(timeout=10)
    return count


def encode_all(events: Iterable[PredictionEvent]) -> list[bytes]:
    """Wire bytes of each event."""
    return [encode_event(e) for e in events]


def new_secret() -> str:
    """A Standard Webhooks secret."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def settings_for(
    tmp_path: Path,
    *,
    database_url: str,
    bootstrap: str,
    topics: dict[str, str],
    reference: pd.DataFrame,
    webhook_url: str | None = None,
    window_events: int = 2000,
    every_seconds: float = 1.0,
    model: str = "m",
    retry_base_seconds: float = 5.0,
) -> Settings:
    """Settings for one model `m` over SCHEMA, KS and chi-square, the reference written to CSV."""
    ref_path = tmp_path / f"reference-{uuid.uuid4().hex[:6]}.csv"
    reference.to_csv(ref_path, index=False)
    model_cfg: dict[str, Any] = {
        "name": model,
        "features": SCHEMA,
        "reference": {"path": str(ref_path)},
        "schedule": {"every_seconds": every_seconds},
        "window": {"last_events": window_events},
        "drift": {"numeric_method": "ks", "categorical_method": "chisquare",
                  "drift_share": 0.5, "min_samples": 30},
    }
    if webhook_url is not None:
        model_cfg["retraining_webhook"] = {"url": webhook_url, "secret_env": "TEST_WEBHOOK_SECRET",
                                           "cooldown_seconds": 3600}
    data = {
        "database_url": database_url,
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"g-{uuid.uuid4().hex[:8]}",
                  **topics},
        "http": {"host": "127.0.0.1", "port": 0},
        "alerts": {"retry_base_seconds": retry_base_seconds},
        "models": [model_cfg],
    }
    return parse_settings(data, environ={})


def settings_yaml(settings: Settings, path: Path) -> Path:
    """Write settings as a config file (for subprocess tests)."""
    import yaml

    data = json.loads(settings.model_dump_json())
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class Receiver:
    """A real HTTP webhook receiver; `responses` decides each answer's status code."""

    def __init__(self, port: int = 0, status: Callable[[int], int] = lambda _n: 204) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()},
                                              body))
                    code = status(len(receiver.requests))
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(predicate: Callable[[], Any], *, timeout: float, interval: float = 0.25,
             message: str = "condition") -> Any:
    """Poll `predicate` until it returns a truthy value; fail with `message` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and index every sample by (name, sorted labels)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
