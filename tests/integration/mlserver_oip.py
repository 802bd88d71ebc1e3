"""A real MLServer serving scikit-learn, for the Open Inference Protocol source tests.

MLServer runs from its own venv (`scripts/model-servers mlserver`: mlserver and
mlserver-sklearn 1.7.1 with their pins, aiokafka for its Kafka server and grpcio for its
gRPC API); the model is a logistic regression fitted on iris in that venv (so its
scikit-learn reads the pickle), served as `iris` and, for probing the Kafka server, `warmup`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.integration.observability import free_port

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

_TRAIN = """
import sys, joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), sys.argv[1])
"""


def mlserver_python() -> Path:
    """MLServer's venv python, created once by the project's script (fails the test if not)."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "model-servers"), "mlserver"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        pytest.fail(f"MLServer's venv could not be created (scripts/model-servers mlserver, "
                    f"needs the package index):\n{done.stderr[-3000:]}", pytrace=False)
    return Path(done.stdout.strip().splitlines()[-1])


def write_models(python: Path, directory: Path) -> None:
    """The model files of `iris` and `warmup` (the same fitted model) under `directory`."""
    model = directory / "model.joblib"
    subprocess.run([str(python), "-c", _TRAIN, str(model)], check=True, timeout=300)
    for name in ("iris", "warmup"):
        folder = directory / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model-settings.json").write_text(json.dumps({
            "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": str(model), "version": "v1"}}))


@dataclass
class MLServer:
    """A running `mlserver start`; stop it with `stop()`."""

    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log: Path

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_mlserver(python: Path, models: Path, workdir: Path, *,
                   kafka: tuple[str, str, str] | None = None) -> MLServer:
    """Start MLServer on free ports; `kafka` = (bootstrap, input topic, output topic)."""
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    settings: dict[str, object] = {
        "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port,
        "host": "127.0.0.1", "parallel_workers": 0, "load_models_at_startup": True,
    }
    if kafka is not None:
        bootstrap, input_topic, output_topic = kafka
        settings.update(kafka_enabled=True, kafka_servers=bootstrap,
                        kafka_topic_input=input_topic, kafka_topic_output=output_topic)
    workdir.mkdir(parents=True, exist_ok=True)
    (models / "settings.json").write_text(json.dumps(settings))
    log = workdir / "mlserver.log"
    mlserver = str(python.parent / "mlserver")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLSERVER")}
    with log.open("wb") as out:
        process = subprocess.Popen([mlserver, "start", str(models)], cwd=models, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    server = MLServer(process, http_port, grpc_port, log)
    deadline = time.monotonic() + 120
    url = f"http://127.0.0.1:{http_port}/v2/models/iris/ready"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"MLServer exited ({process.returncode}):\n{log.read_text()[-3000:]}",
                        pytrace=False)
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    pytest.fail(f"MLServer was not ready in 120 s:\n{log.read_text()[-3000:]}", pytrace=False)
