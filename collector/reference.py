"""Reference datasets: reading tables, fitting a model's profile, the model's schema.

One reader for every table the project reads (references in the service, both files of
`driftline analyze`, the config check), so the same suffixes mean the same thing everywhere.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import pandas as pd

from collector.config import ModelSettings
from collector.errors import ReferenceDataError
from detectors import ReferenceProfile

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
