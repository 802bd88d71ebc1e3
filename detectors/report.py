"""Result types: frozen dataclasses, never dicts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ColumnKind = Literal["numeric", "categorical"]
Status = Literal["ok", "insufficient_data", "type_mismatch", "missing"]
ReportStatus = Literal["ok", "insufficient_data"]
# A schema change is the strongest drift there is: these statuses count as drifted.
SCHEMA_STATUSES: frozenset[str] = frozenset({"type_mismatch", "missing"})
REPORT_SCHEMA = "driftline.drift-report/v1"


def finite_or_none(value: float | None) -> float | None:
    """`value` as a float when it is a finite number, else None (JSON has no NaN or inf).

    Examples:
        >>> finite_or_none(0.5), finite_or_none(float("nan")), finite_or_none(None)
        (0.5, None, None)
    """
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One column's drift result.

    `statistic` is the method's statistic (a distance, or the test statistic of a
    p-value test); `p_value` is None for distances. `drifted` compares the p-value
    (p < threshold) or the distance (statistic >= threshold) with `threshold`.

    `status`: `ok` (tested), `insufficient_data` (fewer than `min_samples` usable values,
    or an empty window), `type_mismatch` (most of the window's values are of the other
    kind: text in a numeric column, numbers where categories were) or `missing` (the
    window lacks the column). The last two are schema changes and count as drifted.
    """

    kind: ColumnKind
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    effect_size: float | None
    n_reference: int
    n_current: int
    status: Status = "ok"

    def to_dict(self) -> dict[str, Any]:
        """The feature's entry in the drift-report/v1 JSON."""
        return {
            "kind": self.kind,
            "method": self.method,
            "status": self.status,
            "statistic": finite_or_none(self.statistic),
            "p_value": finite_or_none(self.p_value),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "effect_size": finite_or_none(self.effect_size),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Per-feature results and the dataset verdict of one comparison."""

    features: Mapping[str, FeatureDrift]
    share_drifted: float
    dataset_drifted: bool
    drift_share: float
    n_reference: int
    n_current: int
    status: ReportStatus = "ok"

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Names of the features that drifted."""
        return tuple(name for name, result in self.features.items() if result.drifted)

    def to_dict(self) -> dict[str, Any]:
        """The `driftline.drift-report/v1` JSON object."""
        return {
            "schema": REPORT_SCHEMA,
            "status": self.status,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drift_share": self.drift_share,
            "share_drifted": self.share_drifted,
            "dataset_drifted": self.dataset_drifted,
            "features": {name: result.to_dict() for name, result in self.features.items()},
        }
