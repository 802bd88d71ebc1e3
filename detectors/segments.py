"""Performance per segment (a feature, a tag or `model_version`) and the disparity between.

Each group of the segment column gets the realized performance of its rows
(`compute_performance`'s metrics); each metric defined in at least two groups gets its
disparity, max - min and min / max, as fairlearn's `MetricFrame.difference()` and
`.ratio()` with `method="between_groups"`. Binary classification adds the demographic
parity difference and the equalized odds difference, as fairlearn's
`demographic_parity_difference` and `equalized_odds_difference(agg="worst_case")`
(fairlearn.org, user guide "Assessment", and fairlearn.metrics API reference).

Where we depart from fairlearn, and why:
- A missing segment value (None, NaN) forms the group "(missing)"; fairlearn raises on
  NaN. Values are grouped by their text, so 1 and "1" are one group.
- Only labelled rows count, for selection rate too, so that every figure of a group is
  over the same rows (fairlearn sees whatever rows it is given).
- With fewer than two groups there is no disparity: None (fairlearn gives 0.0).
- A ratio is None when the largest value is 0 or a value is negative (fairlearn gives
  NaN, or a meaningless ratio of signed numbers such as R² or the mean error).
Kept as in fairlearn: a group without actual positives has a true positive rate of 0, not
undefined (scikit-learn's `confusion_matrix(normalize="true")` fills 0/0 with 0), and
likewise its false positive rate without actual negatives; so the equalized odds
difference can read 1.0 because of such a group. `groups_without_positives` and
`groups_without_negatives` name them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from detectors.errors import OptionsError, PerformanceInputError
from detectors.performance.compute import prepare, rows_by_group, summarize
from detectors.performance.inputs import ClassArrays
from detectors.performance.options import PerformanceOptions
from detectors.performance.result import PerformanceReport, json_label
from detectors.report import finite_or_none

MISSING_GROUP = "(missing)"


@dataclass(frozen=True, slots=True)
class Disparity:
    """How far one metric is apart across groups: max - min and min / max."""

    difference: float
    ratio: float | None

    def to_dict(self) -> dict[str, float | None]:
        """`{"difference": .., "ratio": ..}`."""
        return {"difference": finite_or_none(self.difference), "ratio": finite_or_none(self.ratio)}


@dataclass(frozen=True, slots=True)
class SegmentReport:
    """Realized performance per group of one segment column, and the disparities.

    `groups` keeps the `max_groups` groups with the most labelled rows (the most rows on a
    tie, then by name); the rest are dropped, not merged, so that no mixed group enters a
    disparity: `n_groups_dropped` and `n_rows_dropped` count them.
    """

    by: str
    groups: Mapping[str, PerformanceReport]
    disparity: Mapping[str, Disparity]
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    groups_without_positives: tuple[str, ...]
    groups_without_negatives: tuple[str, ...]
    n_groups_dropped: int
    n_rows_dropped: int

    def to_dict(self) -> dict[str, Any]:
        """The `segments` JSON: groups with their metrics, disparities, fairness measures."""
        disparity: dict[str, Any] = {name: d.to_dict() for name, d in self.disparity.items()}
        disparity["demographic_parity_difference"] = finite_or_none(
            self.demographic_parity_difference)
        disparity["equalized_odds_difference"] = finite_or_none(self.equalized_odds_difference)
        return {
            "by": self.by,
            "groups": {
                name: {"n": report.n_labelled, "label_coverage": report.label_coverage,
                       "metrics": report.to_dict()["metrics"]}
                for name, report in self.groups.items()
            },
            "disparity": disparity,
            "groups_without_positives": list(self.groups_without_positives),
            "groups_without_negatives": list(self.groups_without_negatives),
            "n_groups_dropped": self.n_groups_dropped,
            "n_rows_dropped": self.n_rows_dropped,
        }


def _group_codes(values: Any) -> tuple[npt.NDArray[np.intp], list[str]]:
    column = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else np.asarray(
        values, dtype=object)
    if column.ndim != 1:
        raise PerformanceInputError(f"the segment column must be 1-D, got shape {column.shape}")
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    # Code -1 (a missing value) picks the last name: the missing group.
    names = np.asarray([str(json_label(value)) for value in uniques] + [MISSING_GROUP],
                       dtype=object)
    merged, group_names = pd.factorize(names[codes])
    return np.asarray(merged, dtype=np.intp), [str(name) for name in group_names]


def disparity(values: list[float]) -> Disparity:
    """Max - min and min / max of one metric over the groups where it is defined.

    Examples:
        >>> disparity([0.5, 0.75, 0.25])
        Disparity(difference=0.5, ratio=0.3333333333333333)
        >>> disparity([0.0, 0.0]).ratio is None, disparity([-0.2, 0.4]).ratio is None
        (True, True)
    """
    low, high = min(values), max(values)
    ratio = low / high if high > 0 and low >= 0 else None
    return Disparity(high - low, ratio)


def _spread(values: list[float]) -> float | None:
    return max(values) - min(values) if len(values) >= 2 else None


def _fairness(parts: dict[str, ClassArrays]) -> tuple[float | None, float | None, list[str],
                                                      list[str]]:
    selection, tpr, fpr, no_positives, no_negatives = [], [], [], [], []
    for name, data in parts.items():
        positive = data.positive
        actual, chosen = data.true == positive, data.predicted == positive
        n_positive, n_negative = int(actual.sum()), int((~actual).sum())
        selection.append(float(np.mean(chosen)))
        # fairlearn's rates: 0.0 when the group has no actual positives (negatives).
        tpr.append(float(np.sum(chosen & actual)) / n_positive if n_positive else 0.0)
        fpr.append(float(np.sum(chosen & ~actual)) / n_negative if n_negative else 0.0)
        if not n_positive:
            no_positives.append(name)
        if not n_negative:
            no_negatives.append(name)
    tpr_gap, fpr_gap = _spread(tpr), _spread(fpr)
    odds = None if tpr_gap is None or fpr_gap is None else max(tpr_gap, fpr_gap)
    return _spread(selection), odds, no_positives, no_negatives


def compute_segments(groups_column: Any, y_true: Any, y_pred: Any = None, scores: Any = None, *,
                     options: PerformanceOptions, by: str,
                     max_groups: int = 50) -> SegmentReport:
    """Realized performance per group of `groups_column`, with disparities and fairness.

    Classes are resolved once over all rows, so every group has the same metric keys.
    Definitions and departures from fairlearn: this module's docstring.

    Args:
        groups_column: One segment value per row (a feature, a tag such as the region, or
            the model version); None or NaN forms the group "(missing)".
        y_true: Labels, as for `compute_performance` (unlabelled rows count for coverage).
        y_pred: Predictions, as for `compute_performance`.
        scores: Scores, as for `compute_performance`.
        options: Task, positive label, threshold, class order.
        by: The segment's name, reported as is (e.g. "tags.region").
        max_groups: Groups kept; the ones with fewest labelled rows beyond it are dropped.

    Returns:
        The frozen report; `to_dict()` is the `segments` JSON.

    Raises:
        OptionsError: `max_groups` is below 1.
        PerformanceInputError: Lengths differ, or the labels and predictions are unusable.

    Examples:
        >>> options = PerformanceOptions("classification")
        >>> report = compute_segments(["eu", "eu", "us", "us"], [1, 0, 1, 1], [1, 0, 0, 1],
        ...                           options=options, by="tags.region")
        >>> report.groups["us"].metrics["accuracy"], report.disparity["accuracy"]
        (0.5, Disparity(difference=0.5, ratio=0.5))
        >>> report.demographic_parity_difference, report.equalized_odds_difference
        (0.0, 0.5)
    """
    if isinstance(max_groups, bool) or not isinstance(max_groups, int) or max_groups < 1:
        raise OptionsError(f"max_groups must be a positive integer, got {max_groups!r}")
    codes, names = _group_codes(groups_column)
    prepared = prepare(y_true, y_pred, scores, options)
    if len(codes) != len(prepared.columns.y_true):
        raise PerformanceInputError(
            f"the segment column has {len(codes)} rows but y_true has "
            f"{len(prepared.columns.y_true)}")
    labelled = prepared.columns.labelled
    totals = np.bincount(codes, minlength=len(names))
    labelled_totals = np.bincount(codes[labelled], minlength=len(names))
    ranked = sorted(range(len(names)),
                    key=lambda g: (-int(labelled_totals[g]), -int(totals[g]), names[g]))
    kept, dropped = ranked[:max_groups], ranked[max_groups:]
    rows = rows_by_group(codes[labelled], len(names))
    groups: dict[str, PerformanceReport] = {}
    parts: dict[str, ClassArrays] = {}
    for group in kept:
        data = None if prepared.data is None else prepared.data.take(rows[group])
        groups[names[group]] = summarize(data, options=options, names=prepared.names,
                                         n_total=int(totals[group]))
        if isinstance(data, ClassArrays) and data.positive is not None and len(data.true):
            parts[names[group]] = data
    spreads: dict[str, Disparity] = {}
    for metric in prepared.names:
        values = [v for r in groups.values() if (v := r.metrics[metric]) is not None]
        if len(values) >= 2:
            spreads[metric] = disparity(values)
    parity, odds, no_positives, no_negatives = _fairness(parts)
    return SegmentReport(by, groups, spreads, parity, odds, tuple(no_positives),
                         tuple(no_negatives), len(dropped),
                         int(sum(int(totals[g]) for g in dropped)))
