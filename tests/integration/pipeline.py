"""Shared set-up of the run-pipeline tests: one model, ingest from the real broker, runs on call.

The service runs ingest and the HTTP API but no scheduler: each test calls the model's
`ModelMonitor.run()` itself once ingest has stored everything, so what a run sees is known.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from sqlalchemy import func, select

from collector.app import Service
from collector.config import Settings, parse_settings
from collector.store.models import Label
from collector.store.queries import count_predictions
from tests.integration.spine import wait_for


def new_topics(topic_factory: Callable[[str], str]) -> dict[str, str]:
    """Fresh predictions, labels and dead-letter topics."""
    return {
        "predictions_topic": topic_factory("predictions"),
        "labels_topic": topic_factory("labels"),
        "deadletter_topic": topic_factory("deadletter"),
    }


def one_model_settings(tmp_path: Path, *, database_url: str, bootstrap: str,
                       topics: dict[str, str], reference: pd.DataFrame,
                       model: dict[str, Any]) -> Settings:
    """Settings for the single model `model` (its `reference.path` is filled in here)."""
    path = tmp_path / f"reference-{uuid.uuid4().hex[:6]}.csv"
    reference.to_csv(path, index=False)
    return parse_settings({
        "database_url": database_url,
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"g-{uuid.uuid4().hex[:8]}",
                  **topics},
        "http": {"host": "127.0.0.1", "port": 0},
        "models": [{**model, "reference": {"path": str(path)}}],
    }, environ={})


def start_without_scheduler(settings: Settings) -> Service:
    """The service with ingest and the HTTP API; runs happen when the test calls them."""
    service = Service(settings, roles=frozenset({"ingest", "api"}),
                      health_interval_seconds=0.5)
    service.start()
    return service


def count_labels(service: Service, model: str) -> int:
    """Labels stored for `model`."""
    with service.sessions() as session:
        query = select(func.count()).select_from(Label).where(Label.model == model)
        return int(session.execute(query).scalar_one())


def wait_stored(service: Service, model: str, *, predictions: int, labels: int,
                timeout: float = 60) -> None:
    """Poll the store until exactly these many predictions and labels of `model` are in it."""

    def done() -> bool:
        with service.sessions() as session:
            stored = count_predictions(session, model)
        return stored == predictions and count_labels(service, model) == labels

    wait_for(done, timeout=timeout, interval=0.1,
             message=f"{predictions} predictions and {labels} labels of {model} stored")


def get_json(service: Service, path: str, **params: str) -> Any:
    """GET a path of the service's HTTP API and return its JSON body (must be 200)."""
    response = httpx.get(f"http://127.0.0.1:{service.http_port}{path}", params=params,
                         timeout=30)
    assert response.status_code == 200, response.text
    return response.json()
