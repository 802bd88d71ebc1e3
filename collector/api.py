"""The HTTP API: /metrics, /healthz, /readyz and /v1 read endpoints."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import Body, FastAPI, Header, HTTPException, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.orm import Session, sessionmaker

from alerts.clock import iso_z, utcnow
from alerts.state import AlertInstance, active_instances, history, silence
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
    # The bearer token write endpoints require; None refuses every write (401).
    api_token: str | None = None
    token_env: str = "DRIFTLINE_API_TOKEN"  # noqa: S105 - a variable name, not a secret
    clock: Callable[[], datetime] = utcnow


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


def instance_to_dict(row: AlertInstance, now: datetime) -> dict[str, Any]:
    """The JSON form of an alert instance."""
    silenced = row.silenced_until is not None and row.silenced_until > now
    return {
        "fingerprint": row.fingerprint, "rule": row.rule, "model": row.model,
        "labels": row.labels, "state": row.state, "breaches": row.breaches,
        "since": _iso(row.fired_at if row.state == "firing" else row.active_since),
        "active_since": _iso(row.active_since), "fired_at": _iso(row.fired_at),
        "last_notified_at": _iso(row.last_notified_at), "summary": row.summary,
        "values": row.values, "silenced_until": _iso(row.silenced_until) if silenced else None,
        "last_run_id": row.last_run_id,
    }


def _authorize(context: ApiContext, authorization: str | None) -> None:
    """Refuse (401) unless the request carries the configured bearer token."""
    if context.api_token is None:
        raise HTTPException(status_code=401, detail=(
            f"write endpoints are disabled: set {context.token_env} to a token and send it "
            "as 'Authorization: Bearer <token>'"), headers={"WWW-Authenticate": "Bearer"})
    scheme, _, token = (authorization or "").partition(" ")
    # Constant-time comparison: the time taken says nothing about how much of it matched.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), context.api_token.encode()):
        raise HTTPException(status_code=401, detail="a valid bearer token is required",
                            headers={"WWW-Authenticate": "Bearer"})


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

    @app.get("/v1/alerts")
    def alerts() -> dict[str, Any]:
        """Pending and firing alerts of driftline's own rules, firing first."""
        if context.session_factory is None:
            raise HTTPException(status_code=503, detail="store not configured")
        now = context.clock()
        with context.session_factory() as session:
            return {"alerts": [instance_to_dict(r, now) for r in active_instances(session)]}

    @app.get("/v1/alerts/history")
    def alerts_history(limit: int = Query(200, ge=1, le=1000),
                       model: str | None = Query(None)) -> dict[str, Any]:
        """State changes of alert instances, newest first."""
        if context.session_factory is None:
            raise HTTPException(status_code=503, detail="store not configured")
        with context.session_factory() as session:
            rows = history(session, limit=limit, model=model)
            return {"transitions": [{
                "fingerprint": t.fingerprint, "rule": t.rule, "model": t.model,
                "from": t.from_state, "to": t.to_state, "at": _iso(t.at), "run_id": t.run_id,
                "values": t.values} for t in rows]}

    @app.post("/v1/alerts/{fingerprint}/silence")
    def silence_alert(
        fingerprint: str,
        duration_seconds: float = Body(..., embed=True, gt=0, le=90 * 86400),
        authorization: str | None = Header(None),
    ) -> dict[str, Any]:
        """Silence an alert instance for a while: no notification until it ends."""
        _authorize(context, authorization)
        if context.session_factory is None:
            raise HTTPException(status_code=503, detail="store not configured")
        now = context.clock()
        until = now + timedelta(seconds=duration_seconds)
        with context.session_factory.begin() as session:
            row = silence(session, fingerprint, until)
            if row is None:
                raise HTTPException(status_code=404,
                                    detail=f"no alert instance {fingerprint!r}")
            return instance_to_dict(row, now)

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
