"""Issue 13, item 5: MLflow pyfunc models that log every row, in MLflow's own environment.

MLflow's pins clash with driftline's, so it runs in the venv of `bash scripts/model-servers
mlflow` (created once, cached); the sidecar and kafka-python reach it through PYTHONPATH from a
`pip install --target` of ./sidecar under tmp_path, so the shared venv is left as it is.
tests/integration/mlflow_sidecar_runner.py saves real pyfunc models, loads them with
`mlflow.pyfunc.load_model` and predicts: a `LoggedModel` around a model (its saved Kafka
address overridden by KAFKA_BOOTSTRAP_SERVERS) and `wrap()` around a loaded one, each compared
with the model's own answers, and the two examples of docs/integrations.md; then
`mlflow models serve` serves the same logged model over HTTP.
Every row must be on the real broker with its features, prediction and request id.

If MLflow's environment cannot be created (no package index), the test fails; it never skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer

from driftline_sidecar import PredictionEvent, decode_event

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("mlflow_sidecar_runner.py")


def mlflow_python() -> Path:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "model-servers"), "mlflow"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        pytest.fail(f"MLflow's virtual environment could not be created:\n{done.stderr[-3000:]}",
                    pytrace=False)
    return Path(done.stdout.strip())


def sidecar_path(python: Path, tmp_path: Path) -> Path:
    """./sidecar and kafka-python installed into a directory for PYTHONPATH."""
    source = tmp_path / "sidecar-source"
    shutil.copytree(ROOT / "sidecar", source,
                    ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    target = tmp_path / "sidecar-lib"
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "--target", str(target),
                           str(source)], capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return target


def consume(bootstrap: str, topic: str, expected: int) -> list[PredictionEvent]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, enable_auto_commit=False)
    events: list[Any] = []
    try:
        for _ in range(90):
            for batch in consumer.poll(timeout_ms=1000).values():
                events.extend(decode_event(record.value) for record in batch)
            if len(events) >= expected:
                for batch in consumer.poll(timeout_ms=1000).values():  # and nothing beyond
                    events.extend(decode_event(record.value) for record in batch)
                break
    finally:
        consumer.close()
    assert all(isinstance(event, PredictionEvent) for event in events)
    return events


def fraud_score(amount: float, country: str) -> float:
    """FraudModel of the runner, to check what the served model answered."""
    return round(min(amount / 1000, 0.9) + (0.05 if country == "DE" else 0.0), 6)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.timeout(1200)
def test_logged_and_wrapped_pyfunc_models_log_every_row(
        tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[[str], str]) -> None:
    python = mlflow_python()
    library = sidecar_path(python, tmp_path)
    topic = topic_factory("sidecar.mlflow")
    env = {key: value for key, value in os.environ.items()
           if key not in {"PYTHONHOME", "VIRTUAL_ENV"}}
    env.update({"PYTHONPATH": str(library), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "MLFLOW_TRACKING_URI": (tmp_path / "mlruns").as_uri(),
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                # `mlflow models serve` execs `uvicorn` from PATH: the venv's own.
                "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    workdir = tmp_path / "models"
    workdir.mkdir()
    done = subprocess.run([str(python), str(RUNNER), kafka_bootstrap, topic, str(workdir),
                           str(ROOT / "docs" / "integrations.md")],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["package_file"]).is_relative_to(library)  # the installed copy
    assert report["doctest"][0] == 0
    assert report["doctest"][1] > 0
    # Logging changed no answer.
    assert report["same_served"]
    assert report["same_scores"]
    assert report["logged_stats"] == [1, 40]
    assert report["logged_sent"] == 40  # to the broker of the environment, not the saved one
    assert report["logged_dropped"] == 0
    assert report["wrapped_stats"] == [2, 13, {"unreadable_input": 0, "unreadable_output": 0,
                                               "row_count_mismatch": 0}]
    assert report["unreadable"] == ["not a table", {"unreadable_input": 1,
                                                    "unreadable_output": 0,
                                                    "row_count_mismatch": 0}]
    assert report["sidecar_sent"] == 13
    # docs/integrations.md's two MLflow examples, run as written.
    assert report["docs"]["saved"] == [fraud_score(10 * i + 1, "DE" if i % 3 == 0 else "FR")
                                       for i in range(5)]
    assert report["docs"]["wrapped_rows"] == report["docs"]["wrapped_sent"] == 5

    # 3. The same logged model behind `mlflow models serve`, over HTTP.
    port = free_port()
    server = subprocess.Popen(
        [str(python), "-m", "mlflow", "models", "serve", "-m", str(workdir / "logged"),
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    served: list[Any] = []
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, "mlflow models serve exited"
            try:
                if httpx.get(url + "/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not start"
            time.sleep(0.5)
        rows = [[float(7 * i), "DE" if i % 2 else "FR", i, f"s-{i}"] for i in range(20)]
        answer = httpx.post(url + "/invocations", timeout=30, json={"dataframe_split": {
            "columns": ["amount", "country", "n_items", "request_id"], "data": rows}})
        assert answer.status_code == 200, answer.text
        # A Series comes back as records of its one column, named "0" by MLflow.
        served = [p["0"] if isinstance(p, dict) else p for p in answer.json()["predictions"]]
    finally:
        # SIGTERM: the server shuts down cleanly, and the logger's exit hook flushes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        stderr = server.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
        server.stderr.close()  # type: ignore[union-attr]
    expected = [fraud_score(7 * i, "DE" if i % 2 else "FR") for i in range(20)]
    assert served == expected, stderr[-3000:]

    events = consume(kafka_bootstrap, topic, 40 + 13 + 10 + 20)
    assert len(events) == 40 + 13 + 10 + 20
    by_id = {event.request_id: event for event in events if event.request_id}
    for i in range(40):
        event = by_id[f"m-{i}"]
        country = "DE" if i % 3 == 0 else "FR"
        assert (event.model, event.model_version) == ("fraud", "7")
        assert event.features == {"amount": 10.0 * i + 1, "country": country, "n_items": i % 5}
        assert event.prediction == report["served"][i]
        assert event.prediction == fraud_score(10 * i + 1, country)
        assert event.latency_ms is not None
    for i in range(10):
        event = by_id[f"w-{i}"]
        assert (event.model, event.model_version) == ("fraud-wrapped", "2")
        assert event.prediction == report["scores"][i]  # [p0, p1]: a list per row
        assert len(event.prediction) == 2
    plain = sorted((e for e in events if e.request_id is None), key=lambda e: e.features["amount"])
    assert [(e.features["amount"], e.prediction) for e in plain] == [
        (1.0, report["plain"][0]), (11.0, report["plain"][1]), (21.0, report["plain"][2])]
    for prefix in ("ds", "dw"):  # the docs' examples: model fraud, version 7
        docs_events = [by_id[f"{prefix}-{i}"] for i in range(5)]
        assert [(e.model, e.model_version) for e in docs_events] == [("fraud", "7")] * 5
        assert [e.prediction for e in docs_events] == report["docs"]["saved"]
    for i in range(20):
        event = by_id[f"s-{i}"]
        assert event.model == "fraud"
        assert event.features == {"amount": 7.0 * i, "country": "DE" if i % 2 else "FR",
                                  "n_items": i}
        assert event.prediction == served[i]
