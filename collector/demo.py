"""`driftline demo`: the whole path on a laptop, told plainly in the terminal.

Starts a local Kafka broker (scripts/kafka-local), a webhook receiver that
verifies Standard Webhooks signatures, the driftline service on SQLite, and an
example model server that logs every prediction through the sidecar and sends
labels 5-20 s later (some never). Traffic drifts after a while into a region
where the model is unsure: every run prints its drift verdict, the accuracy on
the labels in so far and the CBPE-estimated accuracy with its band, so the
estimate is seen to fall before the labels show it. The demo ends once the
retraining webhook has been verified and a window wholly after the drift has
enough labels, or when its time is up; it exits 0 only when both accuracies fell
below the estimate's band before the drift, and stops everything it started.
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
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from alerts.clock import utcnow
from collector.app import Service
from collector.config import load_settings
from collector.reach import kafka_reachable
from collector.store.models import Run
from collector.store.queries import count_predictions, latest_runs

# Labelled events a window needs before its realized accuracy counts in the story.
MIN_LABELS = 100
# A window is wholly after the drift when it starts this long after the switch: the batch
# drawn just before it is still being served then (20 requests, about 70 ms).
DRIFT_MARGIN = timedelta(seconds=1)


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


def _metric(section: Any, name: str = "accuracy") -> Any:
    """`section["metrics"][name]` of a section of a stored run result, None where absent."""
    return ((section or {}).get("metrics") or {}).get(name)


@dataclass(frozen=True)
class RunView:
    """What the demo reads of one stored run: its window, drift verdict and accuracy."""

    started_at: datetime
    first_at: datetime | None
    last_at: datetime | None
    n_events: int
    n_labelled: int
    coverage: float | None
    verdict: str
    accuracy: float | None
    estimated: float | None
    lower: float | None
    upper: float | None

    @classmethod
    def of(cls, run: Run) -> RunView:
        """Read a stored run (the drift report and the whole result, `runs.result`)."""
        features = (run.report or {}).get("features", {})
        drifted = [name for name, f in features.items()
                   if f.get("drifted") and name != "prediction"]
        verdict = ("DRIFT in " + ", ".join(drifted)) if run.dataset_drifted else (
            "no drift" if run.status == "ok" else run.status)
        if features.get("prediction", {}).get("drifted"):
            verdict += ", scores too"
        result = run.result or {}
        estimate = _metric(result.get("estimated_performance")) or {}
        return cls(
            started_at=run.started_at, first_at=run.window_start, last_at=run.window_end,
            n_events=run.n_current, n_labelled=run.n_labelled or 0,
            coverage=run.label_coverage, verdict=verdict,
            accuracy=_metric(result.get("performance")), estimated=estimate.get("value"),
            lower=estimate.get("lower"), upper=estimate.get("upper"))

    @property
    def measured(self) -> bool:
        """Both accuracies known, the realized one on enough labels to mean something."""
        return (self.accuracy is not None and self.n_labelled >= MIN_LABELS
                and self.estimated is not None and self.lower is not None
                and self.upper is not None)

    def line(self, drift_at: datetime) -> str:
        """One line of the story: time from the drift, window, verdict, both accuracies."""
        offset = (self.started_at - drift_at).total_seconds()
        realized = (f"{'accuracy   -':<28}" if self.accuracy is None else
                    f"accuracy {self.accuracy:.3f} on {self.n_labelled:3d} labels")
        coverage = " " * 7 if self.coverage is None else f" ({self.coverage:4.0%})"
        estimated = ("estimated   -" if self.estimated is None else
                     f"estimated {self.estimated:.3f} [{_number(self.lower)}, "
                     f"{_number(self.upper)}]")
        return (f"  t{offset:+4.0f}s {self.n_events:5d} events, {self.verdict:<41} | "
                f"{realized}{coverage} | {estimated}")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class Story:
    """Accuracy before and after the drift, as the runs tell it.

    `before` is the last run whose window ended before the drift, `after` the first whose
    window began after it; both need enough labels (`RunView.measured`). The estimate and
    the realized accuracy "fall" at the first run after the drift that is below the band
    of `before`'s estimate.
    """

    def __init__(self, drift_at: datetime) -> None:
        self.drift_at = drift_at
        self.before: RunView | None = None
        self.after: RunView | None = None
        self.estimate_fell_at: datetime | None = None
        self.accuracy_fell_at: datetime | None = None

    @property
    def complete(self) -> bool:
        """Both sides of the drift measured."""
        return self.before is not None and self.after is not None

    def add(self, view: RunView) -> str:
        """Take a run into the story; return what it shows ("" when nothing new)."""
        if view.last_at is not None and view.last_at < self.drift_at:
            if view.measured:
                self.before = view
            return ""
        floor = None if self.before is None else self.before.lower
        if floor is None or view.started_at < self.drift_at:
            return ""
        notes: list[str] = []
        if (self.estimate_fell_at is None and view.estimated is not None
                and view.estimated < floor):
            self.estimate_fell_at = view.started_at
            notes.append("the estimate falls" if self.accuracy_fell_at is not None else
                         "the estimate falls; the labels in are from before the drift")
        if (self.accuracy_fell_at is None and view.accuracy is not None
                and view.n_labelled >= MIN_LABELS and view.accuracy < floor):
            self.accuracy_fell_at = view.started_at
            notes.append("the labels arrive: accuracy falls")
        if (self.after is None and view.measured and view.first_at is not None
                and view.first_at >= self.drift_at + DRIFT_MARGIN):
            self.after = view
        return "; ".join(notes)

    def checks(self) -> list[tuple[bool, str]]:
        """What must hold for the story to be told, each with its sentence."""
        before, after = self.before, self.after
        if before is None or after is None:
            missing = "before" if before is None else "after"
            return [(False, f"no run {missing} the drift with both accuracies and at least "
                            f"{MIN_LABELS} labels")]
        floor = before.lower or 0.0
        realized = (after.accuracy is not None and before.accuracy is not None
                    and after.accuracy < before.accuracy and after.accuracy < floor)
        estimated = after.upper is not None and after.upper < floor
        return [
            (realized, f"accuracy {'fell' if realized else 'did not fall'}: "
                       f"{_number(before.accuracy)} → {_number(after.accuracy)}, "
                       f"{'below' if realized else 'not below'} the band of the estimate "
                       f"before the drift [{_number(before.lower)}, {_number(before.upper)}]"),
            (estimated, f"estimated accuracy {'fell' if estimated else 'did not fall'}: "
                        f"{_number(before.estimated)} → {_number(after.estimated)}, its band "
                        f"[{_number(after.lower)}, {_number(after.upper)}] "
                        f"{'wholly' if estimated else 'not wholly'} below "
                        f"[{_number(before.lower)}, {_number(before.upper)}]"),
        ]

    def lead_seconds(self) -> float | None:
        """How long before the realized accuracy the estimate fell (None if either did not)."""
        if self.estimate_fell_at is None or self.accuracy_fell_at is None:
            return None
        return (self.accuracy_fell_at - self.estimate_fell_at).total_seconds()

    def summary(self) -> dict[str, Any]:
        """The story's numbers for the demo's last JSON line."""
        before, after = self.before, self.after
        return {
            "accuracy_before": None if before is None else before.accuracy,
            "accuracy_after": None if after is None else after.accuracy,
            "estimated_accuracy_before": None if before is None else before.estimated,
            "estimated_accuracy_after": None if after is None else after.estimated,
            "label_coverage_before": None if before is None else before.coverage,
            "label_coverage_after": None if after is None else after.coverage,
            "estimate_lead_seconds": self.lead_seconds(),
        }


def run_demo(*, config: Path, duration_seconds: float = 150.0) -> int:
    """Run the demo; exit 0 once a verified webhook arrived and the story held, 1 otherwise."""
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
         f"/v1/models/fraud/runs, /v1/models/fraud/performance "
         f"(store {db_path.relative_to(root)})")

    stop_traffic = threading.Event()
    counters = {"sent": 0, "labels": 0}
    drift_after = min(40.0, duration_seconds / 3)
    drift_at = time.monotonic() + drift_after
    story = Story(utcnow() + timedelta(seconds=drift_after))
    traffic = threading.Thread(
        target=_traffic,
        args=(stop_traffic, drift_at, bootstrap, (kafka.predictions_topic, kafka.labels_topic),
              counters),
        daemon=True,
    )
    _say(f"▶ example model server trained; traffic follows the reference for {drift_after:.0f} s, "
         "then drifts; labels come 5-20 s after each prediction, one in ten never")
    _say("  every run (t = time from the drift): window, drift verdict, accuracy on the labels "
         "in so far, CBPE-estimated accuracy [band]")
    traffic.start()
    deadline = time.monotonic() + duration_seconds
    seen_runs: set[str] = set()
    announced_drift = False
    reported_webhook = False
    try:
        while time.monotonic() < deadline:
            if not announced_drift and time.monotonic() >= drift_at:
                _say("⚠ t  +0s traffic now drifts: amounts crowd around 72 where the model is "
                     "unsure, older customers, five times more from Spain")
                announced_drift = True
            delivered = bool(receiver.verified)  # before reading the runs that led to it
            with service.sessions() as session:
                runs = latest_runs(session, "fraud", limit=5)
            for run in reversed(runs):
                if run.id in seen_runs:
                    continue
                seen_runs.add(run.id)
                view = RunView.of(run)
                note = story.add(view)
                _say(view.line(story.drift_at) + (f"  ← {note}" if note else ""))
            if delivered and not reported_webhook:
                received = receiver.verified[0]
                data = received["payload"].get("data", {})
                names = ", ".join(f["name"] for f in data.get("drifted_features", []))
                _say(f"✔ retraining webhook delivered and verified: webhook-id "
                     f"{received['id']}, type {received['payload'].get('type')}, model "
                     f"{data.get('model')}, drifted {names}")
                reported_webhook = True
            if reported_webhook and story.complete:
                break
            time.sleep(1.0)
    finally:
        _say("▶ stopping traffic, driftline and the receiver ...")
        stop_traffic.set()
        traffic.join(timeout=15)
        with service.sessions() as session:
            stored = count_predictions(session, "fraud")
        service.stop()
        receiver.close()
        if started_broker:
            subprocess.run(["bash", str(root / "scripts" / "kafka-local"), "stop"], check=False,
                           stdout=subprocess.DEVNULL)
            _say("▶ local Kafka broker stopped")
    return _conclude(story, receiver, counters, stored)


def _conclude(story: Story, receiver: WebhookReceiver, counters: dict[str, int],
              stored: int) -> int:
    """Print the story's checks and the last JSON line; 0 when everything held."""
    _say(f"▶ {counters['sent']} predictions sent ({stored} stored), {counters['labels']} labels")
    before, after = story.before, story.after
    if before is not None:
        _say(f"  before the drift: {before.line(story.drift_at).strip()}")
    if after is not None:
        _say(f"  after the drift:  {after.line(story.drift_at).strip()}")
    lead = story.lead_seconds()
    if lead is not None and lead > 0:
        _say(f"  the estimate fell {lead:.0f} s before the labels showed the fall")
    elif lead is not None:
        _say(f"  the labels showed the fall {-lead:.0f} s before the estimate did"
             if lead < 0 else "  the estimate and the labels showed the fall in the same run")
    checks = [(bool(receiver.verified), "a retraining webhook delivered and verified"
               if receiver.verified else "no verified webhook within the demo's time"),
              *story.checks()]
    for held, sentence in checks:
        _say(("✔ " if held else "✘ ") + sentence)
    ok = all(held for held, _ in checks)
    numbers = {key: (round(value, 4) if isinstance(value, float) else value)
               for key, value in story.summary().items()}
    _say(json.dumps({"demo": "ok" if ok else "failed", "webhooks_verified":
                     len(receiver.verified), "webhooks_rejected": receiver.rejected,
                     **numbers}))
    return 0 if ok else 1
