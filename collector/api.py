"""The HTTP API: /metrics, /healthz, /readyz and /v1 read endpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.orm import Session, sessionmaker

from alerts.clock import iso_z
from collector.store.models import FeatureResult, Run
from collector.store.queries import feature_results, latest_runs


@dataclass(frozen=True)
class ApiContext:
    """What the HTTP handlers need, built by the wiring code."""

    registry: CollectorRegistry
    session_factory: sessionmaker[Session] | None
    readiness: Callable[[], dict[str, bool]]
    model_names: frozenset[str]
    # (model, bucket or None for the configured one, limit) -> the per-bucket history;
    # raises ValueError on a bucket that is not a duration.
    performance_history: Callable[[str, str | None, int], dict[str, Any]] | None = None


def _iso(value: datetime | None) -> str | None:
    return iso_z(value) if value is not None else None


def run_to_dict(run: Run, results: list[FeatureResult]) -> dict[str, Any]:
    """The JSON form of a stored run and its per-feature results."""
    return {
        "id": run.id,
        "model": run.model,
        "model_version": run.model_version,
        "status": run.status,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "window_start": _iso(run.window_start),
        "window_end": _iso(run.window_end),
        "n_reference": run.n_reference,
        "n_current": run.n_current,
        "share_drifted": run.share_drifted,
        "drift_share": run.drift_share,
        "dataset_drifted": run.dataset_drifted,
        "error": run.error,
        "n_labelled": run.n_labelled,
        "label_coverage": run.label_coverage,
        "result": run.result,
        "features": {
            r.feature: {
                "kind": r.kind,
                "method": r.method,
                "status": r.status,
                "statistic": r.statistic,
                "p_value": r.p_value,
                "threshold": r.threshold,
                "drifted": r.drifted,
                "effect_size": r.effect_size,
                "n_reference": r.n_reference,
                "n_current": r.n_current,
            }
            for r in sorted(results, key=lambda r: r.feature)
        },
    }


def create_app(context: ApiContext) -> FastAPI:
    """Build the FastAPI application over `context`."""
    app = FastAPI(title="driftline", version="0.1.0", docs_url="/docs", redoc_url=None)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(context.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        checks = context.readiness()
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/v1/models")
    def models() -> dict[str, list[str]]:
        return {"models": sorted(context.model_names)}

    @app.get("/v1/models/{name}/runs")
    def runs(name: str, limit: int = Query(20, ge=1, le=500)) -> dict[str, Any]:
        if name not in context.model_names:
            raise HTTPException(status_code=404, detail=f"no monitored model named {name!r}")
        if context.session_factory is None:
            raise HTTPException(status_code=503, detail="store not configured")
        with context.session_factory() as session:
            found = latest_runs(session, name, limit)
            results = feature_results(session, [r.id for r in found])
        return {"model": name, "runs": [run_to_dict(r, results[r.id]) for r in found]}

    @app.get("/v1/models/{name}/performance")
    def performance(name: str, bucket: str | None = Query(None, max_length=32),
                    limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
        """Realized performance per bucket of prediction time, newest first, with coverage.

        Without `bucket`, the configured `performance.bucket` (kept up to date as late
        labels land); another width (e.g. `1D`) is computed from the stored events.
        """
        if name not in context.model_names:
            raise HTTPException(status_code=404, detail=f"no monitored model named {name!r}")
        if context.performance_history is None:
            raise HTTPException(status_code=503, detail="the scheduler role is not running")
        try:
            return context.performance_history(name, bucket, limit)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc

    return app
