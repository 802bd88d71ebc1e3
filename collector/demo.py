"""`driftline demo`: the whole path on a laptop, told plainly in the terminal.

Starts a local Kafka broker (scripts/kafka-local), a webhook receiver that
verifies Standard Webhooks signatures, the driftline service on SQLite, and an
example model server that logs every prediction through the sidecar and sends
labels later. Traffic drifts after a while; the demo ends once the retraining
webhook has been delivered and verified, or when its time is up, and stops
everything it started.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import select

from collector.app import Service
from collector.config import load_settings
from collector.reach import kafka_reachable
from collector.store.models import Run
from collector.store.queries import count_predictions


def _say(message: str) -> None:
    print(message, flush=True)


def _repo_root(start: Path) -> Path:
    for candidate in [start, *start.parents]:
        if (candidate / "scripts" / "kafka-local").exists():
            return candidate
    raise FileNotFoundError("scripts/kafka-local not found: run the demo from a driftline checkout")


class WebhookReceiver:
    """A local HTTP endpoint that verifies each delivery's signature."""

    def __init__(self, secret: str) -> None:
        from standardwebhooks import Webhook

        self.verified: list[dict[str, Any]] = []
        self.rejected = 0
        self.event = threading.Event()
        receiver = self
        verifier = Webhook(secret)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                try:
                    payload = verifier.verify(body, dict(self.headers.items()))
                except Exception:
                    receiver.rejected += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.verified.append(
                    {"id": self.headers.get("webhook-id"), "payload": payload}
                )
                receiver.event.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()


def _traffic(stop: threading.Event, drift_at: float, bootstrap: str, topics: tuple[str, str],
             counters: dict[str, int]) -> None:
    sys.path.insert(0, str(_repo_root(Path.cwd().resolve()) / "examples"))
    from traffic import run  # type: ignore[import-not-found]

    run(stop, drift_at, bootstrap, topics, counters)


def _create_topics(bootstrap: str, names: list[str]) -> None:
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="driftline-demo")
    try:
        admin.create_topics([NewTopic(n, num_partitions=3, replication_factor=1) for n in names])
    finally:
        admin.close()


def run_demo(*, config: Path, duration_seconds: float = 150.0) -> int:
    """Run the demo; exit 0 once a verified webhook arrived, 1 otherwise."""
    root = _repo_root(Path.cwd().resolve())
    own_broker = "KAFKA_BOOTSTRAP_SERVERS" not in os.environ
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    started_broker = False
    if own_broker and not kafka_reachable(bootstrap):
        _say("▶ starting a local Kafka broker (official jars from Maven Central) ...")
        subprocess.run(["bash", str(root / "scripts" / "kafka-local"), "start"], check=True,
                       stdout=subprocess.DEVNULL)
        started_broker = True
    _say(f"▶ Kafka ready at {bootstrap}")

    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ["DRIFTLINE_WEBHOOK_SECRET"] = secret
    receiver = WebhookReceiver(secret)
    run_tag = uuid.uuid4().hex[:6]
    settings = load_settings(config, environ={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    db_path = root / ".driftline" / f"demo-{run_tag}.db"
    kafka = settings.kafka.model_copy(update={
        "predictions_topic": f"{settings.kafka.predictions_topic}.demo-{run_tag}",
        "labels_topic": f"{settings.kafka.labels_topic}.demo-{run_tag}",
        "deadletter_topic": f"{settings.kafka.deadletter_topic}.demo-{run_tag}",
    })
    models = []
    for model in settings.models:
        hook = model.retraining_webhook
        if hook is not None:
            hook = hook.model_copy(
                update={"url": f"http://127.0.0.1:{receiver.port}/hooks/retrain"})
        models.append(model.model_copy(update={"retraining_webhook": hook}))
    settings = settings.model_copy(update={
        "kafka": kafka, "models": models, "database_url": f"sqlite+pysqlite:///{db_path}",
    })
    _say(f"▶ webhook receiver on http://127.0.0.1:{receiver.port}/hooks/retrain "
         "(verifies Standard Webhooks signatures)")
    _create_topics(bootstrap, [kafka.predictions_topic, kafka.labels_topic,
                               kafka.deadletter_topic])
    service = Service(settings)
    service.start()
    _say(f"▶ driftline serving: http://127.0.0.1:{service.http_port}/metrics, "
         f"/v1/models/fraud/runs (store {db_path.relative_to(root)})")

    stop_traffic = threading.Event()
    counters = {"sent": 0, "labels": 0}
    drift_after = min(40.0, duration_seconds / 3)
    drift_at = time.monotonic() + drift_after
    traffic = threading.Thread(
        target=_traffic,
        args=(stop_traffic, drift_at, bootstrap, (kafka.predictions_topic, kafka.labels_topic),
              counters),
        daemon=True,
    )
    _say(f"▶ example model server trained; traffic follows the reference for {drift_after:.0f} s, "
         "then drifts")
    traffic.start()
    deadline = time.monotonic() + duration_seconds
    seen_runs: set[str] = set()
    announced_drift = False
    success = False
    try:
        while time.monotonic() < deadline:
            if not announced_drift and time.monotonic() >= drift_at:
                _say("⚠ traffic now drifts: amount and age up one standard deviation, "
                     "country mix changed")
                announced_drift = True
            with service.sessions() as session:
                stored = count_predictions(session, "fraud")
                runs = list(session.execute(
                    select(Run).where(Run.model == "fraud").order_by(Run.started_at.desc())
                    .limit(3)).scalars())
            for run in reversed(runs):
                if run.id in seen_runs:
                    continue
                seen_runs.add(run.id)
                drifted = [name for name, f in (run.report or {}).get("features", {}).items()
                           if f.get("drifted") and name != "prediction"]
                verdict = ("DRIFT in " + ", ".join(drifted)) if run.dataset_drifted else (
                    "no drift" if run.status == "ok" else run.status)
                share = "-" if run.share_drifted is None else f"{run.share_drifted:.2f}"
                outputs = (run.report or {}).get("features", {}).get("prediction", {})
                if outputs.get("drifted"):
                    verdict += "; model outputs drifted too"
                _say(f"  events in: {stored:5d} stored ({counters['sent']} sent, "
                     f"{counters['labels']} labels) | run on {run.n_current} events: {verdict} "
                     f"(share drifted {share})")
            if success:
                break
            if receiver.event.wait(2.0):
                success = True  # print the runs that led here, then the delivery
                continue
        if success:
            received = receiver.verified[0]
            data = received["payload"].get("data", {})
            names = ", ".join(f["name"] for f in data.get("drifted_features", []))
            _say(f"✔ retraining webhook delivered and verified: webhook-id {received['id']}, "
                 f"type {received['payload'].get('type')}, model {data.get('model')}, "
                 f"drifted {names}")
        else:
            _say("✘ no verified webhook within the demo's time")
    finally:
        _say("▶ stopping traffic, driftline and the receiver ...")
        stop_traffic.set()
        traffic.join(timeout=15)
        service.stop()
        receiver.close()
        if started_broker:
            subprocess.run(["bash", str(root / "scripts" / "kafka-local"), "stop"], check=False,
                           stdout=subprocess.DEVNULL)
            _say("▶ local Kafka broker stopped")
    _say(json.dumps({"demo": "ok" if success else "failed", "webhooks_verified":
                     len(receiver.verified), "webhooks_rejected": receiver.rejected}))
    return 0 if success else 1
