"""Labels, predictions and scores as arrays: missing labels dropped, classes resolved, encoded.

Classes are encoded once per window as indices into the class order; buckets and segments
take rows of the encoded arrays, so every group of a window shares one class order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from detectors.errors import PerformanceInputError
from detectors.performance.options import PerformanceOptions
from detectors.performance.result import json_label

Rows = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Columns:
    """The input columns as arrays of one length, and which rows carry a label."""

    y_true: npt.NDArray[Any]
    y_pred: npt.NDArray[Any] | None
    scores: npt.NDArray[np.float64] | None
    labelled: npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ClassArrays:
    """Labelled rows of a classification window, classes as indices into `classes`.

    `proba` is (n, k) in class order; a 1-D binary score s becomes the columns s and 1 - s.
    `positive` is the index of the positive class of a binary problem, else None.
    """

    classes: tuple[Any, ...]
    positive: int | None
    true: npt.NDArray[np.intp]
    predicted: npt.NDArray[np.intp]
    proba: npt.NDArray[np.float64] | None

    def take(self, rows: Rows) -> ClassArrays:
        """The same arrays restricted to `rows` (indices among the labelled rows)."""
        proba = None if self.proba is None else self.proba[rows]
        return ClassArrays(self.classes, self.positive, self.true[rows], self.predicted[rows],
                           proba)


@dataclass(frozen=True, slots=True)
class RegressionArrays:
    """Labelled rows of a regression window."""

    true: npt.NDArray[np.float64]
    predicted: npt.NDArray[np.float64]

    def take(self, rows: Rows) -> RegressionArrays:
        """The same arrays restricted to `rows` (indices among the labelled rows)."""
        return RegressionArrays(self.true[rows], self.predicted[rows])


def _column(values: Any, name: str) -> npt.NDArray[Any]:
    array = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(
        values, dtype=object)
    if array.ndim != 1:
        raise PerformanceInputError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _scores(values: Any) -> npt.NDArray[np.float64]:
    # A pandas Series of lists (one list of class scores per row) stacks into (n, k).
    if isinstance(values, pd.DataFrame):
        raw: Any = values.to_numpy()
    elif isinstance(values, pd.Series):
        raw = values.tolist()
    else:
        raw = values
    try:
        array = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PerformanceInputError(
            "scores must be numbers, or lists of class scores of one length per row"
        ) from exc
    if array.ndim not in (1, 2):
        raise PerformanceInputError(f"scores must be 1-D or 2-D, got shape {array.shape}")
    return array


def columns(y_true: Any, y_pred: Any, scores: Any) -> Columns:
    """Check lengths and find the labelled rows (a label that is None or NaN is missing).

    Examples:
        >>> columns([1, None, 0], [1, 1, 0], None).labelled.tolist()
        [True, False, True]
    """
    truth = _column(y_true, "y_true")
    predicted = None if y_pred is None else _column(y_pred, "y_pred")
    scored = None if scores is None else _scores(scores)
    for name, other in (("y_pred", predicted), ("scores", scored)):
        if other is not None and len(other) != len(truth):
            raise PerformanceInputError(
                f"{name} has {len(other)} rows but y_true has {len(truth)}")
    labelled = ~np.asarray(pd.isna(truth), dtype=bool)
    if predicted is not None and bool(pd.isna(predicted[labelled]).any()):
        raise PerformanceInputError("y_pred is missing on rows that have a label")
    if scored is not None and not bool(np.isfinite(scored[labelled]).all()):
        raise PerformanceInputError("scores are missing or not finite on rows that have a label")
    return Columns(truth, predicted, scored, labelled)


def _plain(label: Any) -> Any:
    # A label column with NaN for missing labels is float: read 1.0 as the class 1.
    value = json_label(label)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _sorted_distinct(values: Sequence[Any]) -> list[Any]:
    distinct = [_plain(value) for value in pd.unique(np.asarray(values, dtype=object))]
    try:
        return sorted(set(distinct))
    except TypeError as exc:
        raise PerformanceInputError(
            f"labels mix types that do not sort ({distinct[:5]!r}); set options.classes"
        ) from exc


def _binary_classes(observed: list[Any], positive: Any) -> tuple[Any, ...]:
    found = observed if positive in observed else [*observed, positive]
    if len(found) > 2:
        raise PerformanceInputError(
            f"binary scores or positive label {positive!r}, but the labels and predictions "
            f"show classes {found!r}; set options.classes"
        )
    if len(found) == 1:
        # Only positives in the window: the other class is 0 for 0/1 labels (False for
        # booleans); for any other label it cannot be guessed.
        if positive is True or positive is False:
            found = [not positive, positive]
        elif positive == 1:
            found = [0, 1]
        else:
            raise PerformanceInputError(
                f"only {positive!r} appears, so the negative class is unknown; "
                "set options.classes"
            )
    return tuple(sorted(found))


def resolve_classes(columns: Columns, options: PerformanceOptions) -> tuple[Any, ...]:
    """The class order: `options.classes`, else the sorted labels seen, as scikit-learn does.

    A binary problem (1-D scores, or at most two classes seen) always includes the positive
    label. Call only when some row is labelled.

    Examples:
        >>> options = PerformanceOptions("classification", positive_label="yes")
        >>> resolve_classes(columns(["no", "yes"], None, [0.2, 0.9]), options)
        ('no', 'yes')
    """
    if options.classes is not None:
        return options.classes
    seen = list(columns.y_true[columns.labelled])
    if columns.y_pred is not None:
        seen.extend(columns.y_pred[columns.labelled])
    observed = _sorted_distinct(seen)
    scores = columns.scores
    n_columns = None if scores is None or scores.ndim == 1 else scores.shape[1]
    if (n_columns is not None and n_columns > 2) or (scores is None and len(observed) > 2):
        if n_columns is not None and len(observed) != n_columns:
            raise PerformanceInputError(
                f"scores have {n_columns} columns but the labels and predictions show "
                f"{len(observed)} classes; set options.classes to the score order"
            )
        return tuple(observed)
    return _binary_classes(observed, options.positive_label)


def _codes(values: npt.NDArray[Any], classes: tuple[Any, ...], name: str) -> npt.NDArray[np.intp]:
    codes = pd.Index(list(classes), dtype=object).get_indexer(values)
    unknown = codes < 0
    if unknown.any():
        raise PerformanceInputError(
            f"{name} holds {values[unknown][0]!r}, which is not one of the classes {classes!r}")
    return np.asarray(codes, dtype=np.intp)


def encode_classes(columns: Columns, options: PerformanceOptions,
                   classes: tuple[Any, ...]) -> ClassArrays:
    """Encode the labelled rows; a missing class prediction is derived from the scores.

    Binary: score >= threshold predicts the positive label. Multiclass: the first class of
    highest score (numpy's argmax).

    Examples:
        >>> options = PerformanceOptions("classification")
        >>> data = columns([0, 1, None], None, [0.7, 0.2, 0.9])
        >>> encode_classes(data, options, (0, 1)).predicted.tolist()
        [1, 0]
    """
    labelled = columns.labelled
    positive = classes.index(options.positive_label) if len(classes) == 2 else None
    true = _codes(columns.y_true[labelled], classes, "y_true")
    proba = None
    if columns.scores is not None:
        scores = columns.scores[labelled]
        if scores.ndim == 1:
            if positive is None:
                raise PerformanceInputError(
                    f"1-D scores are binary, but there are {len(classes)} classes")
            stacked = (1.0 - scores, scores)
            proba = np.column_stack(stacked if positive == 1 else stacked[::-1])
        elif scores.shape[1] != len(classes):
            raise PerformanceInputError(
                f"scores have {scores.shape[1]} columns for {len(classes)} classes {classes!r}")
        else:
            proba = np.ascontiguousarray(scores)
    if columns.y_pred is not None:
        predicted = _codes(columns.y_pred[labelled], classes, "y_pred")
    elif proba is None:
        raise PerformanceInputError("classification needs y_pred or scores")
    elif positive is not None:
        predicted = np.where(proba[:, positive] >= options.threshold, positive, 1 - positive)
    else:
        predicted = np.argmax(proba, axis=1)
    return ClassArrays(classes, positive, true, np.asarray(predicted, dtype=np.intp), proba)


def _numbers(values: npt.NDArray[Any], name: str) -> npt.NDArray[np.float64]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PerformanceInputError(f"{name} must be numbers for regression") from exc
    if not np.isfinite(array).all():
        raise PerformanceInputError(f"{name} must be finite numbers for regression")
    return array


def encode_regression(columns: Columns) -> RegressionArrays:
    """The labelled rows as floats; regression needs `y_pred` and takes no scores.

    Examples:
        >>> encode_regression(columns([1.0, float("nan")], [1.5, 2.0], None)).predicted
        array([1.5])
    """
    if columns.y_pred is None:
        raise PerformanceInputError("regression needs y_pred")
    if columns.scores is not None:
        raise PerformanceInputError("scores are for classification; regression takes y_pred")
    labelled = columns.labelled
    return RegressionArrays(_numbers(columns.y_true[labelled], "y_true"),
                            _numbers(columns.y_pred[labelled], "y_pred"))
