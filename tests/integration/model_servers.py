"""Real model servers for the integration tests and benches, each in its own venv.

`server_python(name)` creates (once, cached by a hash of the pins) the venv of ``mlserver``,
``kserve`` or ``mlflow`` with scripts/model-servers. The starters train a small scikit-learn
model (iris) with the server's own scikit-learn, start the server on free ports and wait until
it is ready; `ModelServer.stop()` ends the process they started.

- `start_mlserver`: MLServer's REST API (Open Inference Protocol v2) serving an
  `mlserver_sklearn.SKLearnModel` named ``iris``, version ``v1``, fitted on a DataFrame of four
  named columns, whose model-settings.json declares them as four one-column inputs (so that
  ``GET /v2/models/iris`` names them), and whose default output is ``predict_proba``.
- `start_kserve`: a KServe Python ``ModelServer`` with a custom ``kserve.Model`` ``iris``
  answering the v1 protocol (``instances`` -> ``predictions``, class probabilities per row).
- `start_mlflow`: ``mlflow models serve`` of an sklearn pyfunc (``predict``: the class).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ("mlserver", "kserve", "mlflow")
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


class ModelServerError(RuntimeError):
    """A model server's venv could not be created or the server did not become ready."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_python(name: str) -> Path:
    """The python of the server's venv, created by scripts/model-servers when missing."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "model-servers"), name],
                          capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise ModelServerError(f"scripts/model-servers {name} failed (exit {done.returncode}): "
                               f"{done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass
class ModelServer:
    """A running model server process."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, object] = field(default_factory=dict)

    def stop(self) -> None:
        """Terminate the process (and kill it when it does not stop within 15 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log_tail(self) -> str:
        """The end of the server's output, for failure messages."""
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


_TRAIN = textwrap.dedent("""
    import sys
    import joblib
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    frame = iris.frame.rename(columns=dict(zip(iris.feature_names, {features!r})))
    X = frame[list({features!r})]
    model = LogisticRegression(max_iter=500).fit(X if {named} else X.to_numpy(), iris.target)
    joblib.dump(model, sys.argv[1])
""")


def _train(python: Path, target: Path, *, named: bool) -> None:
    script = _TRAIN.format(features=FEATURES, named=named)
    subprocess.run([str(python), "-c", script, str(target)], check=True, timeout=300,
                   capture_output=True)


def _wait_ready(server: ModelServer, path: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ModelServerError(f"{server.name} exited with {server.process.returncode}:\n"
                                   f"{server.log_tail()}")
        try:
            if httpx.get(server.url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise ModelServerError(f"{server.name} not ready after {timeout:.0f} s:\n{server.log_tail()}")


def _popen(args: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None
           ) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})


def start_mlserver(workdir: Path, *, kafka_servers: str | None = None,
                   kafka_topics: tuple[str, str] = ("mlserver-input", "mlserver-output"),
                   ) -> ModelServer:
    """MLServer's REST API serving iris (see the module docstring).

    With `kafka_servers`, its Kafka server too, reading `kafka_topics[0]` and answering on
    `kafka_topics[1]`.
    """
    python = server_python("mlserver")
    model_dir = workdir / "mlserver"
    model_dir.mkdir(parents=True, exist_ok=True)
    _train(python, model_dir / "model.joblib", named=True)
    http_port = free_port()
    (model_dir / "settings.json").write_text(json.dumps({
        "http_port": http_port, "grpc_port": free_port(), "metrics_port": free_port(),
        "host": "127.0.0.1", "parallel_workers": 0, "debug": False,
        "kafka_enabled": kafka_servers is not None,
        **({"kafka_servers": kafka_servers, "kafka_topic_input": kafka_topics[0],
            "kafka_topic_output": kafka_topics[1]} if kafka_servers is not None else {})}))
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": "iris", "implementation": "mlserver_sklearn.SKLearnModel",
        "inputs": [{"name": name, "datatype": "FP64", "shape": [-1, 1]} for name in FEATURES],
        "parameters": {"uri": "./model.joblib", "version": "v1",
                       "extra": {"predict_fn": "predict_proba"}}}))
    log = workdir / "mlserver.log"
    mlserver = str(python.parent / "mlserver")
    server = ModelServer("mlserver", f"http://127.0.0.1:{http_port}",
                         _popen([mlserver, "start", str(model_dir)], model_dir, log), log)
    _wait_ready(server, "/v2/models/iris/ready")
    return server


_KSERVE_MODEL = textwrap.dedent("""
    import sys

    import kserve
    import numpy as np

    # A fixed linear softmax over the four iris measurements (kserve brings no scikit-learn).
    WEIGHTS = np.array([[0.4, 1.4, -2.2, -1.0], [0.5, -1.6, 0.6, -1.3], [-1.1, -1.5, 2.4, 2.5]])
    BIAS = np.array([0.3, 1.9, -2.2])


    class Iris(kserve.Model):
        def __init__(self, name):
            super().__init__(name)
            self.ready = True

        def predict(self, payload, headers=None):
            z = np.asarray(payload["instances"], dtype=float) @ WEIGHTS.T + BIAS
            z = np.exp(z - z.max(axis=1, keepdims=True))
            return {"predictions": (z / z.sum(axis=1, keepdims=True)).round(6).tolist()}


    if __name__ == "__main__":
        kserve.ModelServer(http_port=int(sys.argv[1]), enable_grpc=False, workers=1).start(
            [Iris("iris")])
""")


def start_kserve(workdir: Path) -> ModelServer:
    """A KServe Python ModelServer with a custom v1 model (see the module docstring)."""
    python = server_python("kserve")
    model_dir = workdir / "kserve"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "server.py").write_text(_KSERVE_MODEL)
    port = free_port()
    log = workdir / "kserve.log"
    server = ModelServer("kserve", f"http://127.0.0.1:{port}", _popen(
        [str(python), str(model_dir / "server.py"), str(port)], model_dir, log), log)
    _wait_ready(server, "/v1/models/iris")
    return server


_MLFLOW_SAVE = textwrap.dedent("""
    import sys
    import mlflow.sklearn
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    X = iris.frame[iris.feature_names].set_axis({features!r}, axis=1)
    model = LogisticRegression(max_iter=500).fit(X, iris.target)
    mlflow.sklearn.save_model(model, sys.argv[1], input_example=X.head(2))
""")


def start_mlflow(workdir: Path) -> ModelServer:
    """``mlflow models serve`` of an sklearn iris model (see the module docstring)."""
    python = server_python("mlflow")
    model_dir = workdir / "mlflow-model"
    subprocess.run([str(python), "-c", _MLFLOW_SAVE.format(features=FEATURES), str(model_dir)],
                   check=True, timeout=600, capture_output=True, cwd=workdir)
    port = free_port()
    log = workdir / "mlflow.log"
    mlflow = str(python.parent / "mlflow")
    env = {"MLFLOW_TRACKING_URI": f"file://{workdir / 'mlruns'}", "PATH":
           f"{python.parent}:{os.environ.get('PATH', '')}"}
    server = ModelServer("mlflow", f"http://127.0.0.1:{port}", _popen(
        [mlflow, "models", "serve", "-m", str(model_dir), "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], workdir, log, env), log)
    _wait_ready(server, "/ping", timeout=240)
    return server


@dataclass
class ProxyProcess:
    """A `driftline proxy` process started by `start_proxy`."""

    url: str
    metrics_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def metrics(self) -> dict[str, float]:
        """The proxy's driftline_* samples, ``name{labels}`` -> value (no _created series)."""
        samples: dict[str, float] = {}
        for line in httpx.get(self.metrics_url, timeout=5).text.splitlines():
            if line.startswith("driftline_") and "_created" not in line:
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def stop(self) -> None:
        """SIGTERM (the proxy flushes its logger), SIGKILL after 20 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log_tail(self) -> str:
        """The end of the proxy's output."""
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


def start_proxy(upstream: str, *, model: str, bootstrap: str, topic: str, workdir: Path,
                extra: list[str] | None = None) -> ProxyProcess:
    """`driftline proxy` (the real CLI, in driftline's venv) on free ports, once it listens."""
    port, metrics_port = free_port(), free_port()
    log = workdir / f"proxy-{port}.log"
    args = [sys.executable, "-m", "collector.cli", "proxy", "--upstream", upstream,
            "--listen", f"127.0.0.1:{port}", "--model", model, "--bootstrap-servers", bootstrap,
            "--topic", topic, "--metrics-listen", f"127.0.0.1:{metrics_port}", *(extra or [])]
    proxy = ProxyProcess(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics",
                         _popen(args, ROOT, log), log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise ModelServerError(f"the proxy exited with {proxy.process.returncode}:\n"
                                   f"{proxy.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proxy
        except OSError:
            time.sleep(0.1)
    proxy.stop()
    raise ModelServerError(f"the proxy did not listen within 60 s:\n{proxy.log_tail()}")


def start(name: str, workdir: Path) -> ModelServer:
    """Start the named server (one of `SERVERS`)."""
    return {"mlserver": start_mlserver, "kserve": start_kserve, "mlflow": start_mlflow}[name](
        workdir)


if __name__ == "__main__":  # python -m tests.integration.model_servers NAME: start one, by hand
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        running = start(sys.argv[1], Path(tmp))
        print(running.url, flush=True)
        try:
            running.process.wait()
        finally:
            running.stop()
