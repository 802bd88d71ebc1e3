"""Writing a run's result, and the per-bucket performance history, to the store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.store.models import FeatureResult, PerformanceBucket, Run
from detectors import PerformanceReport
from detectors.report import DriftReport, finite_or_none


def add_run(session: Session, *, run_id: str, model: str, version: str | None,
            started_at: datetime, finished_at: datetime, window_start: datetime | None,
            window_end: datetime | None, drift: DriftReport, dataset_drifted: bool,
            reference_id: int | None, result: dict[str, Any], n_labelled: int,
            label_coverage: float | None) -> Run:
    """Add a finished run and its per-feature drift rows (flushed, not committed)."""
    run = Run(
        id=run_id, model=model, model_version=version, status=drift.status,
        started_at=started_at, finished_at=finished_at,
        window_start=window_start, window_end=window_end,
        n_reference=drift.n_reference, n_current=drift.n_current,
        share_drifted=finite_or_none(drift.share_drifted), drift_share=drift.drift_share,
        dataset_drifted=dataset_drifted, reference_id=reference_id,
        report=drift.to_dict(), result=result, n_labelled=n_labelled,
        label_coverage=finite_or_none(label_coverage),
    )
    session.add(run)
    session.flush()
    for feature, found in drift.features.items():
        session.add(FeatureResult(
            run_id=run_id, feature=feature, kind=found.kind, method=found.method,
            status=found.status, statistic=finite_or_none(found.statistic),
            p_value=finite_or_none(found.p_value), threshold=found.threshold,
            drifted=bool(found.drifted), effect_size=finite_or_none(found.effect_size),
            n_reference=found.n_reference, n_current=found.n_current,
        ))
    return run


def bucket_starts(times: Iterable[datetime], width: str) -> list[datetime]:
    """The distinct bucket starts (UTC, floored to `width`) of some prediction times."""
    index = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True))
    if index.empty:
        return []
    floored = index.floor(pd.Timedelta(width)).unique().sort_values()
    return [t.to_pydatetime() for t in floored]


def upsert_bucket(session: Session, *, model: str, bucket: str, start: datetime,
                  n_predictions: int, report: PerformanceReport | None,
                  updated_at: datetime) -> None:
    """Store (or replace) the performance of one bucket; unchanged numbers are left alone."""
    row = session.execute(select(PerformanceBucket).where(
        PerformanceBucket.model == model, PerformanceBucket.bucket == bucket,
        PerformanceBucket.bucket_start == start)).scalar_one_or_none()
    values = {
        "n_predictions": n_predictions,
        "n_labelled": report.n_labelled if report is not None else 0,
        "label_coverage": (finite_or_none(report.label_coverage) if report is not None
                           else (0.0 if n_predictions else None)),
        "status": report.status if report is not None else "no_labels",
        "metrics": report.to_dict() if report is not None else None,
    }
    if row is None:
        row = PerformanceBucket(model=model, bucket=bucket, bucket_start=start)
        session.add(row)
    elif all(getattr(row, key) == value for key, value in values.items()):
        return  # recomputed to the same numbers: `updated_at` says when they last changed
    for key, value in values.items():
        setattr(row, key, value)
    row.updated_at = updated_at


def last_bucket_update(session: Session, model: str, bucket: str) -> datetime | None:
    """When the model's buckets of this width were last recomputed."""
    return session.execute(select(func.max(PerformanceBucket.updated_at)).where(
        PerformanceBucket.model == model, PerformanceBucket.bucket == bucket)).scalar()


def buckets(session: Session, model: str, bucket: str, *, since: datetime | None = None,
            limit: int = 200) -> list[PerformanceBucket]:
    """Stored buckets, newest first."""
    query = select(PerformanceBucket).where(PerformanceBucket.model == model,
                                            PerformanceBucket.bucket == bucket)
    if since is not None:
        query = query.where(PerformanceBucket.bucket_start >= since)
    query = query.order_by(PerformanceBucket.bucket_start.desc()).limit(limit)
    return list(session.execute(query).scalars())
