"""One monitoring run of one model: window, drift, stored run, gauges, retraining webhook."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from alerts.clock import iso_z, utcnow
from alerts.outbox import enqueue, in_cooldown
from collector.config import ModelSettings
from collector.errors import ReferenceDataError
from collector.metrics import Metrics
from collector.reference import (
    PREDICTION_COLUMN,
    file_digest,
    fit_model_profile,
    model_schema,
    read_table,
)
from collector.run import detect_model_drift, drift_options
from collector.store.models import FeatureResult, Reference, Run
from collector.store.queries import find_reference, load_window
from detectors import DriftOptions, DriftReport, ReferenceProfile
from detectors.report import finite_or_none

logger = logging.getLogger(__name__)

DRIFT_EVENT_TYPE = "model.drift_detected"


def retraining_channel_name(model: str) -> str:
    """The dispatcher channel that carries a model's retraining webhook."""
    return f"retraining:{model}"


@dataclass(frozen=True)
class RunSummary:
    """What a run found, as returned to the scheduler and to tests."""

    run_id: str
    model: str
    status: str
    n_current: int
    share_drifted: float | None
    dataset_drifted: bool
    drifted_features: tuple[str, ...]
    webhook_enqueued: bool
    error: str | None = None


class ModelMonitor:
    """Runs drift checks for one model; never two at once (a lock guards `run`)."""

    def __init__(
        self,
        model: ModelSettings,
        session_factory: sessionmaker[Session],
        metrics: Metrics,
        *,
        max_features_exported: int = 250,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.model = model
        self._sessions = session_factory
        self._metrics = metrics
        self._max_features = max_features_exported
        self._clock = clock
        self._lock = threading.Lock()
        self._profile: ReferenceProfile | None = None
        self._reference_id: int | None = None

    @property
    def schema(self) -> dict[str, str]:
        """Column kinds: the configured features, plus the prediction when it has a kind."""
        return model_schema(self.model)

    def options(self) -> DriftOptions:
        """Detector options from the model's drift settings."""
        return drift_options(self.model)

    # -- reference ------------------------------------------------------------------------------
    def profile(self) -> ReferenceProfile:
        """The fitted reference profile: from memory, from the store, or fitted once and stored."""
        if self._profile is not None:
            return self._profile
        path = Path(self.model.reference.path)
        if not path.exists():
            raise ReferenceDataError(f"model {self.model.name}: reference {path} does not exist")
        fingerprint = file_digest(path)
        with self._sessions.begin() as session:
            stored = find_reference(session, self.model.name, fingerprint)
            if stored is not None:
                self._profile = ReferenceProfile.from_bytes(stored.profile)
                self._reference_id = stored.id
                return self._profile
        try:
            frame = read_table(path, self.model.reference.format)
        except ReferenceDataError as exc:
            raise ReferenceDataError(f"model {self.model.name}: reference {exc}") from exc
        profile = fit_model_profile(self.model, frame, str(path))
        with self._sessions.begin() as session:
            row = Reference(
                model=self.model.name,
                fingerprint=fingerprint,
                source=str(path),
                n_rows=len(frame),
                created_at=self._clock(),
                profile=profile.to_bytes(),
            )
            session.add(row)
            session.flush()
            self._reference_id = row.id
        logger.info("reference profile fitted",
                    extra={"model": self.model.name, "rows": len(frame)})
        self._profile = profile
        return profile

    # -- one run --------------------------------------------------------------------------------
    def run(self) -> RunSummary | None:
        """One run, or None when a run of this model is already in progress."""
        if not self._lock.acquire(blocking=False):
            logger.info("run skipped, previous run still going", extra={"model": self.model.name})
            return None
        try:
            return self._run()
        finally:
            self._lock.release()

    def _run(self) -> RunSummary:
        started = time.perf_counter()
        started_at = self._clock()
        run_id = uuid.uuid4().hex
        name = self.model.name
        try:
            profile = self.profile()
            with self._sessions() as session:
                window = self.model.window
                frame, first_at, last_at, version = load_window(
                    session, name, now=started_at,
                    last_events=window.last_events, last_seconds=window.last_seconds,
                )
            report = self._detect(profile, frame)
            summary = self._store(run_id, started_at, report, first_at, last_at, version)
        except Exception as exc:  # a failed run is recorded, never kills the scheduler
            logger.exception("monitoring run failed", extra={"model": name})
            summary = self._store_failure(run_id, started_at, exc)
        duration = time.perf_counter() - started
        m = self._metrics
        m.runs.labels(name, summary.status).inc()
        m.run_duration.labels(name).observe(duration)
        m.last_run_timestamp.labels(name).set(self._clock().timestamp())
        logger.info("monitoring run finished", extra={
            "model": name, "status": summary.status, "dataset_drifted": summary.dataset_drifted,
            "drifted": list(summary.drifted_features), "seconds": round(duration, 3),
        })
        return summary

    def _detect(self, profile: ReferenceProfile, frame: pd.DataFrame) -> DriftReport:
        """Features decide the dataset verdict; the prediction column is reported beside them."""
        return detect_model_drift(self.model, profile, frame, self.options())

    def _store(
        self,
        run_id: str,
        started_at: datetime,
        report: DriftReport,
        first_at: datetime | None,
        last_at: datetime | None,
        version: str | None,
    ) -> RunSummary:
        name = self.model.name
        status = report.status
        features = {k: v for k, v in report.features.items() if k != PREDICTION_COLUMN}
        drifted = tuple(k for k, v in features.items() if v.drifted)
        dataset_drifted = bool(report.dataset_drifted) and status == "ok"
        enqueued = False
        with self._sessions.begin() as session:
            run = Run(
                id=run_id, model=name, model_version=version, status=status,
                started_at=started_at, finished_at=self._clock(),
                window_start=first_at, window_end=last_at,
                n_reference=report.n_reference, n_current=report.n_current,
                share_drifted=finite_or_none(report.share_drifted), drift_share=report.drift_share,
                dataset_drifted=dataset_drifted, reference_id=self._reference_id,
                report=report.to_dict(),
            )
            session.add(run)
            session.flush()
            for feature, result in report.features.items():
                session.add(FeatureResult(
                    run_id=run_id, feature=feature, kind=result.kind, method=result.method,
                    status=result.status, statistic=finite_or_none(result.statistic),
                    p_value=finite_or_none(result.p_value), threshold=result.threshold,
                    drifted=bool(result.drifted), effect_size=finite_or_none(result.effect_size),
                    n_reference=result.n_reference, n_current=result.n_current,
                ))
            enqueued = self._maybe_enqueue(session, run, report, drifted)
        self._export(report, dataset_drifted)
        return RunSummary(
            run_id=run_id, model=name, status=status, n_current=report.n_current,
            share_drifted=finite_or_none(report.share_drifted), dataset_drifted=dataset_drifted,
            drifted_features=drifted, webhook_enqueued=enqueued,
        )

    def _maybe_enqueue(
        self, session: Session, run: Run, report: DriftReport, drifted: tuple[str, ...]
    ) -> bool:
        webhook = self.model.retraining_webhook
        if webhook is None or not run.dataset_drifted:
            return False
        now = self._clock()
        if in_cooldown(session, model=run.model, event_type=DRIFT_EVENT_TYPE,
                       cooldown_seconds=webhook.cooldown_seconds, now=now):
            logger.info("drift webhook held back by cooldown", extra={"model": run.model})
            return False
        payload: dict[str, Any] = {
            "type": DRIFT_EVENT_TYPE,
            "timestamp": iso_z(now),
            "data": {
                "model": run.model,
                "model_version": run.model_version,
                "run_id": run.id,
                "share_drifted": run.share_drifted,
                "drift_share": run.drift_share,
                "n_reference": run.n_reference,
                "n_current": run.n_current,
                "window_start": iso_z(run.window_start) if run.window_start else None,
                "window_end": iso_z(run.window_end) if run.window_end else None,
                "drifted_features": [
                    {
                        "name": feature,
                        "kind": report.features[feature].kind,
                        "method": report.features[feature].method,
                        "statistic": finite_or_none(report.features[feature].statistic),
                        "p_value": finite_or_none(report.features[feature].p_value),
                        "threshold": report.features[feature].threshold,
                        "effect_size": finite_or_none(report.features[feature].effect_size),
                    }
                    for feature in drifted
                ],
            },
        }
        enqueue(session, channel=retraining_channel_name(run.model), event_type=DRIFT_EVENT_TYPE,
                model=run.model, run_id=run.id, payload=payload, now=now)
        return True

    def _store_failure(self, run_id: str, started_at: datetime, exc: Exception) -> RunSummary:
        name = self.model.name
        message = f"{type(exc).__name__}: {exc}"[:2000]
        try:
            with self._sessions.begin() as session:
                session.add(Run(
                    id=run_id, model=name, model_version=None, status="failed",
                    started_at=started_at, finished_at=self._clock(), window_start=None,
                    window_end=None, n_reference=0, n_current=0, share_drifted=None,
                    drift_share=self.model.drift.drift_share, dataset_drifted=False,
                    reference_id=self._reference_id, error=message, report=None,
                ))
        except Exception:
            logger.exception("failed run could not be stored", extra={"model": name})
        return RunSummary(run_id, name, "failed", 0, None, False, (), False, message)

    def _export(self, report: DriftReport, dataset_drifted: bool) -> None:
        m = self._metrics
        name = self.model.name
        m.window_events.labels(name).set(report.n_current)
        if report.status != "ok":
            return
        exported = 0
        for feature, result in report.features.items():
            if result.status != "ok":
                continue
            statistic = finite_or_none(result.statistic)
            if feature == PREDICTION_COLUMN:
                m.prediction_drifted.labels(name).set(1 if result.drifted else 0)
                if statistic is not None:
                    m.prediction_statistic.labels(name, result.method).set(statistic)
                continue
            if exported >= self._max_features:
                continue  # the cap bounds series per model (docs/metrics.md)
            exported += 1
            if statistic is not None:
                m.feature_statistic.labels(name, feature, result.method).set(statistic)
            p_value = finite_or_none(result.p_value)
            if p_value is not None:
                m.feature_p_value.labels(name, feature, result.method).set(p_value)
            m.feature_drifted.labels(name, feature, result.method).set(1 if result.drifted else 0)
        m.features_not_exported.labels(name).set(
            max(sum(1 for k, r in report.features.items()
                    if k != PREDICTION_COLUMN and r.status == "ok") - self._max_features, 0))
        m.dataset_drifted.labels(name).set(1 if dataset_drifted else 0)
        share = finite_or_none(report.share_drifted)
        if share is not None:
            m.share_drifted.labels(name).set(share)
        features = [k for k in report.features if k != PREDICTION_COLUMN]
        m.drifted_features.labels(name).set(
            sum(1 for k in features if report.features[k].drifted)
        )
