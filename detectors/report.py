"""Result types: frozen dataclasses, never dicts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ColumnKind = Literal["numeric", "categorical"]
Status = Literal["ok", "insufficient_data"]
REPORT_SCHEMA = "driftline.drift-report/v1"


def _json_float(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One column's drift result.

    `statistic` is the method's statistic (a distance, or the test statistic of a
    p-value test); `p_value` is None for distances. `drifted` compares the p-value
    (p < threshold) or the distance (statistic >= threshold) with `threshold`.
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
            "statistic": _json_float(self.statistic),
            "p_value": _json_float(self.p_value),
            "threshold": self.threshold,
            "drifted": self.drifted,
            "effect_size": _json_float(self.effect_size),
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
    status: Status = "ok"

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Names of the features that drifted."""
        return tuple(name for name, result in self.features.items() if result.drifted)

    def to_dict(self) -> dict[str, Any]:
        """The `driftline.drift-report/v1` JSON object."""
        return {
            "schema": REPORT_SCHEMA,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "drift_share": self.drift_share,
            "share_drifted": self.share_drifted,
            "dataset_drifted": self.dataset_drifted,
            "features": {name: result.to_dict() for name, result in self.features.items()},
        }
