"""What to send to start a retraining job elsewhere, from driftline's `model.drift_detected` event.

Every function here is pure: it takes the event as driftline sent it (the webhook body, after
the receiver verified its signature and parsed it, or the `DriftEvent` read from it) and the
delivery's `webhook-id`, and returns the request to make. Nothing here opens a connection,
holds a credential or reads the environment; docs/retraining.md shows each mapping in use,
with the API page it follows.

- Airflow 2 (stable REST API): `airflow_request`, a DAG run whose `dag_run_id` is derived from
  the webhook-id, so a second trigger for the same delivery is refused with 409.
- Kubeflow Pipelines (v2beta1 REST API): `kubeflow_request`, a run of a pipeline version.
- MLflow Projects (no REST trigger exists: a project runs where `mlflow run` or
  `mlflow.projects.run` is called): `mlflow_run_kwargs` and `mlflow_cli_args`.
- GitHub Actions: `github_dispatch_request`, a `workflow_dispatch` event.

    >>> event = {"type": "model.drift_detected", "timestamp": "2026-11-24T10:05:00Z",
    ...          "data": {"model": "fraud", "model_version": "7", "run_id": "0a8f",
    ...                   "n_reference": 5000, "n_current": 2000,
    ...                   "drifted_features": [{"name": "amount"}, {"name": "age"}]}}
    >>> airflow_request(event, webhook_id="msg_1", dag_id="retrain_fraud")
    ... # doctest: +NORMALIZE_WHITESPACE
    HttpRequest(method='POST', path='/api/v1/dags/retrain_fraud/dagRuns',
                json={'dag_run_id': 'driftline-msg_1', 'conf': {'model': 'fraud',
                'model_version': '7', 'drift_run_id': '0a8f',
                'drifted_features': ['amount', 'age'], 'share_drifted': None,
                'window_start': None, 'window_end': None, 'webhook_id': 'msg_1'}})
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote

DRIFT_EVENT_TYPE = "model.drift_detected"

# GitHub: "The maximum number of properties is 25" (inputs of a workflow_dispatch), and "The
# maximum payload for inputs is 65,535 characters" (workflow syntax, on.workflow_dispatch.inputs).
GITHUB_MAX_INPUTS = 25
GITHUB_MAX_INPUT_CHARACTERS = 65_535
# Airflow 2.6.3+ refuses run ids outside `[scheduler] allowed_run_id_pattern`, by default
# ^[A-Za-z0-9_.~:+-]+$; anything else in a webhook-id becomes "_".
_AIRFLOW_RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.~:+-]")


class HttpRequest(NamedTuple):
    """One HTTP request: method, path under the API's base URL, JSON body."""

    method: str
    path: str
    json: dict[str, Any]


@dataclass(frozen=True)
class DriftEvent:
    """The fields of a `model.drift_detected` event that a retraining job needs.

    `drift_run_id` is driftline's monitoring run that found the drift (the payload's
    `data.run_id`), named apart from the run ids of the systems it starts.
    """

    model: str
    model_version: str | None
    drift_run_id: str
    detected_at: str
    drifted_features: tuple[str, ...]
    share_drifted: float | None
    n_reference: int
    n_current: int
    window_start: str | None
    window_end: str | None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> DriftEvent:
        """Read the event; a missing or mistyped field raises `ValueError` naming it.

        The messages name fields and types, never values: the payload stays out of logs.
        """
        if not isinstance(payload, Mapping):
            raise ValueError(f"the event must be a JSON object, got {type(payload).__name__}")
        if payload.get("type") != DRIFT_EVENT_TYPE:
            raise ValueError(f"type: expected {DRIFT_EVENT_TYPE!r}")
        data = payload.get("data")
        if not isinstance(data, Mapping):
            raise ValueError("data: expected an object")
        features = data.get("drifted_features", [])
        if not isinstance(features, list) or not all(
                isinstance(item, Mapping) and _is_text(item.get("name")) for item in features):
            raise ValueError("data.drifted_features: expected a list of objects with a name")
        version = data.get("model_version")
        if isinstance(version, int) and not isinstance(version, bool):
            version = str(version)  # driftline keeps versions as text; accept an integer too
        return cls(
            model=_text(data, "model"),
            model_version=_optional("model_version", version),
            drift_run_id=_text(data, "run_id"),
            detected_at=_text(payload, "timestamp", prefix=""),
            drifted_features=tuple(str(item["name"]) for item in features),
            share_drifted=_number(data, "share_drifted"),
            n_reference=_count(data, "n_reference"),
            n_current=_count(data, "n_current"),
            window_start=_optional("window_start", data.get("window_start")),
            window_end=_optional("window_end", data.get("window_end")),
        )

    def parameters(self, webhook_id: str) -> dict[str, str]:
        """The event as flat string parameters, the form every target can carry."""
        return {
            "model": self.model,
            "model_version": self.model_version or "",
            "drift_run_id": self.drift_run_id,
            "drifted_features": ",".join(self.drifted_features),
            "window_start": self.window_start or "",
            "window_end": self.window_end or "",
            "webhook_id": webhook_id,
        }


EventLike = DriftEvent | Mapping[str, Any]
"""A `model.drift_detected` payload, or the `DriftEvent` already read from it."""


def airflow_request(event: EventLike, *, webhook_id: str, dag_id: str) -> HttpRequest:
    """Trigger a DAG run (Airflow 2 stable REST API, `POST /api/v1/dags/{dag_id}/dagRuns`).

    `dag_run_id` is derived from the webhook-id: Airflow keeps (dag_id, dag_run_id) unique and
    answers 409 to a second trigger, so a delivery that reaches two receivers, or a receiver
    that restarted, still starts one run. `conf` is free JSON, read in the DAG as
    `dag_run.conf`; `logical_date` is left to Airflow (now).
    """
    event = _read(event)
    conf: dict[str, Any] = {
        "model": event.model,
        "model_version": event.model_version,
        "drift_run_id": event.drift_run_id,
        "drifted_features": list(event.drifted_features),
        "share_drifted": event.share_drifted,
        "window_start": event.window_start,
        "window_end": event.window_end,
        "webhook_id": webhook_id,
    }
    run_id = "driftline-" + _AIRFLOW_RUN_ID_UNSAFE.sub("_", _required("webhook_id", webhook_id))
    return HttpRequest("POST", f"/api/v1/dags/{_segment('dag_id', dag_id)}/dagRuns",
                       {"dag_run_id": run_id, "conf": conf})


def kubeflow_request(event: EventLike, *, webhook_id: str, pipeline_id: str,
                     pipeline_version_id: str | None = None,
                     experiment_id: str | None = None) -> HttpRequest:
    """Create a pipeline run (Kubeflow Pipelines v2beta1 REST API, `POST /apis/v2beta1/runs`).

    Without `pipeline_version_id` the pipeline's latest version runs; without `experiment_id`
    the default experiment holds the run. `runtime_config.parameters` must name the
    pipeline's inputs exactly; all of them are strings here. KFP has no idempotency key: the
    receiver's webhook-id check is what keeps a retried delivery from starting a second run.
    """
    event = _read(event)
    reference = {"pipeline_id": _required("pipeline_id", pipeline_id)}
    if pipeline_version_id:
        reference["pipeline_version_id"] = pipeline_version_id
    body: dict[str, Any] = {
        "display_name": f"retrain {event.model} after drift run {event.drift_run_id}",
        "description": f"started by driftline webhook {webhook_id}",
        "pipeline_version_reference": reference,
        "runtime_config": {"parameters": event.parameters(webhook_id)},
    }
    if experiment_id:
        body["experiment_id"] = experiment_id
    return HttpRequest("POST", "/apis/v2beta1/runs", body)


def mlflow_run_kwargs(event: EventLike, *, webhook_id: str, uri: str,
                      entry_point: str = "main",
                      experiment_name: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `mlflow.projects.run(**kwargs)`, which runs an MLflow Project.

    MLflow Projects have no REST trigger: the tracking server's REST API records runs (its
    `runs/create` makes a run entry, it executes nothing). The receiver calls
    `mlflow.projects.run` itself; `synchronous=False` returns a `SubmittedRun` at once, whose
    `wait()` the receiver's job thread can call. The run is named after the webhook-id so that
    a search by name finds what a delivery started.
    """
    event = _read(event)
    kwargs: dict[str, Any] = {
        "uri": _required("uri", uri),
        "entry_point": entry_point,
        "parameters": event.parameters(webhook_id),
        "run_name": f"driftline-{webhook_id}",
        "synchronous": False,
    }
    if experiment_name:
        kwargs["experiment_name"] = experiment_name
    return kwargs


def mlflow_cli_args(event: EventLike, *, webhook_id: str, uri: str,
                    entry_point: str = "main", experiment_name: str | None = None) -> list[str]:
    """The same run as an `mlflow run` command line (for `subprocess.run`, never a shell).

    >>> event = {"type": "model.drift_detected", "timestamp": "2026-11-24T10:05:00Z",
    ...          "data": {"model": "fraud", "run_id": "0a8f", "n_reference": 1, "n_current": 1}}
    >>> mlflow_cli_args(event, webhook_id="msg_1", uri=".")[:8]
    ['mlflow', 'run', '.', '-e', 'main', '--run-name', 'driftline-msg_1', '-P']
    """
    kwargs = mlflow_run_kwargs(event, webhook_id=webhook_id, uri=uri, entry_point=entry_point,
                               experiment_name=experiment_name)
    args = ["mlflow", "run", kwargs["uri"], "-e", kwargs["entry_point"],
            "--run-name", kwargs["run_name"]]
    for name, value in kwargs["parameters"].items():
        args += ["-P", f"{name}={value}"]
    if experiment_name:
        args += ["--experiment-name", experiment_name]
    return args


def github_dispatch_request(event: EventLike, *, webhook_id: str, owner: str,
                            repo: str, workflow_id: str, ref: str = "main") -> HttpRequest:
    """Dispatch a workflow (GitHub REST API, "Create a workflow dispatch event").

    `POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches`, where
    `workflow_id` is the workflow's numeric id or its file name (`retrain.yml`), and the
    workflow must declare `on: workflow_dispatch` with an input for each key sent: GitHub
    refuses undeclared inputs (422). Inputs are strings, at most 25 of them and 65,535
    characters together.
    """
    event = _read(event)
    inputs = event.parameters(webhook_id)
    size = len(json.dumps(inputs, separators=(",", ":")))
    if len(inputs) > GITHUB_MAX_INPUTS or size > GITHUB_MAX_INPUT_CHARACTERS:
        raise ValueError(f"workflow_dispatch inputs: {len(inputs)} inputs of {size} characters "
                         f"exceed GitHub's {GITHUB_MAX_INPUTS} inputs or "
                         f"{GITHUB_MAX_INPUT_CHARACTERS} characters")
    path = (f"/repos/{_segment('owner', owner)}/{_segment('repo', repo)}/actions/workflows/"
            f"{_segment('workflow_id', workflow_id)}/dispatches")
    return HttpRequest("POST", path, {"ref": _required("ref", ref), "inputs": inputs})


def _read(event: EventLike) -> DriftEvent:
    return event if isinstance(event, DriftEvent) else DriftEvent.from_payload(event)


def _is_text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _text(data: Mapping[str, Any], key: str, *, prefix: str = "data.") -> str:
    value = data.get(key)
    if not _is_text(value):
        raise ValueError(f"{prefix}{key}: expected a non-empty string, "
                         f"got {type(value).__name__}")
    return str(value)


def _optional(key: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value
    raise ValueError(f"data.{key}: expected a string or null, got {type(value).__name__}")


def _number(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"data.{key}: expected a number or null, got {type(value).__name__}")
    return float(value)


def _count(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"data.{key}: expected a count (an integer >= 0)")
    return value


def _required(name: str, value: str) -> str:
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def _segment(name: str, value: str) -> str:
    """One URL path segment: `value` percent-encoded, so a `/` cannot change the path."""
    return quote(_required(name, value), safe="")
