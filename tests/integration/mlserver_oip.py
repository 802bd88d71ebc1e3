"""A real MLServer with its Kafka server and gRPC API, for the Open Inference Protocol sources.

MLServer runs from its own venv (`model_servers.server_python("mlserver")`: mlserver and
mlserver-sklearn 1.7.1 with their pins, aiokafka for its Kafka server and grpcio for its gRPC
API). Unlike `model_servers.start_mlserver` (REST only, named inputs, `predict_proba`), this
one serves a logistic regression fitted on iris as a bare array, the way MLServer's Kafka and
Seldon Core v2 examples send it (one `[n, 4]` tensor, the `predict` output by default), as
`iris` and, for probing the Kafka server, as `warmup`; its Kafka server is on when asked.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.model_servers import (
    ModelServer,
    ModelServerError,
    _popen,
    _wait_ready,
    free_port,
    server_python,
)

__all__ = ["ModelServer", "mlserver_python", "start_mlserver", "write_models"]

_TRAIN = """
import sys, joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), sys.argv[1])
"""


def mlserver_python() -> Path:
    """MLServer's venv python, created once by the project's script (fails the test if not)."""
    try:
        return server_python("mlserver")
    except ModelServerError as exc:
        pytest.fail(f"MLServer's venv could not be created (needs the package index): {exc}",
                    pytrace=False)


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


def start_mlserver(python: Path, models: Path, workdir: Path, *,
                   kafka: tuple[str, str, str] | None = None) -> ModelServer:
    """Start MLServer on free ports; `kafka` = (bootstrap, input topic, output topic).

    The gRPC address is `server.extra["grpc"]`.
    """
    http_port, grpc_port = free_port(), free_port()
    settings: dict[str, object] = {
        "http_port": http_port, "grpc_port": grpc_port, "metrics_port": free_port(),
        "host": "127.0.0.1", "parallel_workers": 0, "kafka_enabled": kafka is not None,
    }
    if kafka is not None:
        bootstrap, input_topic, output_topic = kafka
        settings.update(kafka_servers=bootstrap, kafka_topic_input=input_topic,
                        kafka_topic_output=output_topic)
    workdir.mkdir(parents=True, exist_ok=True)
    (models / "settings.json").write_text(json.dumps(settings))
    log = workdir / "mlserver.log"
    server = ModelServer("mlserver", f"http://127.0.0.1:{http_port}",
                         _popen([str(python.parent / "mlserver"), "start", str(models)],
                                models, log),
                         log, extra={"grpc": f"127.0.0.1:{grpc_port}"})
    try:
        _wait_ready(server, "/v2/models/iris/ready")
    except ModelServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    return server
