"""One monitoring run of one model: read the window, compute the `RunResult`, hand it on.

The computation is `collector.run.compute_run` (pure); here are the consumers of its result:
the store (the run, its features, the per-bucket performance history), the Prometheus
gauges (`collector.export`) and the retraining webhook's outbox entry.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from alerts.clock import iso_z, utcnow
from alerts.outbox import enqueue, in_cooldown
from alerts.rules import RunSnapshot
from alerts.state import Outcome, apply_run
from collector.config import ModelSettings
from collector.export import export_run
from collector.metrics import Metrics
from collector.reference import ModelReference, ReferenceLoader
from collector.run import RunInput, RunResult, compute_run, prepare_labels
from collector.store.models import Run
from collector.store.results import (
    add_run,
    bucket_starts,
    buckets,
    last_bucket_update,
    upsert_bucket,
)
from collector.store.window import Window, labelled_prediction_times, read_between, read_window
from detectors import DriftOptions, ReferenceProfile
from detectors.report import finite_or_none

logger = logging.getLogger(__name__)

DRIFT_EVENT_TYPE = "model.drift_detected"
_BUCKET_LOOKBACK = timedelta(minutes=10)


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
    result: RunResult | None = None


def run_input(model: ModelSettings, window: Window) -> RunInput:
    """The run's view of a stored window: configured features, segment keys, labels."""
    features = window.features[[c for c in model.features if c in window.features.columns]]
    segment_values: dict[str, list[Any]] = {}
    for key in model.segments.by:
        if key.startswith("tags."):
            tag = key.removeprefix("tags.")
            segment_values[key] = [t.get(tag) for t in window.tags]
        elif key in window.features.columns:
            segment_values[key] = window.features[key].tolist()
    return RunInput(
        features=features, predictions=window.predictions, labels=list(window.labels),
        prediction_at=window.prediction_at, label_at=window.label_at,
        versions=window.versions, segment_values=segment_values,
        absent={k: v for k, v in window.absent.items() if k in model.features},
        unknown_fields=window.unknown_fields,
    )


class ModelMonitor:
    """Runs the checks of one model; never two at once (a lock guards `run`)."""

    def __init__(
        self,
        model: ModelSettings,
        session_factory: sessionmaker[Session],
        metrics: Metrics,
        *,
        max_features_exported: int = 250,
        clock: Callable[[], datetime] = utcnow,
        channel_types: Mapping[str, str] | None = None,
        base_url: str | None = None,
    ) -> None:
        self.model = model
        self.rules = model.alert_rules()
        self._channel_types = dict(channel_types or {})
        self._base_url = base_url.rstrip("/") if base_url else None
        self._sessions = session_factory
        self._metrics = metrics
        self._max_features = max_features_exported
        self._clock = clock
        self._lock = threading.Lock()
        self._references = ReferenceLoader(model, session_factory, clock=clock)
        self._buckets_since: datetime | None = None

    def options(self) -> DriftOptions:
        """Detector options from the model's drift settings."""
        from collector.run import drift_options

        return drift_options(self.model)

    def reference(self) -> ModelReference:
        """The fitted reference (fitted once per reference content, then from memory)."""
        return self._references.get()

    def profile(self) -> ReferenceProfile:
        """The fitted drift profile of the reference."""
        return self.reference().profile

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
            reference = self.reference()
            with self._sessions() as session:
                window = read_window(
                    session, name, now=started_at, last_events=self.model.window.last_events,
                    last_seconds=self.model.window.last_seconds,
                    expected=list(self.model.features))
            data = dataclasses.replace(
                run_input(self.model, window), at=started_at,
                label_ages_seconds=tuple(r.duration_seconds or 0.0 for r in self.rules
                                         if r.kind == "labels_missing"))
            result = compute_run(self.model, reference, data)
            summary = self._store(run_id, started_at, result, window)
            self._update_buckets(reference, started_at)
            export_run(self._metrics, result, max_features=self._max_features)
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

    def _store(self, run_id: str, started_at: datetime, result: RunResult,
               window: Window) -> RunSummary:
        name = self.model.name
        with self._sessions.begin() as session:
            run = add_run(
                session, run_id=run_id, model=name, version=window.main_version,
                started_at=started_at, finished_at=self._clock(), window_start=window.first_at,
                window_end=window.last_at, drift=result.drift,
                dataset_drifted=result.dataset_drifted,
                reference_id=self._references.reference_id, result=result.to_dict(),
                n_labelled=result.window.n_labelled,
                label_coverage=result.window.label_coverage)
            outcome = apply_run(
                session, self.rules,
                RunSnapshot(model=name, run_id=run_id, at=started_at, status=result.status,
                            result=run.result),
                channel_types=self._channel_types, run_url=self._run_url())
            enqueued = self._maybe_enqueue(session, run, result, retrain=outcome.retrain)
        self._export_alerts(outcome)
        return RunSummary(
            run_id=run_id, model=name, status=result.status, n_current=result.drift.n_current,
            share_drifted=finite_or_none(result.drift.share_drifted),
            dataset_drifted=result.dataset_drifted, drifted_features=result.drifted_features,
            webhook_enqueued=enqueued, result=result,
        )

    def _update_buckets(self, reference: ModelReference, started_at: datetime) -> None:
        """Recompute each bucket whose predictions got labels since the last update.

        Late labels thus make "the accuracy of Tuesday's predictions" right once they land.
        """
        width = self.model.performance.bucket
        name = self.model.name
        with self._sessions() as session:
            since = self._buckets_since or last_bucket_update(session, name, width)
            if since is not None:
                # `received_at` is stamped by the ingest process before its transaction
                # commits, on its own clock: look back a margin, so a batch committed
                # during the last update (or a clock behind ours) is never missed.
                since -= _BUCKET_LOOKBACK
            times = labelled_prediction_times(session, name, since)
        step = pd.Timedelta(width).to_pytimedelta()
        for start in bucket_starts(times, width):
            with self._sessions() as session:
                events = read_between(session, name, start, start + step)
            prepared = prepare_labels(self.model, reference, events.predictions,
                                      list(events.labels), events.n)
            with self._sessions.begin() as session:
                upsert_bucket(session, model=name, bucket=width, start=start,
                              n_predictions=events.n, report=prepared.performance(),
                              updated_at=started_at)
        self._buckets_since = started_at

    def performance_history(self, bucket: str | None, limit: int) -> dict[str, Any]:
        """Per-bucket realized performance, newest first (the HTTP API's answer).

        Raises:
            ValueError: `bucket` is not a positive duration.
        """
        configured = self.model.performance.bucket
        width = configured if bucket is None else bucket
        try:
            step = pd.Timedelta(width)
        except ValueError as exc:
            raise ValueError(f"bucket must be a duration such as 1h or 1D, got {width!r}") from exc
        if step <= pd.Timedelta(0):
            raise ValueError(f"bucket must be positive, got {width!r}")
        rows: list[dict[str, Any]] = []
        if width == configured:
            with self._sessions() as session:
                for stored in buckets(session, self.model.name, width, limit=limit):
                    rows.append({
                        "start": iso_z(stored.bucket_start),
                        "end": iso_z(stored.bucket_start + step.to_pytimedelta()),
                        "n_predictions": stored.n_predictions, "n_labelled": stored.n_labelled,
                        "label_coverage": stored.label_coverage, "status": stored.status,
                        "metrics": (stored.metrics or {}).get("metrics"),
                        "updated_at": iso_z(stored.updated_at)})
        else:
            rows = self._performance_on_demand(step, limit)
        return {"model": self.model.name, "bucket": width, "buckets": rows}

    def _performance_on_demand(self, step: pd.Timedelta, limit: int) -> list[dict[str, Any]]:
        reference = self.reference()
        now = self._clock()
        end = pd.Timestamp(now).floor(step) + step
        start = end - step * limit
        with self._sessions() as session:
            events = read_between(session, self.model.name, start.to_pydatetime(),
                                  end.to_pydatetime())
        if not events.n:
            return []
        floors = events.prediction_at.floor(step)
        rows = []
        for bucket_start in sorted(set(floors), reverse=True):
            mask = (floors == bucket_start)
            picked = [p for p, keep in zip(events.predictions, mask, strict=True) if keep]
            labels = list(events.labels[mask])
            report = prepare_labels(self.model, reference, picked, labels,
                                    len(picked)).performance()
            rows.append({
                "start": iso_z(bucket_start.to_pydatetime()),
                "end": iso_z((bucket_start + step).to_pydatetime()),
                "n_predictions": len(picked),
                "n_labelled": report.n_labelled if report is not None else 0,
                "label_coverage": finite_or_none(report.label_coverage) if report else 0.0,
                "status": report.status if report is not None else "no_labels",
                "metrics": report.to_dict()["metrics"] if report is not None else None,
                "updated_at": iso_z(now)})
        return rows

    def set_base_url(self, base_url: str) -> None:
        """Where people reach this service (for the run links in notifications)."""
        self._base_url = base_url.rstrip("/")

    def _run_url(self) -> str | None:
        return f"{self._base_url}/v1/models/{self.model.name}/runs" if self._base_url else None

    def _export_alerts(self, outcome: Outcome) -> None:
        counts: dict[tuple[str, str], int] = {
            (rule.name, state): 0 for rule in self.rules
            for state in ("inactive", "pending", "firing")}
        for rule, state in outcome.states.values():
            counts[(rule, state)] = counts.get((rule, state), 0) + 1
        for (rule, state), count in counts.items():
            self._metrics.alert_instances.labels(self.model.name, rule, state).set(count)

    def _maybe_enqueue(self, session: Session, run: Run, result: RunResult, *,
                       retrain: bool) -> bool:
        """Enqueue the retraining webhook when this run calls for it.

        On a rule with `retrain` that fired in this run, or (when no rule has `retrain`) on
        a dataset-drift verdict, as the `retraining_webhook` key always meant; the cooldown
        holds back repeats either way.
        """
        webhook = self.model.retraining_webhook
        if webhook is None:
            return False
        triggered = retrain if any(r.retrain for r in self.rules) else run.dataset_drifted
        if not triggered:
            return False
        now = self._clock()
        if in_cooldown(session, model=run.model, event_type=DRIFT_EVENT_TYPE,
                       cooldown_seconds=webhook.cooldown_seconds, now=now):
            logger.info("drift webhook held back by cooldown", extra={"model": run.model})
            return False
        features = result.drift.features
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
                        "kind": features[feature].kind,
                        "status": features[feature].status,
                        "method": features[feature].method,
                        "statistic": finite_or_none(features[feature].statistic),
                        "p_value": finite_or_none(features[feature].p_value),
                        "threshold": features[feature].threshold,
                        "effect_size": finite_or_none(features[feature].effect_size),
                    }
                    for feature in result.drifted_features
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
                    reference_id=self._references.reference_id, error=message, report=None,
                ))
                session.flush()
                outcome = apply_run(
                    session, self.rules,
                    RunSnapshot(model=name, run_id=run_id, at=started_at, status="failed",
                                result=None, error=message),
                    channel_types=self._channel_types, run_url=self._run_url())
            self._export_alerts(outcome)
        except Exception:
            logger.exception("failed run could not be stored", extra={"model": name})
        return RunSummary(run_id, name, "failed", 0, None, False, (), False, message)
