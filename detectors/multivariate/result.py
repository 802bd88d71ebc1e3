"""The result of a multivariate drift check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from detectors.report import Status, finite_or_none

MultivariateMethod = Literal["domain_classifier", "pca_reconstruction"]


@dataclass(frozen=True, slots=True)
class MultivariateDrift:
    """One multivariate check of a window against the reference.

    `statistic` is the domain classifier's ROC AUC or the window's mean PCA
    reconstruction error; `drifted` compares it with `threshold` (and, for PCA, with
    `lower_threshold` too: an error far below the reference's is also a change).
    """

    method: MultivariateMethod
    statistic: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    status: Status = "ok"
    lower_threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (non-finite numbers as null)."""
        return {"method": self.method, "statistic": finite_or_none(self.statistic),
                "threshold": self.threshold,
                "lower_threshold": finite_or_none(self.lower_threshold),
                "drifted": self.drifted, "n_reference": self.n_reference,
                "n_current": self.n_current, "status": self.status}
