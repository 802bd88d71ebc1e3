"""Reading a model's window, with its labels joined: the one interface runs read through.

A run asks for the last N events or the last T seconds of a model and gets a `Window`:
features as columns, the raw predictions, the labels joined on (model, request_id) whatever
their order of arrival, times, versions and tags. How events are stored (JSON rows today,
columnar batches for production volume, issue 12) is this module's business alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from collector.store.models import Label, Prediction


@dataclass(frozen=True)
class Window:
    """The events of one window, oldest first.

    Attributes:
        features: One column per feature seen in the window (a feature no event carried
            is absent); rows are events.
        predictions: The `prediction` field of each event as sent (a number, a class, a
            list of class scores, or None).
        labels: The joined label of each event, None when none arrived (object array).
        prediction_at, label_at: Event times (label_at NaT where unlabelled).
        versions: `model_version` of each event (None where not given).
        tags: `tags` of each event.
        absent: Per feature with missing values, True where the event lacked the key
            (null values are False): data quality tells absent from null.
        unknown_fields: Feature keys events carried that the caller did not expect, with
            the number of events that carried each.
    """

    features: pd.DataFrame
    predictions: list[Any]
    labels: np.ndarray[Any, np.dtype[np.object_]]
    prediction_at: pd.DatetimeIndex
    label_at: pd.DatetimeIndex
    versions: list[str | None]
    tags: list[Mapping[str, str]]
    absent: Mapping[str, np.ndarray[Any, np.dtype[np.bool_]]] = field(default_factory=dict)
    unknown_fields: Mapping[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of events."""
        return len(self.predictions)

    @property
    def labelled(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """True where a label was joined."""
        return np.fromiter((v is not None for v in self.labels), bool, self.n)

    @property
    def first_at(self) -> datetime | None:
        """Time of the oldest event."""
        return self.prediction_at.min().to_pydatetime() if self.n else None

    @property
    def last_at(self) -> datetime | None:
        """Time of the newest event."""
        return self.prediction_at.max().to_pydatetime() if self.n else None

    @property
    def main_version(self) -> str | None:
        """The most frequent model version (ties: the latest to appear)."""
        counts = Counter(v for v in self.versions if v is not None)
        if not counts:
            return None
        best = max(counts.values())
        return next(v for v in reversed(self.versions) if v is not None and counts[v] == best)

    def frame(self) -> pd.DataFrame:
        """Features plus a `prediction` column of scalar predictions (lists become None)."""
        frame = self.features.copy()
        frame["prediction"] = [p if not isinstance(p, list | dict) else None
                               for p in self.predictions]
        return frame


def _empty() -> Window:
    empty_times = pd.DatetimeIndex([], tz="UTC")
    return Window(pd.DataFrame(), [], np.empty(0, dtype=object), empty_times, empty_times, [],
                  [])


def _with_labels(query: Select[Any]) -> Select[Any]:
    return query.outerjoin(
        Label, (Label.model == Prediction.model) & (Label.request_id == Prediction.request_id))


_COLUMNS = (Prediction.id, Prediction.features, Prediction.prediction, Prediction.event_at,
            Prediction.model_version, Prediction.tags, Label.id.label("label_id"),
            Label.label, Label.event_at.label("label_at"))


def read_window(
    session: Session,
    model: str,
    *,
    now: datetime,
    last_events: int | None = None,
    last_seconds: float | None = None,
    expected: Sequence[str] | None = None,
) -> Window:
    """The current window of `model`, with its labels joined.

    The last `last_events` events, or those of the last `last_seconds` before `now`. A
    prediction with several labels (a correction sent later) takes the last one stored.
    """
    if last_seconds is not None:
        ids = select(Prediction.id).where(
            Prediction.model == model,
            Prediction.event_at >= now - timedelta(seconds=last_seconds))
    else:
        ids = (select(Prediction.id).where(Prediction.model == model)
               .order_by(Prediction.id.desc()).limit(last_events or 1000))
    query = _with_labels(select(*_COLUMNS)).where(Prediction.id.in_(ids.scalar_subquery()))
    return _build(session.execute(query.order_by(Prediction.id, Label.id)).all(), expected)


def read_between(session: Session, model: str, start: datetime, end: datetime,
                 expected: Sequence[str] | None = None) -> Window:
    """The events of `model` with prediction time in [start, end), with their labels."""
    query = _with_labels(select(*_COLUMNS)).where(
        Prediction.model == model, Prediction.event_at >= start, Prediction.event_at < end)
    return _build(session.execute(query.order_by(Prediction.id, Label.id)).all(), expected)


def labelled_prediction_times(session: Session, model: str,
                              received_since: datetime | None) -> list[datetime]:
    """Prediction times of the labelled predictions stored or labelled since a time.

    A pair counts when its label or its prediction was stored at or after
    `received_since` (every pair when None). These are the performance buckets that new
    data changed: a late label, or a prediction whose label had come first.
    """
    query = (select(Prediction.event_at)
             .join(Label, (Label.model == Prediction.model)
                   & (Label.request_id == Prediction.request_id))
             .where(Prediction.model == model))
    if received_since is not None:
        query = query.where((Label.received_at >= received_since)
                            | (Prediction.received_at >= received_since))
    return list(session.execute(query).scalars())


def _build(rows: Sequence[Any], expected: Sequence[str] | None) -> Window:
    if not rows:
        return _empty()
    # One row per prediction: with several labels the last stored wins (rows are ordered
    # by prediction id, then label id).
    last: dict[int, Any] = {}
    for row in rows:
        last[row.id] = row
    kept = list(last.values())
    feature_dicts = [row.features or {} for row in kept]
    features = pd.DataFrame.from_records(feature_dicts)
    features.index = pd.RangeIndex(len(kept))
    absent: dict[str, np.ndarray[Any, np.dtype[np.bool_]]] = {}
    for column in features.columns:
        if features[column].isna().any():
            absent[str(column)] = np.fromiter((column not in d for d in feature_dicts), bool,
                                              len(kept))
    unknown: dict[str, int] = {}
    if expected is not None:
        allowed = set(expected)
        for column in features.columns:
            if column not in allowed:
                present = absent.get(str(column))
                unknown[str(column)] = int(len(kept) - (present.sum() if present is not None
                                                        else 0))
    labels = np.empty(len(kept), dtype=object)
    labels[:] = [row.label if row.label_id is not None else None for row in kept]
    return Window(
        features=features,
        predictions=[row.prediction for row in kept],
        labels=labels,
        prediction_at=pd.DatetimeIndex(pd.to_datetime([row.event_at for row in kept], utc=True)),
        label_at=pd.DatetimeIndex(pd.to_datetime(
            [row.label_at if row.label_id is not None else None for row in kept], utc=True)),
        versions=[row.model_version for row in kept],
        tags=[row.tags or {} for row in kept],
        absent=absent,
        unknown_fields=unknown,
    )
