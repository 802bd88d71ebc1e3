"""The example retraining receiver and the retraining targets' request mappings.

The receiver runs in-process on a free loopback port and is called the way driftline calls
it: a compact JSON `model.drift_detected` body signed with Standard Webhooks headers (and
once through driftline's own `WebhookChannel`). Jobs are awaited with `wait_idle`, never by
sleeping.
"""

from __future__ import annotations

import doctest
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from alerts.channels.webhook import WebhookChannel
from alerts.message import Message
from examples import retrain_receiver, retrain_targets
from examples.retrain_receiver import ModelStore, ModelVersion, RetrainReceiver, make_server

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
JOB_TIMEOUT_SECONDS = 120.0


def drift_payload(*, model: str = "fraud", model_version: str | None = "1",
                  n_reference: int = 600, n_current: int = 300) -> dict[str, Any]:
    """The event collector/monitor.py `_maybe_enqueue` writes, field for field."""
    return {
        "type": "model.drift_detected",
        "timestamp": "2026-11-24T10:05:00.123456Z",
        "data": {
            "model": model, "model_version": model_version, "run_id": "0a8f3c",
            "share_drifted": 0.5, "drift_share": 0.3, "n_reference": n_reference,
            "n_current": n_current, "window_start": "2026-11-24T09:32:00Z",
            "window_end": "2026-11-24T10:04:59Z",
            "drifted_features": [
                {"name": "amount", "kind": "numeric", "status": "ok", "method": "ks",
                 "statistic": 0.41, "p_value": 1.3e-120, "threshold": 0.01, "effect_size": 1.02},
                {"name": "country", "kind": "categorical", "status": "ok",
                 "method": "chisquare", "statistic": 310.2, "p_value": 2.0e-66,
                 "threshold": 0.01, "effect_size": None},
            ],
        },
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")


def signed(body: bytes, msg_id: str, *, secret: str = SECRET,
           at: datetime | None = None) -> dict[str, str]:
    moment = at or datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, moment, body.decode("utf-8")),
    }


@dataclass
class Served:
    receiver: RetrainReceiver
    client: httpx.Client
    reported: list[ModelVersion]
    models_dir: Path
    port: int

    def deliver(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.client.post(retrain_receiver.HOOK_PATH, content=body, headers=headers)

    def jobs(self) -> list[dict[str, Any]]:
        jobs: list[dict[str, Any]] = self.client.get("/jobs").json()["jobs"]
        return jobs

    def versions(self) -> list[dict[str, Any]]:
        versions: list[dict[str, Any]] = self.client.get("/versions").json()["versions"]
        return versions


@contextmanager
def serve(models_dir: Path, **options: Any) -> Iterator[Served]:
    reported: list[ModelVersion] = []
    receiver = RetrainReceiver(SECRET, ModelStore(models_dir), on_version=reported.append,
                               **options)
    server = make_server(receiver, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = int(server.server_address[1])
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
    try:
        yield Served(receiver, client, reported, models_dir, port)
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join(10)
        receiver.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serve(tmp_path) as running:
        yield running


def test_a_signed_delivery_is_accepted_and_retrains_a_new_version(served: Served) -> None:
    response = served.deliver(encode(drift_payload()), signed(encode(drift_payload()), "msg_1"))

    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "webhook_id": "msg_1", "jobs": "/jobs"}
    assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)
    [version] = served.versions()
    assert version["version"] == "2"  # the event's model_version was "1"
    assert version["previous_version"] == "1"
    assert version["webhook_id"] == "msg_1"
    assert version["drift_run_id"] == "0a8f3c"
    assert version["training_rows"] == 900
    assert set(version["holdout"]) == {"accuracy", "log_loss", "reference_only_accuracy",
                                       "reference_only_log_loss"}
    assert 0.5 < version["holdout"]["accuracy"] <= 1.0
    assert [v.version for v in served.reported] == ["2"]
    assert (served.models_dir / "fraud-v2.json").is_file()
    [job] = served.jobs()
    assert (job["state"], job["result"], job["error"]) == ("succeeded", "2", None)
    model = served.receiver.store.load("2")
    score = model.predict({"amount": 72.0, "age": 50.0, "n_items": 3.0, "hour": 14.0,
                           "country": "ES", "device": "web"})
    assert 0.0 < score < 1.0


def test_versions_count_on_from_the_newest_saved_one(served: Served) -> None:
    for msg_id in ("msg_a", "msg_b"):
        body = encode(drift_payload(model_version="1"))
        assert served.deliver(body, signed(body, msg_id)).status_code == 202
    assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)

    assert [(v["version"], v["webhook_id"]) for v in served.versions()] == [
        ("2", "msg_a"), ("3", "msg_b")]


def test_the_reply_does_not_wait_for_the_job(tmp_path: Path) -> None:
    release = threading.Event()

    def slow_job(event: Any, webhook_id: str) -> str:
        release.wait(JOB_TIMEOUT_SECONDS)
        return f"started for {event.model}"

    with serve(tmp_path, job=slow_job) as served:
        body = encode(drift_payload())
        assert served.deliver(body, signed(body, "msg_slow")).status_code == 202
        [job] = served.jobs()
        assert job["state"] in ("queued", "running")
        release.set()
        assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)
        [job] = served.jobs()
        assert (job["state"], job["result"]) == ("succeeded", "started for fraud")


def _wrong_secret(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, "msg_bad", secret=OTHER_SECRET)


def _altered_body(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b'"fraud"', b'"fraud2"'), signed(body, "msg_bad")


def _old_timestamp(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, "msg_bad", at=datetime.now(UTC) - timedelta(minutes=10))


def _future_timestamp(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(body, "msg_bad", at=datetime.now(UTC) + timedelta(minutes=10))


def _no_signature(body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = signed(body, "msg_bad")
    del headers["webhook-signature"]
    return body, headers


def _malformed_signature(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {**signed(body, "msg_bad"), "webhook-signature": "v1"}


def _other_id_same_signature(body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {**signed(body, "msg_bad"), "webhook-id": "msg_other"}


@pytest.mark.parametrize("forge", [_wrong_secret, _altered_body, _old_timestamp,
                                   _future_timestamp, _no_signature, _malformed_signature,
                                   _other_id_same_signature])
def test_a_delivery_that_does_not_verify_is_refused_and_starts_nothing(
        served: Served, forge: Any) -> None:
    body, headers = forge(encode(drift_payload()))

    response = served.deliver(body, headers)

    assert response.status_code == 401
    assert "signature does not verify" in response.json()["error"]
    assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)
    assert served.jobs() == []
    assert served.versions() == []
    assert list(served.models_dir.iterdir()) == []


def test_a_replayed_delivery_runs_its_job_once(served: Served) -> None:
    body = encode(drift_payload())

    first = served.deliver(body, signed(body, "msg_replay"))
    # driftline's retry: same webhook-id and body, a fresh timestamp and signature.
    retry = served.deliver(body, signed(body, "msg_replay", at=datetime.now(UTC)))
    assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)
    late = served.deliver(body, signed(body, "msg_replay"))

    assert first.status_code == 202
    assert (retry.status_code, retry.json()["status"]) == (200, "duplicate")
    assert (late.status_code, late.json()["status"]) == (200, "duplicate")
    assert late.json()["job"]["state"] == "succeeded"
    assert len(served.jobs()) == 1
    assert len(served.versions()) == 1
    assert len(served.reported) == 1


def test_concurrent_copies_of_one_delivery_start_one_job(served: Served) -> None:
    body = encode(drift_payload())
    headers = signed(body, "msg_race")
    statuses: list[int] = []

    def post() -> None:
        with httpx.Client(timeout=30.0) as client:
            url = f"http://127.0.0.1:{served.port}{retrain_receiver.HOOK_PATH}"
            statuses.append(client.post(url, content=body, headers=headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(statuses) == [200] * 5 + [202]
    assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)
    assert len(served.versions()) == 1


def test_a_restarted_receiver_remembers_the_ids_it_trained_for(served: Served) -> None:
    body = encode(drift_payload())
    assert served.deliver(body, signed(body, "msg_before")).status_code == 202
    assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)

    restarted = RetrainReceiver(SECRET, ModelStore(served.models_dir))
    try:
        reply = restarted.receive(signed(body, "msg_before"), body)
    finally:
        restarted.close()

    assert (reply.status, reply.body["status"]) == (200, "duplicate")


def test_driftline_own_webhook_channel_delivers_to_the_receiver(served: Served) -> None:
    url = f"http://127.0.0.1:{served.port}{retrain_receiver.HOOK_PATH}"
    channel = WebhookChannel(url, secret=SECRET, name="retraining:fraud")
    message = Message(id="msg_5f0c6b2e4d9a4e63b3c1f1d2a7e8b9c0", channel="retraining:fraud",
                      event_type="model.drift_detected",
                      payload=encode(drift_payload()).decode("utf-8"))
    try:
        channel.send(message)  # raises DeliveryError unless the answer is 2xx
        channel.send(message)  # a retry of the same delivery
    finally:
        channel.close()

    assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)
    assert [v["webhook_id"] for v in served.versions()] == [message.id]


def test_verified_deliveries_it_cannot_use_get_a_reason_and_start_nothing(
        served: Served) -> None:
    other_type = encode({"type": "alert.firing", "timestamp": "2026-11-24T10:05:00Z",
                         "data": {}})
    other_model = encode(drift_payload(model="churn"))
    no_run_id = drift_payload()
    del no_run_id["data"]["run_id"]
    cases = [
        (other_type, 200, "ignored"),
        (other_model, 422, "this receiver retrains 'fraud'"),
        (b"not json", 400, "not JSON"),
        (encode(no_run_id), 400, "data.run_id"),
    ]
    for index, (body, status, reason) in enumerate(cases):
        response = served.deliver(body, signed(body, f"msg_case_{index}"))
        assert response.status_code == status, reason
        assert reason in json.dumps(response.json())

    assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)
    assert served.jobs() == []


def test_unknown_paths_and_oversized_bodies_are_refused(served: Served) -> None:
    body = encode(drift_payload())
    assert served.client.post("/hooks/other", content=body,
                              headers=signed(body, "msg_x")).status_code == 404
    assert served.client.get("/").status_code == 404
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as connection:
        connection.sendall(b"POST /hooks/retrain HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 5000000\r\n\r\n")
        status_line = connection.makefile("rb").readline()
    assert status_line.split()[1] == b"413"
    assert served.jobs() == []


def test_a_failing_job_is_recorded_and_the_next_delivery_still_runs(tmp_path: Path) -> None:
    calls: list[str] = []

    def flaky_job(event: Any, webhook_id: str) -> str:
        calls.append(webhook_id)
        if len(calls) == 1:
            raise RuntimeError("the training cluster is down")
        return "ok"

    with serve(tmp_path, job=flaky_job) as served:
        for msg_id in ("msg_fails", "msg_works"):
            body = encode(drift_payload())
            assert served.deliver(body, signed(body, msg_id)).status_code == 202
        assert served.receiver.wait_idle(JOB_TIMEOUT_SECONDS)
        states = {job["webhook_id"]: (job["state"], job["error"]) for job in served.jobs()}
        assert states == {"msg_fails": ("failed", "RuntimeError: the training cluster is down"),
                          "msg_works": ("succeeded", None)}


# The retraining targets: each mapping produces the request docs/retraining.md documents.


def test_airflow_triggers_a_dag_run_named_after_the_webhook_id() -> None:
    method, path, body = retrain_targets.airflow_request(
        drift_payload(), webhook_id="msg_5f0c", dag_id="retrain fraud/v2")

    assert (method, path) == ("POST", "/api/v1/dags/retrain%20fraud%2Fv2/dagRuns")
    assert body == {
        "dag_run_id": "driftline-msg_5f0c",
        "conf": {"model": "fraud", "model_version": "1", "drift_run_id": "0a8f3c",
                 "drifted_features": ["amount", "country"], "share_drifted": 0.5,
                 "window_start": "2026-11-24T09:32:00Z", "window_end": "2026-11-24T10:04:59Z",
                 "webhook_id": "msg_5f0c"},
    }
    event = retrain_targets.DriftEvent.from_payload(drift_payload())
    assert retrain_targets.airflow_request(event, webhook_id="msg_5f0c",
                                           dag_id="retrain fraud/v2").json == body
    unusual = retrain_targets.airflow_request(drift_payload(), webhook_id="id with/slash",
                                              dag_id="d")
    assert unusual.json["dag_run_id"] == "driftline-id_with_slash"


PARAMETERS = {"model": "fraud", "model_version": "1", "drift_run_id": "0a8f3c",
              "drifted_features": "amount,country", "window_start": "2026-11-24T09:32:00Z",
              "window_end": "2026-11-24T10:04:59Z", "webhook_id": "msg_5f0c"}


def test_kubeflow_creates_a_run_of_a_pipeline_version() -> None:
    request = retrain_targets.kubeflow_request(
        drift_payload(), webhook_id="msg_5f0c", pipeline_id="p-1", pipeline_version_id="v-3",
        experiment_id="e-2")

    assert (request.method, request.path) == ("POST", "/apis/v2beta1/runs")
    assert request.json == {
        "display_name": "retrain fraud after drift run 0a8f3c",
        "description": "started by driftline webhook msg_5f0c",
        "pipeline_version_reference": {"pipeline_id": "p-1", "pipeline_version_id": "v-3"},
        "runtime_config": {"parameters": PARAMETERS},
        "experiment_id": "e-2",
    }
    latest = retrain_targets.kubeflow_request(drift_payload(), webhook_id="m", pipeline_id="p")
    assert latest.json["pipeline_version_reference"] == {"pipeline_id": "p"}
    assert "experiment_id" not in latest.json


def test_mlflow_runs_a_project_with_string_parameters() -> None:
    kwargs = retrain_targets.mlflow_run_kwargs(
        drift_payload(), webhook_id="msg_5f0c", uri="https://example.org/retrain.git",
        entry_point="train", experiment_name="fraud")

    assert kwargs == {"uri": "https://example.org/retrain.git", "entry_point": "train",
                      "parameters": PARAMETERS, "run_name": "driftline-msg_5f0c",
                      "synchronous": False, "experiment_name": "fraud"}
    args = retrain_targets.mlflow_cli_args(drift_payload(), webhook_id="msg_5f0c", uri=".",
                                           entry_point="train", experiment_name="fraud")
    assert args[:7] == ["mlflow", "run", ".", "-e", "train", "--run-name", "driftline-msg_5f0c"]
    assert args[7:-2] == [item for name, value in PARAMETERS.items()
                          for item in ("-P", f"{name}={value}")]
    assert args[-2:] == ["--experiment-name", "fraud"]


def test_github_dispatches_a_workflow_with_string_inputs() -> None:
    request = retrain_targets.github_dispatch_request(
        drift_payload(), webhook_id="msg_5f0c", owner="acme", repo="models",
        workflow_id="retrain.yml", ref="main")

    assert (request.method, request.path) == (
        "POST", "/repos/acme/models/actions/workflows/retrain.yml/dispatches")
    assert request.json == {"ref": "main", "inputs": PARAMETERS}
    assert len(request.json["inputs"]) <= retrain_targets.GITHUB_MAX_INPUTS
    assert all(isinstance(value, str) for value in request.json["inputs"].values())


def test_github_refuses_inputs_beyond_its_limit() -> None:
    payload = drift_payload()
    payload["data"]["drifted_features"] = [{"name": f"feature_{i:05d}"} for i in range(6000)]

    with pytest.raises(ValueError, match="exceed GitHub's 25 inputs or 65535 characters"):
        retrain_targets.github_dispatch_request(payload, webhook_id="m", owner="o", repo="r",
                                                workflow_id="w.yml")


@pytest.mark.parametrize(("change", "field"), [
    (lambda p: p.update(type="alert.firing"), "type"),
    (lambda p: p["data"].pop("model"), "data.model"),
    (lambda p: p["data"].update(run_id=7), "data.run_id"),
    (lambda p: p["data"].update(n_current=-1), "data.n_current"),
    (lambda p: p["data"].update(drifted_features=["amount"]), "data.drifted_features"),
    (lambda p: p["data"].update(model_version=["7"]), "data.model_version"),
])
def test_every_mapping_names_the_field_it_cannot_read(change: Any, field: str) -> None:
    payload = drift_payload()
    change(payload)
    mappings: list[tuple[Callable[..., object], dict[str, str]]] = [
        (retrain_targets.airflow_request, {"dag_id": "d"}),
        (retrain_targets.kubeflow_request, {"pipeline_id": "p"}),
        (retrain_targets.mlflow_run_kwargs, {"uri": "."}),
        (retrain_targets.github_dispatch_request,
         {"owner": "o", "repo": "r", "workflow_id": "w.yml"}),
    ]
    for mapping, options in mappings:
        with pytest.raises(ValueError, match=f"^{field}:"):
            mapping(payload, webhook_id="m", **options)


def test_the_targets_docstring_examples_run() -> None:
    assert doctest.testmod(retrain_targets).failed == 0
