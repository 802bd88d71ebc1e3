"""A receiver for driftline's retraining webhook: verify, deduplicate, answer 202, retrain.

    export DRIFTLINE_WEBHOOK_SECRET=whsec_...        # the secret driftline signs with
    python examples/retrain_receiver.py --port 8765 --secret-env DRIFTLINE_WEBHOOK_SECRET

POST /hooks/retrain  one `model.drift_detected` delivery (docs/webhooks.md). 401 unless its
                     Standard Webhooks signature verifies with a timestamp within 5 minutes;
                     200 for a webhook-id already accepted (a retry or a replay: the job runs
                     once); 202 as soon as the job is queued, before it runs.
GET  /versions       the model versions trained here, oldest first.
GET  /jobs           every job accepted since start, with its state and result.

The job retrains the demo's fraud model (examples/fraud.py, a logistic regression over six
features) on fresh labelled data: as many reference rows and drifted rows as the run compared
(the event's `n_reference` and `n_current`), drawn from the demo's generator, as a real job
would read them from its feature store between `window_start` and `window_end`. It saves the
coefficients as `fraud-v<N>.json` under `--models-dir` (default `.driftline/models`, never
committed) and prints the new version with its accuracy on a fresh drifted sample, next to a
model trained on the reference alone. docs/retraining.md explains the design and shows how to
start an Airflow, Kubeflow, MLflow or GitHub Actions job instead (examples/retrain_targets.py).

Only the standard library's HTTP server, `standardwebhooks`, and the demo's own numpy, pandas
and scikit-learn: a copy of this file is a starting point for a real receiver.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss
from standardwebhooks import Webhook, WebhookVerificationError
from standardwebhooks.webhooks import EmptyWebhookSecretError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fraud import (  # type: ignore[import-not-found,unused-ignore]
    CATEGORICAL,
    COUNTRIES,
    DEVICES,
    NUMERIC,
    FraudModel,
    generate,
    true_labels,
)
from retrain_targets import (  # type: ignore[import-not-found,unused-ignore]
    DRIFT_EVENT_TYPE,
    DriftEvent,
)

logger = logging.getLogger(__name__)

HOOK_PATH = "/hooks/retrain"
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[1] / ".driftline" / "models"
MAX_BODY_BYTES = 1 << 20  # driftline's payloads are a few kilobytes
# The design matrix of fraud.FraudModel: numeric columns, then one-hot columns in the sorted
# order pandas.get_dummies gives them.
COLUMNS = (*NUMERIC, *(f"country_{c}" for c in sorted(COUNTRIES)),
           *(f"device_{d}" for d in sorted(DEVICES)))
TRAINING_ROWS = (200, 20_000)  # bounds on each part of the training set
HOLDOUT_ROWS = 2_000

JobState = Literal["queued", "running", "succeeded", "failed"]
RetrainJob = Callable[[DriftEvent, str], str]
"""Starts or runs the retraining for one event and webhook-id; returns what it made."""


@dataclass(frozen=True)
class ModelVersion:
    """One trained version, as its file records it."""

    model: str
    version: str
    file: str
    trained_at: str
    webhook_id: str
    drift_run_id: str
    previous_version: str | None
    training_rows: int
    holdout: Mapping[str, float]


@dataclass(frozen=True)
class Job:
    """One accepted delivery's job."""

    webhook_id: str
    model: str
    drift_run_id: str
    state: JobState
    accepted_at: str
    result: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Retrained:
    """A retrained model, its scores on a drifted holdout, and its number of training rows.

    `holdout` has the accuracy and log loss of the model, and the same two of the same
    recipe fitted on the reference rows alone (`reference_only_...`), for comparison.
    """

    model: FraudModel
    holdout: Mapping[str, float]
    training_rows: int


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status and JSON body."""

    status: int
    body: Mapping[str, Any] = field(default_factory=dict)


class ModelStore:
    """Model versions as JSON files, `<model>-v<N>.json`, in one directory."""

    def __init__(self, directory: Path, model: str = "fraud") -> None:
        self.directory = directory
        self.model = model

    def versions(self) -> list[ModelVersion]:
        """Every saved version, oldest first."""
        found = []
        for path in self.directory.glob(f"{self.model}-v*.json"):
            metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"]
            found.append(ModelVersion(**metadata))
        return sorted(found, key=lambda version: int(version.version))

    def save(self, retrained: Retrained, event: DriftEvent, webhook_id: str) -> ModelVersion:
        """Write the next version atomically (a reader never sees half a file)."""
        previous = [int(v.version) for v in self.versions()]
        if event.model_version is not None and event.model_version.isdigit():
            previous.append(int(event.model_version))
        number = max(previous, default=0) + 1
        path = self.directory / f"{self.model}-v{number}.json"
        version = ModelVersion(
            model=self.model, version=str(number), file=path.name,
            trained_at=_now_iso(),
            webhook_id=webhook_id, drift_run_id=event.drift_run_id,
            previous_version=event.model_version, training_rows=retrained.training_rows,
            holdout=dict(retrained.holdout))
        classifier = retrained.model.classifier
        document = {"metadata": asdict(version), "columns": retrained.model.columns,
                    "coefficients": classifier.coef_[0].tolist(),
                    "intercept": float(classifier.intercept_[0])}
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(document, indent=1), encoding="utf-8")
        partial.replace(path)
        return version

    def load(self, version: str) -> FraudModel:
        """A saved version as the demo's `FraudModel`, ready to `predict`."""
        path = self.directory / f"{self.model}-v{version}.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        return FraudModel(_classifier(document["columns"], document["coefficients"],
                                      document["intercept"]), list(document["columns"]))


def retrain_fraud(event: DriftEvent, *, seed: int) -> Retrained:
    """Fit the demo's model on reference plus drifted rows; score it on a drifted holdout."""
    rng = np.random.default_rng(seed)
    n_reference = min(max(event.n_reference, TRAINING_ROWS[0]), TRAINING_ROWS[1])
    n_drifted = min(max(event.n_current, TRAINING_ROWS[0]), TRAINING_ROWS[1])
    frame = pd.concat([generate(n_reference, rng), generate(n_drifted, rng, drift=True)],
                      ignore_index=True)
    labels = true_labels(frame, rng)
    holdout = generate(HOLDOUT_ROWS, rng, drift=True)
    holdout_labels = true_labels(holdout, rng)
    retrained = fit_fraud_model(frame, labels)
    reference_only = fit_fraud_model(frame.iloc[:n_reference], labels[:n_reference])
    scores = {}
    for name, model in (("", retrained), ("reference_only_", reference_only)):
        probability = model.classifier.predict_proba(design_matrix(holdout))[:, 1]
        scores[f"{name}accuracy"] = round(float(accuracy_score(holdout_labels,
                                                               probability >= 0.5)), 4)
        scores[f"{name}log_loss"] = round(float(log_loss(holdout_labels, probability)), 4)
    return Retrained(retrained, scores, len(frame))


def fit_fraud_model(frame: pd.DataFrame, labels: np.ndarray) -> FraudModel:
    """A logistic regression on standardised columns, stored on the raw ones.

    Standardising makes lbfgs converge in about ten iterations instead of hundreds; the
    coefficients are then mapped back (w / s, b - sum(w m / s)), so the saved model scores
    raw feature values exactly as fraud.FraudModel does.
    """
    x = design_matrix(frame).to_numpy()
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    fitted = LogisticRegression(max_iter=1000).fit((x - mean) / scale, labels)
    weights = fitted.coef_[0] / scale
    intercept = float(fitted.intercept_[0] - np.sum(fitted.coef_[0] * mean / scale))
    return FraudModel(_classifier(list(COLUMNS), weights.tolist(), intercept), list(COLUMNS))


def design_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """One-hot categories, columns in `COLUMNS` order (absent categories as zeros)."""
    dummies = pd.get_dummies(frame, columns=list(CATEGORICAL), dtype=float)
    return dummies.reindex(columns=list(COLUMNS), fill_value=0.0)


def _classifier(columns: list[str], coefficients: list[float],
                intercept: float) -> LogisticRegression:
    classifier = LogisticRegression()
    classifier.classes_ = np.array([0, 1])
    classifier.coef_ = np.array([coefficients], dtype=float)
    classifier.intercept_ = np.array([intercept], dtype=float)
    classifier.n_features_in_ = len(columns)
    classifier.feature_names_in_ = np.array(columns, dtype=object)
    return classifier


class FraudRetrainJob:
    """The default job: retrain the demo's model, save the version, report it."""

    def __init__(self, store: ModelStore,
                 on_version: Callable[[ModelVersion], None] | None = None) -> None:
        self.store = store
        self.on_version = on_version

    def __call__(self, event: DriftEvent, webhook_id: str) -> str:
        # Seeded by the delivery, so the same delivery trains the same model.
        seed = int.from_bytes(hashlib.sha256(webhook_id.encode()).digest()[:8], "big")
        version = self.store.save(retrain_fraud(event, seed=seed), event, webhook_id)
        logger.info("model version saved", extra={"model": version.model,
                                                  "version": version.version})
        if self.on_version is not None:
            self.on_version(version)
        return version.version


class RetrainReceiver:
    """Verifies deliveries, accepts each webhook-id once, runs one job at a time in a thread.

    The ids already accepted are the jobs since start plus the versions on disk, so a
    retry after a restart does not retrain again either. A job accepted but not finished
    when the process stops is lost (driftline already has its 2xx): a production receiver
    hands the job to a durable system before answering, as the targets in
    examples/retrain_targets.py do.
    """

    def __init__(self, secret: str, store: ModelStore, *, job: RetrainJob | None = None,
                 on_version: Callable[[ModelVersion], None] | None = None) -> None:
        self._verifier = Webhook(secret)
        self.store = store
        self._job = job if job is not None else FraudRetrainJob(store, on_version)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}
        self._done_before = {version.webhook_id for version in store.versions()}
        self._pending = 0
        self._queue: queue.Queue[tuple[DriftEvent, str] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="retrain-job", daemon=True)
        self._worker.start()

    def receive(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """One POST to the hook: verify first, then parse, deduplicate and queue."""
        try:
            # json_parse=False: a body that verifies but is not JSON is a 400, not a 401.
            self._verifier.verify(body, dict(headers), json_parse=False)
        except (WebhookVerificationError, ValueError):
            # ValueError: the library raises it for a malformed signature header or body.
            logger.warning("delivery refused: the signature does not verify")
            return Reply(401, {"error": "signature does not verify: wrong secret, altered body, "
                                        "or a timestamp more than 5 minutes off"})
        webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
        try:
            payload = json.loads(body)
        except ValueError:
            return Reply(400, {"error": "the body is not JSON"})
        if not isinstance(payload, dict) or payload.get("type") != DRIFT_EVENT_TYPE:
            # Standard Webhooks: acknowledge event types you do not handle, or they are retried.
            return Reply(200, {"status": "ignored", "reason": f"not a {DRIFT_EVENT_TYPE} event"})
        try:
            event = DriftEvent.from_payload(payload)
        except ValueError as exc:
            return Reply(400, {"error": str(exc)})
        if event.model != self.store.model:
            return Reply(422, {"error": f"this receiver retrains {self.store.model!r}; "
                                        "point the other model's retraining_webhook elsewhere"})
        with self._lock:
            if webhook_id in self._jobs or webhook_id in self._done_before:
                known = self._jobs.get(webhook_id)
                return Reply(200, {"status": "duplicate", "webhook_id": webhook_id,
                                   "job": asdict(known) if known else None})
            self._jobs[webhook_id] = Job(webhook_id, event.model, event.drift_run_id, "queued",
                                         _now_iso())
            self._pending += 1
        self._queue.put((event, webhook_id))
        logger.info("retraining job queued", extra={"webhook_id": webhook_id})
        return Reply(202, {"status": "accepted", "webhook_id": webhook_id, "jobs": "/jobs"})

    def versions(self) -> Reply:
        """GET /versions."""
        return Reply(200, {"model": self.store.model,
                           "versions": [asdict(v) for v in self.store.versions()]})

    def jobs(self) -> Reply:
        """GET /jobs."""
        with self._lock:
            return Reply(200, {"jobs": [asdict(job) for job in self._jobs.values()]})

    def wait_idle(self, timeout_seconds: float) -> bool:
        """Wait until every accepted job has finished; False if `timeout_seconds` passed."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_seconds)

    def close(self, timeout_seconds: float = 30.0) -> None:
        """Stop the job thread after the jobs already queued."""
        self._queue.put(None)
        self._worker.join(timeout_seconds)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            event, webhook_id = item
            self._update(webhook_id, state="running")
            try:
                result = self._job(event, webhook_id)
            except Exception as exc:  # a failed job is recorded; the thread goes on
                logger.exception("retraining job failed", extra={"webhook_id": webhook_id})
                self._update(webhook_id, state="failed", error=f"{type(exc).__name__}: {exc}",
                             finished=True)
            else:
                self._update(webhook_id, state="succeeded", result=result, finished=True)

    def _update(self, webhook_id: str, *, finished: bool = False, **changes: Any) -> None:
        with self._idle:
            self._jobs[webhook_id] = replace(self._jobs[webhook_id], **changes)
            if finished:
                self._pending -= 1
                self._idle.notify_all()


def make_server(receiver: RetrainReceiver, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for `receiver` (port 0 picks a free port); call `serve_forever`."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "driftline-retrain-receiver/1"

        def do_POST(self) -> None:
            if self.path != HOOK_PATH:
                self._send(Reply(404, {"error": f"POST deliveries to {HOOK_PATH}"}))
                return
            length = self.headers.get("content-length", "")
            if not length.isdigit():
                self._send(Reply(411, {"error": "a content-length is required"}))
                return
            if int(length) > MAX_BODY_BYTES:
                self._send(Reply(413, {"error": f"bodies are limited to {MAX_BODY_BYTES} bytes"}))
                return
            body = self.rfile.read(int(length))
            self._send(receiver.receive(dict(self.headers.items()), body))

        def do_GET(self) -> None:
            routes = {"/versions": receiver.versions, "/jobs": receiver.jobs}
            route = routes.get(self.path)
            self._send(route() if route else Reply(404, {"error": "GET /versions or /jobs"}))

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("request", extra={"line": format % args})

        def _send(self, reply: Reply) -> None:
            data = json.dumps(reply.body).encode("utf-8")
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return ThreadingHTTPServer((host, port), Handler)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _print_version(version: ModelVersion) -> None:
    holdout = version.holdout
    print(f"✔ {version.model} v{version.version} trained after drift run "
          f"{version.drift_run_id} ({version.training_rows} rows): accuracy "
          f"{holdout['accuracy']:.3f} on a fresh drifted sample (trained on the reference alone: "
          f"{holdout['reference_only_accuracy']:.3f}); saved as {version.file}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the receiver until interrupted; 2 for a bad secret or an unusable address."""
    parser = argparse.ArgumentParser(
        description="Receive driftline's retraining webhook and retrain the demo's model.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--secret-env", default="DRIFTLINE_WEBHOOK_SECRET", metavar="NAME",
                        help="environment variable holding the whsec_ secret driftline signs "
                             "with (default DRIFTLINE_WEBHOOK_SECRET)")
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR, metavar="DIR",
                        help="where model versions are saved (default .driftline/models)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        print(f"error: --secret-env {args.secret_env}: the variable is unset or empty; export "
              "the whsec_ secret named by retraining_webhook.secret_env", file=sys.stderr)
        return 2
    try:
        receiver = RetrainReceiver(secret, ModelStore(args.models_dir),
                                   on_version=_print_version)
    except (ValueError, EmptyWebhookSecretError) as exc:  # bad base64, or nothing after whsec_
        print(f"error: --secret-env {args.secret_env}: not a usable Standard Webhooks secret "
              f"({type(exc).__name__}); expected whsec_ followed by base64", file=sys.stderr)
        return 2
    try:
        server = make_server(receiver, args.host, args.port)
    except OSError as exc:
        print(f"error: --host {args.host} --port {args.port}: cannot listen ({exc.strerror})",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C
    port = server.server_address[1]
    print(f"listening on http://{args.host}:{port}{HOOK_PATH} (versions: GET /versions, "
          f"models in {args.models_dir})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        receiver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
