"""Reference datasets: reading tables, fitting a model's profile, the model's schema.

One reader for every table the project reads (references in the service, both files of
`driftline analyze`, the config check), so the same suffixes mean the same thing everywhere.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from collector.config import ModelSettings
from collector.errors import ReferenceDataError
from collector.store.models import Reference
from collector.store.queries import find_reference
from detectors import (
    CBPE,
    DetectorError,
    PerformanceOptions,
    PerformanceReport,
    ReferenceProfile,
    compute_performance,
)

logger = logging.getLogger(__name__)

TableFormat = Literal["auto", "csv", "parquet"]
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
CSV_SUFFIXES = frozenset({".csv", ".txt", ".gz"})
PREDICTION_COLUMN = "prediction"


def table_format(path: Path, file_format: TableFormat = "auto") -> Literal["csv", "parquet"]:
    """The format of a table file: given, or from its suffix.

    Raises:
        ReferenceDataError: When the suffix is neither CSV nor Parquet.

    Examples:
        >>> table_format(Path("ref.PARQUET")), table_format(Path("ref.csv.gz"))
        ('parquet', 'csv')
    """
    if file_format != "auto":
        return file_format
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise ReferenceDataError(
        f"{path}: cannot tell the format from the suffix {suffix or '(none)'}; use a .csv "
        "(.txt, .gz) or .parquet (.pq) file, or set the format"
    )


def read_table(path: Path, file_format: TableFormat = "auto", *, allow_empty: bool = False
               ) -> pd.DataFrame:
    """Read a CSV or Parquet table.

    Raises:
        ReferenceDataError: When the file is missing, unreadable, or has no rows (unless
            `allow_empty`); the message names the file.
    """
    kind = table_format(path, file_format)
    if not path.exists():
        raise ReferenceDataError(f"{path} does not exist")
    if path.is_dir():
        raise ReferenceDataError(f"{path} is a directory, not a {kind} file")
    try:
        # round_trip: pandas' default CSV float parser may miss the last bit of a value.
        frame = (pd.read_parquet(path) if kind == "parquet"
                 else pd.read_csv(path, float_precision="round_trip"))
    except pd.errors.EmptyDataError as exc:
        raise ReferenceDataError(f"{path} is empty (no header, no rows)") from exc
    except Exception as exc:  # pandas and pyarrow raise many types for unreadable files
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ReferenceDataError(f"{path} cannot be read as {kind} ({reason})") from exc
    if len(frame) == 0 and not allow_empty:
        raise ReferenceDataError(f"{path} has a header but no rows")
    return frame


def file_digest(path: Path) -> str:
    """SHA-256 of a file, so a profile is fitted once per reference content."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_schema(model: ModelSettings, columns: list[str] | None = None) -> dict[str, str]:
    """Column kinds of a model: its features, plus `prediction` when it has a kind.

    With `columns` (the reference's), the prediction is left out when the reference lacks
    it: the window's predictions then have nothing to be compared with.
    """
    schema: dict[str, str] = dict(model.features)
    if model.prediction is not None and (columns is None or PREDICTION_COLUMN in columns):
        schema[PREDICTION_COLUMN] = model.prediction
    return schema


def fit_model_profile(model: ModelSettings, frame: pd.DataFrame, source: str) -> ReferenceProfile:
    """Fit the reference profile of `model` from its reference table.

    Raises:
        ReferenceDataError: When the table lacks a configured feature or has no rows.
    """
    missing = sorted(set(model.features) - {str(c) for c in frame.columns})
    if missing:
        raise ReferenceDataError(f"model {model.name}: reference {source} lacks the features "
                                 f"{missing}")
    if len(frame) == 0:
        raise ReferenceDataError(f"model {model.name}: reference {source} has no rows")
    schema = model_schema(model, [str(c) for c in frame.columns])
    return ReferenceProfile.fit(frame[list(schema)], schema=schema)


def canonical_classes(values: Any) -> list[Any]:
    """Plain Python values (numpy scalars unwrapped; integral floats as ints), in order."""
    out: list[Any] = []
    for value in values:
        item = value.item() if isinstance(value, np.generic) else value
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        out.append(item)
    return out


def class_key(value: Any) -> str:
    """The text a class is matched by: 1, 1.0, "1" and np.int64(1) are one class."""
    item = value.item() if isinstance(value, np.generic) else value
    if isinstance(item, float) and item.is_integer():
        item = int(item)
    return str(item)


@dataclass(frozen=True)
class ModelReference:
    """What every run of a model needs from its reference dataset, fitted once.

    The drift profile; for classification the classes, the reference's own performance
    (`reference_performance` in a run) and CBPE fitted on its scores and labels. What
    cannot be fitted is None, with a note saying why (a reference without labels still
    serves drift and data quality).
    """

    profile: ReferenceProfile
    classes: tuple[Any, ...] | None = None
    performance: PerformanceReport | None = None
    cbpe: CBPE | None = None
    notes: tuple[str, ...] = ()

    @classmethod
    def fit(cls, model: ModelSettings, frame: pd.DataFrame, source: str) -> ModelReference:
        """Fit everything from the reference table (see `fit_model_profile` for errors)."""
        profile = fit_model_profile(model, frame, source)
        perf = model.performance
        notes: list[str] = []
        if perf.reference_target not in frame.columns:
            notes.append(f"reference {source} has no label column {perf.reference_target!r}: "
                         "no reference performance and no performance estimate")
            classes = tuple(canonical_classes(perf.classes)) if perf.classes else None
            return cls(profile, classes, None, None, tuple(notes))
        target = frame[perf.reference_target]
        keep = target.notna().to_numpy()
        labels = canonical_classes(target[keep].tolist())
        if model.task == "regression":
            predicted = frame.get(PREDICTION_COLUMN)
            performance = None
            if predicted is not None:
                performance = compute_performance(
                    labels, predicted[keep].to_numpy(dtype=float),
                    options=PerformanceOptions("regression"))
            return cls(profile, None, performance, None, tuple(notes))
        classes = tuple(canonical_classes(perf.classes)) if perf.classes else tuple(
            sorted(set(labels), key=_class_order))
        options = PerformanceOptions("classification", positive_label=perf.positive_label,
                                     threshold=perf.threshold,
                                     classes=classes if len(classes) >= 2 else None)
        scores = _reference_scores(model, frame, classes, notes)
        y_pred = None
        if scores is None and PREDICTION_COLUMN in frame.columns:
            y_pred = canonical_classes(frame[PREDICTION_COLUMN][keep].tolist())
        try:
            performance = compute_performance(
                labels, y_pred, None if scores is None else scores[keep], options=options)
        except DetectorError as exc:
            notes.append(f"reference performance not computed: {exc}")
            performance = None
        cbpe = None
        if scores is not None and perf.estimate:
            cbpe = _fit_cbpe(classes, labels, scores[keep], perf.positive_label,
                             perf.threshold, notes)
        return cls(profile, classes, performance, cbpe, tuple(notes))


def _reference_scores(model: ModelSettings, frame: pd.DataFrame, classes: tuple[Any, ...],
                      notes: list[str]) -> np.ndarray[Any, np.dtype[np.float64]] | None:
    perf = model.performance
    if perf.prediction_type == "class":
        # A 0/1 class column would pass for a score: read it as the class it is.
        notes.append("prediction_type is class: the reference's prediction is a class, "
                     "not a score: no performance estimate")
        return None
    if perf.reference_scores:
        by_key = {class_key(c): c for c in classes}
        missing = [c for c in perf.reference_scores.values() if c not in frame.columns]
        unknown = [k for k in perf.reference_scores if class_key(k) not in by_key]
        if missing or unknown:
            notes.append(f"reference_scores: columns {missing} absent or classes {unknown} "
                         "unknown: no performance estimate")
            return None
        columns = {class_key(k): v for k, v in perf.reference_scores.items()}
        if set(columns) != set(by_key):
            notes.append("reference_scores must name a column for every class: no estimate")
            return None
        matrix: np.ndarray[Any, np.dtype[np.float64]] = frame[
            [columns[class_key(c)] for c in classes]].to_numpy(dtype=float)
        return matrix
    column = perf.reference_score or (PREDICTION_COLUMN if PREDICTION_COLUMN in frame else None)
    if column is None or column not in frame.columns or len(classes) != 2:
        notes.append("reference has no score column (performance.reference_score, or "
                     "reference_scores for a multiclass model): no performance estimate")
        return None
    values: np.ndarray[Any, np.dtype[np.float64]] = pd.to_numeric(
        frame[column], errors="coerce").to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.min() < 0 or finite.max() > 1:
        notes.append(f"reference column {column!r} is not a score in [0, 1]: no estimate")
        return None
    return values


def _class_order(value: Any) -> tuple[int, float, str]:
    """Numbers first, in numeric order, then the rest by their text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _fit_cbpe(classes: tuple[Any, ...], labels: list[Any], scores: Any, positive: Any,
              threshold: float, notes: list[str]) -> CBPE | None:
    try:
        if scores.ndim == 1:
            positive_key = class_key(positive)
            y_true = np.array([1 if class_key(v) == positive_key else 0 for v in labels])
            return CBPE.fit(y_true, scores, (scores >= threshold).astype(int))
        y_pred = np.array([classes[i] for i in np.argmax(scores, axis=1)], dtype=object)
        return CBPE.fit(np.array(labels, dtype=object), scores, y_pred, classes=list(classes))
    except DetectorError as exc:
        notes.append(f"CBPE not fitted on the reference: {exc}")
        return None


class ReferenceLoader:
    """A model's `ModelReference`, fitted once per reference content and kept in memory.

    The drift profile is also stored (keyed by the file's SHA-256), so runs can name the
    reference they were compared with (`runs.reference_id`).
    """

    def __init__(self, model: ModelSettings, session_factory: sessionmaker[Session], *,
                 clock: Callable[[], datetime]) -> None:
        self.model = model
        self._sessions = session_factory
        self._clock = clock
        self._cached: tuple[str, ModelReference] | None = None
        self.reference_id: int | None = None

    def get(self) -> ModelReference:
        """The fitted reference of the file as it is now (refitted when its content changes).

        Raises:
            ReferenceDataError: The file is missing, unreadable, or lacks a feature.
        """
        path = Path(self.model.reference.path)
        if not path.exists():
            raise ReferenceDataError(f"model {self.model.name}: reference {path} does not exist")
        fingerprint = file_digest(path)
        if self._cached is not None and self._cached[0] == fingerprint:
            return self._cached[1]
        try:
            frame = read_table(path, self.model.reference.format)
        except ReferenceDataError as exc:
            raise ReferenceDataError(f"model {self.model.name}: reference {exc}") from exc
        fitted = ModelReference.fit(self.model, frame, str(path))
        self.reference_id = self._store_profile(fingerprint, path, len(frame), fitted)
        logger.info("reference fitted", extra={"model": self.model.name, "rows": len(frame),
                                               "notes": list(fitted.notes)})
        self._cached = (fingerprint, fitted)
        return fitted

    def _store_profile(self, fingerprint: str, path: Path, n_rows: int,
                       fitted: ModelReference) -> int:
        """The stored profile's id, storing it first if no process has (races tolerated)."""
        for _attempt in range(2):
            try:
                with self._sessions.begin() as session:
                    stored = find_reference(session, self.model.name, fingerprint)
                    if stored is None:
                        stored = Reference(model=self.model.name, fingerprint=fingerprint,
                                           source=str(path), n_rows=n_rows,
                                           created_at=self._clock(),
                                           profile=fitted.profile.to_bytes())
                        session.add(stored)
                        session.flush()
                    return stored.id
            except IntegrityError:
                # Another collector stored the same reference at the same moment: read theirs.
                continue
        raise ReferenceDataError(f"model {self.model.name}: the reference profile could not "
                                 "be stored")
