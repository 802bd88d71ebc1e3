"""PCA reconstruction error: a change in how the columns move together.

Fitted on the reference (numeric columns standardised with the reference's mean
and standard deviation; missing values imputed with the mean), the principal
components that explain `variance` of the reference (default 65%, as NannyML's
data reconstruction drift) compress each row; the Euclidean distance between a
row and its reconstruction is its error, and a window's statistic is its mean.

Thresholds come from the reference itself: it is cut into chunks the size of a
typical window (`chunk_size`, default a tenth of the reference), and a window is
drifted when its mean error lies outside the chunks' mean ± 3 standard deviations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from detectors.columns import FloatArray
from detectors.errors import OptionsError
from detectors.multivariate.encode import encode, infer_kinds
from detectors.multivariate.result import MultivariateDrift

SIGMAS = 3.0


@dataclass(frozen=True)
class PCAReconstruction:
    """A PCA fitted on the reference, with its error thresholds."""

    columns: tuple[str, ...]
    mean: FloatArray
    scale: FloatArray
    components: FloatArray
    upper: float
    lower: float
    n_reference: int

    @classmethod
    def fit(cls, reference: pd.DataFrame, *, columns: Sequence[str] | None = None,
            variance: float = 0.65, chunk_size: int | None = None) -> PCAReconstruction:
        """Fit on the numeric `columns` of the reference (default: all numeric columns).

        Examples:
            >>> rng = np.random.default_rng(0)
            >>> a = rng.normal(size=3000)
            >>> ref = pd.DataFrame({"a": a, "b": a + rng.normal(0, 0.2, 3000)})
            >>> pca = PCAReconstruction.fit(ref)
            >>> same = pd.DataFrame({"a": a[:500], "b": a[:500] + rng.normal(0, 0.2, 500)})
            >>> pca.detect(same).drifted
            False
            >>> broken = same.assign(b=rng.normal(size=500))  # the link between a and b breaks
            >>> pca.detect(broken).drifted
            True
        """
        if not 0.0 < variance <= 1.0:
            raise OptionsError(f"variance must be in (0, 1], got {variance}")
        names = list(columns) if columns is not None else list(reference.columns)
        kinds = infer_kinds(reference, names)
        names = [n for n in names if kinds[n] == "numeric"]
        data = encode(reference, names, kinds, {})
        present = np.isfinite(data)
        counts = np.maximum(present.sum(axis=0), 1)
        filled = np.where(present, data, 0.0)
        with np.errstate(all="ignore"):
            mean = filled.sum(axis=0) / counts
            scale = np.sqrt(np.where(present, (data - mean) ** 2, 0.0).sum(axis=0) / counts)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        standard = _standardise(data, mean, scale)
        if standard.shape[0] < 2 or standard.shape[1] == 0:
            empty = np.zeros((0, len(names)))
            return cls(tuple(names), mean, scale, empty, np.inf, -np.inf, len(reference))
        _u, singular, vt = np.linalg.svd(standard - standard.mean(axis=0), full_matrices=False)
        explained = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-300)
        keep = int(np.searchsorted(explained, variance - 1e-12) + 1)
        components = vt[: min(keep, vt.shape[0])]
        errors = _errors(standard, components)
        size = chunk_size or max(len(errors) // 10, 1)
        chunks = [errors[i:i + size].mean() for i in range(0, len(errors) - size + 1, size)]
        centre = float(np.mean(chunks))
        spread = float(np.std(chunks, ddof=1)) if len(chunks) > 1 else 0.0
        return cls(tuple(names), mean, scale, components, centre + SIGMAS * spread,
                   centre - SIGMAS * spread, len(reference))

    def detect(self, current: pd.DataFrame, *, min_samples: int = 30) -> MultivariateDrift:
        """Mean reconstruction error of `current`, compared with the reference's band."""
        kinds = dict.fromkeys(self.columns, "numeric")
        data = encode(current, self.columns, kinds, {})  # type: ignore[arg-type]
        if len(data) < min_samples or self.components.shape[0] == 0:
            return MultivariateDrift("pca_reconstruction", None, self.upper, False,
                                     self.n_reference, len(current), "insufficient_data",
                                     self.lower)
        error = float(np.mean(_errors(_standardise(data, self.mean, self.scale),
                                      self.components)))
        drifted = not self.lower <= error <= self.upper
        return MultivariateDrift("pca_reconstruction", error, self.upper, drifted,
                                 self.n_reference, len(current), "ok", self.lower)


def _standardise(data: FloatArray, mean: FloatArray, scale: FloatArray) -> FloatArray:
    standard: FloatArray = (data - mean) / scale
    # Missing values take the reference mean (0 once standardised).
    return np.where(np.isfinite(standard), standard, 0.0)


def _errors(standard: FloatArray, components: FloatArray) -> FloatArray:
    restored = standard @ components.T @ components
    errors: FloatArray = np.sqrt(np.sum((standard - restored) ** 2, axis=1))
    return errors
