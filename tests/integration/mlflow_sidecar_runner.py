"""Runs in MLflow's own virtual environment (scripts/model-servers mlflow), for
tests/integration/test_sidecar_mlflow.py: real pyfunc models saved, loaded and predicted.

    python mlflow_sidecar_runner.py BOOTSTRAP TOPIC WORKDIR DOCS

DOCS is docs/integrations.md, whose two MLflow examples run here as written but for the
broker's address, the topic and the model's URI (a saved path instead of a registry's).

driftline_sidecar and kafka-python come from PYTHONPATH (a `pip install --target` of
./sidecar), not from this venv. The Kafka address saved with the logged model is wrong on
purpose: KAFKA_BOOTSTRAP_SERVERS, set by the test, must override it. Prints one JSON line.
"""

from __future__ import annotations

import doctest
import json
import sys
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

import driftline_sidecar
import driftline_sidecar.mlflow as sidecar_mlflow
from driftline_sidecar import PredictionLogger
from driftline_sidecar.mlflow import LoggedModel, wrap


class FraudModel(mlflow.pyfunc.PythonModel):
    """The model to serve: a score per row, from two of its columns."""

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.Series:
        score = (model_input["amount"] / 1000).clip(upper=0.9)
        return (score + (model_input["country"] == "DE") * 0.05).round(6)


class ScoresModel(mlflow.pyfunc.PythonModel):
    """A model answering two class scores per row, as a DataFrame."""

    def predict(self, context: Any, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> pd.DataFrame:
        p1 = (model_input["amount"] / 1000).clip(upper=1.0).round(6)
        return pd.DataFrame({"p0": (1 - p1).round(6), "p1": p1})


def frame(prefix: str, count: int) -> pd.DataFrame:
    return pd.DataFrame({
        "amount": [float(10 * i + 1) for i in range(count)],
        "country": ["DE" if i % 3 == 0 else "FR" for i in range(count)],
        "n_items": [i % 5 for i in range(count)],
        "request_id": [f"{prefix}-{i}" for i in range(count)],
    })


def docs_examples(docs: Path) -> list[str]:
    """The python examples of the MLflow section of docs/integrations.md."""
    section = docs.read_text(encoding="utf-8").split("\n## MLflow\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


def run_docs_examples(docs: Path, bootstrap: str, topic: str, inner_path: str) -> dict[str, Any]:
    saving, wrapping = docs_examples(docs)
    for source in (saving, wrapping):
        assert source.count('"kafka:9092"') == 1
        assert source.count('"models:/fraud/7"') == 1
    address = f"{bootstrap!r}, predictions_topic={topic!r}"
    saving = saving.replace('"kafka:9092"', address).replace('"models:/fraud/7"',
                                                             repr(inner_path))
    exec(compile(saving, str(docs), "exec"), {})  # our own docs' example
    logged = mlflow.pyfunc.load_model("fraud-logged")
    saved_out = logged.predict(frame("ds", 5))
    logged.unwrap_python_model().close()
    namespace: dict[str, Any] = {"frame": frame("dw", 5)}
    wrapping = wrapping.replace('"kafka:9092"', address).replace('"models:/fraud/7"',
                                                                 repr(inner_path))
    exec(compile(wrapping, str(docs), "exec"), namespace)
    namespace["sidecar"].close()
    return {"saved": [float(v) for v in saved_out], "wrapped_rows": namespace["model"].stats.rows,
            "wrapped_sent": namespace["sidecar"].stats.sent}


def main() -> None:
    bootstrap, topic, workdir = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    docs = Path(sys.argv[4])
    inner_path, scores_path = str(workdir / "inner"), str(workdir / "scores")
    logged_path = str(workdir / "logged")
    mlflow.pyfunc.save_model(inner_path, python_model=FraudModel())
    mlflow.pyfunc.save_model(scores_path, python_model=ScoresModel())
    mlflow.pyfunc.save_model(
        logged_path,
        python_model=LoggedModel(model="fraud", model_version="7",
                                 bootstrap_servers="127.0.0.1:1", predictions_topic=topic),
        artifacts={"model": inner_path})

    # 1. The logged model, loaded by MLflow, next to the model itself.
    data = frame("m", 40)
    logged = mlflow.pyfunc.load_model(logged_path)
    served = logged.predict(data)
    direct = mlflow.pyfunc.load_model(inner_path).predict(data)
    python_model = logged.unwrap_python_model()
    python_model.close()

    # 2. wrap() around loaded models, in a server of one's own.
    sidecar = PredictionLogger(bootstrap, model="fraud-wrapped", predictions_topic=topic)
    wrapped = wrap(mlflow.pyfunc.load_model(scores_path), sidecar, model_version="2")
    scores_data = frame("w", 10)
    scores = wrapped.predict(scores_data)
    scores_direct = mlflow.pyfunc.load_model(scores_path).predict(scores_data)
    # No request id column, and input that is no table: logged without ids, and skipped.
    plain = wrapped.predict(frame("p", 3).drop(columns="request_id"))
    echo = wrap(_Echo(), sidecar)
    unreadable = echo.predict("not a table")
    sidecar.close()

    examples = run_docs_examples(docs, bootstrap, topic, inner_path)
    failures, attempted = doctest.testmod(sidecar_mlflow)
    print(json.dumps({
        "package_file": driftline_sidecar.__file__,
        "same_served": bool(pd.Series(served).equals(pd.Series(direct))),
        "served": [float(v) for v in served],
        "logged_stats": [python_model.stats.calls, python_model.stats.rows],
        "logged_sent": python_model.logger.stats.sent,
        "logged_dropped": python_model.logger.stats.dropped_total,
        "same_scores": bool(scores.equals(scores_direct)),
        "scores": scores.to_numpy().tolist(),
        "plain": plain.to_numpy().tolist(),
        "unreadable": [unreadable, dict(echo.stats.skipped)],
        "wrapped_stats": [wrapped.stats.calls, wrapped.stats.rows, dict(wrapped.stats.skipped)],
        "sidecar_sent": sidecar.stats.sent,
        "doctest": [failures, attempted],
        "docs": examples,
    }))


class _Echo:
    def predict(self, data: Any) -> Any:
        return data


if __name__ == "__main__":
    main()
