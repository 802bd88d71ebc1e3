"""MLflow ``pyfunc`` models that log every row they predict through the sidecar.

Two ways, for two owners of the serving process:

- `LoggedModel`, a `mlflow.pyfunc.PythonModel` saved around the model to serve (given as the
  artifact ``"model"``, any flavour). Whoever loads it (``mlflow models serve``,
  `mlflow.pyfunc.load_model`, a batch job) gets predictions that are logged, with no code of
  theirs. The logger is created when the model is loaded, from the settings saved with it,
  overridden by the ``model_config`` given at load time and by ``KAFKA_BOOTSTRAP_SERVERS`` in
  the environment; it is closed when the process exits (`close()` does it sooner).
- `wrap(model, logger)` around a model already loaded in your own server: its ``predict`` is the
  model's, and logs each row through your `PredictionLogger`.

Each input row (a DataFrame's row, a row of a 2-D array or a list, a record, a row of a dict
of columns) becomes the features of one event and the output's row its prediction: a scalar
for a one-column output, else the row's values as a list (class scores). A column named
`request_id_column` (``"request_id"`` by default) is the event's request id and not a
feature; the model still receives it. Unnamed columns are named by `feature_names`, else
``x0``, ``x1``, ... Logging never changes the output nor raises into ``predict``: input it
cannot read as rows, or an output of another length than the input, is skipped and counted.

This module imports MLflow (the serving process has it); `import driftline_sidecar` does not.

Examples:
    >>> class Doubler:  # any object with predict(); a loaded PyFuncModel in practice
    ...     def predict(self, data, params=None):
    ...         return [2 * row["x"] for row in data]
    >>> with PredictionLogger("127.0.0.1:1", model="m", max_unsent_seconds=0.1) as sidecar:
    ...     model = wrap(Doubler(), sidecar)
    ...     outputs = model.predict([{"x": 1, "request_id": "a"}, {"x": 2, "request_id": "b"}])
    >>> outputs, model.stats.rows
    ([2, 4], 2)
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from driftline_sidecar.logger import PredictionLogger

try:
    import pandas as pd
    from mlflow.pyfunc import PythonModel, PythonModelContext, load_model
except ImportError as exc:  # pragma: no cover - the module is for processes that have MLflow
    raise ImportError("driftline_sidecar.mlflow needs MLflow in this environment: "
                      "pip install mlflow-skinny (or mlflow)") from exc

logger = logging.getLogger(__name__)

__all__ = ["LoggedModel", "LoggingModel", "ModelLogStats", "rows_of", "wrap"]

REQUEST_ID_COLUMN: Final = "request_id"
ARTIFACT: Final = "model"


class _UnreadableError(ValueError):
    """Input or output that is not a table of rows."""


@dataclass(frozen=True, slots=True)
class ModelLogStats:
    """Counts since the wrapper was created.

    Attributes:
        calls: `predict` calls.
        rows: Rows handed to the logger.
        skipped: Calls not logged, by reason: ``unreadable_input``, ``unreadable_output``,
            ``row_count_mismatch``.
    """

    calls: int
    rows: int
    skipped: Mapping[str, int]


def _is_frame(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "itertuples")


def rows_of(data: Any, feature_names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The rows of a model input as feature dicts (DataFrame, array, records, dict of columns).

    pandas and NumPy are recognised by their methods, not imported.

    Raises:
        ValueError: When `data` is not a table.

    Examples:
        >>> rows_of([[1, 2], [3, 4]], ["a", "b"])
        [{'a': 1, 'b': 2}, {'a': 3, 'b': 4}]
        >>> rows_of({"a": [1, 2], "b": ["u", "v"]})
        [{'a': 1, 'b': 'u'}, {'a': 2, 'b': 'v'}]
    """
    if _is_frame(data):
        names = [str(name) for name in data.columns]
        return [dict(zip(names, values, strict=True))
                for values in data.itertuples(index=False, name=None)]
    if isinstance(data, Mapping):
        columns = {str(k): v.tolist() if hasattr(v, "tolist") else v for k, v in data.items()}
        lengths = {len(v) for v in columns.values() if isinstance(v, list)}
        if len(lengths) > 1:
            raise _UnreadableError("the columns differ in length")
        if not lengths:  # one record of scalars
            return [columns]
        count = lengths.pop()
        return [{k: v[i] if isinstance(v, list) else v for k, v in columns.items()}
                for i in range(count)]
    if hasattr(data, "tolist"):  # a NumPy array: 2-D rows, or a 1-D column of one feature
        data = data.tolist()
        if data and not isinstance(data[0], list):
            data = [[value] for value in data]
    if not isinstance(data, list | tuple):
        raise _UnreadableError(f"cannot read rows from a {type(data).__name__}")
    rows: list[dict[str, Any]] = []
    for item in data:
        if isinstance(item, Mapping):
            rows.append({str(k): v for k, v in item.items()})
        elif isinstance(item, list | tuple):
            given = feature_names is not None and len(feature_names) == len(item)
            rows.append(dict(zip(feature_names if given and feature_names is not None
                                 else [f"x{j}" for j in range(len(item))], item, strict=True)))
        else:
            raise _UnreadableError("a row is neither a record nor a list of values")
    return rows


def _predictions(output: Any, n_rows: int) -> list[Any]:
    """One prediction per row from a model output (DataFrame, Series, array, list, dict)."""
    if _is_frame(output):
        values = [list(row) for row in output.itertuples(index=False, name=None)]
        predictions: list[Any] = [row[0] if len(row) == 1 else row for row in values]
    elif isinstance(output, Mapping):
        predictions = [list(row.values()) for row in rows_of(output)]
    else:
        if hasattr(output, "tolist"):  # a Series or an array
            output = output.tolist()
        if not isinstance(output, list | tuple):
            predictions = [output]
        elif n_rows == 1 and len(output) > 1 and not isinstance(output[0], list | tuple):
            predictions = [list(output)]  # one row's class scores, unwrapped
        else:
            predictions = [p[0] if isinstance(p, list | tuple) and len(p) == 1 else p
                           for p in output]
    return [list(p) if isinstance(p, tuple) else p for p in predictions]


class _RowLogger:
    """Turns one predict call into `PredictionLogger.log()` calls, counted; never raises."""

    def __init__(self, logger: PredictionLogger, *, model: str | None, model_version: str | None,
                 feature_names: Sequence[str] | None, request_id_column: str | None) -> None:
        self.logger = logger
        self.model = model
        self.model_version = model_version
        self.feature_names = None if feature_names is None else list(feature_names)
        self.request_id_column = request_id_column
        self._lock = threading.Lock()
        self._calls = 0
        self._rows = 0
        self._skipped = {"unreadable_input": 0, "unreadable_output": 0, "row_count_mismatch": 0}

    def log(self, data: Any, output: Any, latency_ms: float | None = None) -> None:
        with self._lock:
            self._calls += 1
        try:
            rows = rows_of(data, self.feature_names)
        except Exception:
            self._skip("unreadable_input")
            return
        try:
            predictions = _predictions(output, len(rows))
        except Exception:
            self._skip("unreadable_output")
            return
        if len(predictions) != len(rows):
            self._skip("row_count_mismatch")
            return
        for row, prediction in zip(rows, predictions, strict=True):
            request_id = None
            if self.request_id_column is not None and self.request_id_column in row:
                request_id = row.pop(self.request_id_column)
                request_id = None if request_id is None else str(request_id)
            self.logger.log(features=row, prediction=prediction, request_id=request_id,
                            latency_ms=latency_ms, model=self.model,
                            model_version=self.model_version)
        with self._lock:
            self._rows += len(rows)

    def _skip(self, reason: str) -> None:
        with self._lock:
            self._skipped[reason] += 1

    @property
    def stats(self) -> ModelLogStats:
        with self._lock:
            return ModelLogStats(self._calls, self._rows, dict(self._skipped))


class LoggingModel:
    """A loaded model whose `predict` also logs each row; see `wrap`."""

    def __init__(self, model: Any, rows: _RowLogger) -> None:
        self.model = model
        self._rows = rows

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """The wrapped model's prediction, unchanged; each row is logged."""
        started = time.perf_counter()
        output = self.model.predict(data, params=params) if params else self.model.predict(data)
        self._rows.log(data, output, (time.perf_counter() - started) * 1000)
        return output

    @property
    def stats(self) -> ModelLogStats:
        """Calls, rows logged, calls skipped by reason."""
        return self._rows.stats

    def __getattr__(self, name: str) -> Any:
        # metadata, unwrap_python_model(), ...: the wrapped model's own.
        if name in {"model", "_rows"}:  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.model, name)


def wrap(model: Any, logger: PredictionLogger, *, model_name: str | None = None,
         model_version: str | None = None, feature_names: Sequence[str] | None = None,
         request_id_column: str | None = REQUEST_ID_COLUMN) -> LoggingModel:
    """`model` (a loaded `PyFuncModel`, or anything with ``predict``) logging each row.

    Args:
        model: The model to wrap.
        logger: The sidecar logger; the caller creates and closes it.
        model_name: The events' model name; the logger's default when None.
        model_version: The events' model version; the logger's default when None.
        feature_names: Names for unnamed input columns, in order.
        request_id_column: The input column holding each row's request id (not logged as a
            feature); None to read none.

    Returns:
        The wrapper; ``wrapper.model`` is `model`.
    """
    return LoggingModel(model, _RowLogger(logger, model=model_name, model_version=model_version,
                                          feature_names=feature_names,
                                          request_id_column=request_id_column))


class LoggedModel(PythonModel):  # type: ignore[misc]  # MLflow ships no type information
    """A pyfunc model serving the artifact ``"model"`` and logging every row it predicts.

    Save it with ``artifacts={"model": <the model's URI or path>}``. Its settings are saved
    with it; at load time, ``model_config={"bootstrap_servers": ..., ...}`` overrides them and
    ``KAFKA_BOOTSTRAP_SERVERS`` in the environment overrides the bootstrap servers.

    Args:
        model: The model name on the events.
        model_version: The model version on the events.
        bootstrap_servers: Kafka's bootstrap servers, "host:port[,host:port]".
        predictions_topic: The topic for predictions.
        feature_names: Names for unnamed input columns, in order.
        request_id_column: The input column holding each row's request id; None for none.
        max_unsent_seconds: Passed to `PredictionLogger`.
    """

    def __init__(self, *, model: str, model_version: str | None = None,
                 bootstrap_servers: str = "127.0.0.1:9092",
                 predictions_topic: str = "driftline.predictions",
                 feature_names: Sequence[str] | None = None,
                 request_id_column: str | None = REQUEST_ID_COLUMN,
                 max_unsent_seconds: float = 30.0) -> None:
        if not model:
            raise ValueError("model must name the monitored model, got an empty name")
        self.settings: dict[str, Any] = {
            "model": model, "model_version": model_version,
            "bootstrap_servers": bootstrap_servers, "predictions_topic": predictions_topic,
            "feature_names": None if feature_names is None else list(feature_names),
            "request_id_column": request_id_column, "max_unsent_seconds": max_unsent_seconds}
        self._inner: Any = None
        self._rows: _RowLogger | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Only the settings are saved: the logger and the inner model belong to a process.
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings = state["settings"]
        self._inner = None
        self._rows = None

    def load_context(self, context: PythonModelContext) -> None:
        """Load the inner model and start the logger (MLflow calls this once per load)."""
        settings = dict(self.settings)
        config = getattr(context, "model_config", None) or {}
        settings.update({k: v for k, v in config.items() if k in settings})
        settings["bootstrap_servers"] = os.environ.get("KAFKA_BOOTSTRAP_SERVERS",
                                                       settings["bootstrap_servers"])
        self._inner = load_model(context.artifacts[ARTIFACT])
        sidecar = PredictionLogger(settings["bootstrap_servers"], model=settings["model"],
                                   model_version=settings["model_version"],
                                   predictions_topic=settings["predictions_topic"],
                                   max_unsent_seconds=settings["max_unsent_seconds"])
        atexit.register(sidecar.close, 5.0)  # flush what is buffered when the server exits
        self._rows = _RowLogger(sidecar, model=None, model_version=None,
                                feature_names=settings["feature_names"],
                                request_id_column=settings["request_id_column"])

    # MLflow reads the hint of `model_input`: a DataFrame asks it for no schema inference and
    # no conversion (any other hint but list[...] draws a warning at every load), so whatever
    # the caller passes reaches the inner model as it came.
    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict[str, Any] | None = None) -> Any:
        """The inner model's prediction, unchanged; each row is logged."""
        if self._inner is None or self._rows is None:
            raise RuntimeError("LoggedModel.predict before load_context: load the saved model "
                               "with mlflow.pyfunc.load_model")
        started = time.perf_counter()
        output = (self._inner.predict(model_input, params=params) if params
                  else self._inner.predict(model_input))
        self._rows.log(model_input, output, (time.perf_counter() - started) * 1000)
        return output

    @property
    def logger(self) -> PredictionLogger | None:
        """The sidecar logger once loaded (for its `stats`, `flush()`, `close()`)."""
        return None if self._rows is None else self._rows.logger

    @property
    def stats(self) -> ModelLogStats | None:
        """Calls, rows logged, calls skipped by reason; None before loading."""
        return None if self._rows is None else self._rows.stats

    def close(self, timeout_seconds: float = 10.0) -> None:
        """Flush and close the logger now rather than at exit."""
        if self._rows is not None:
            self._rows.logger.close(timeout_seconds)
