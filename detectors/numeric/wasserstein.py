"""Wasserstein distance normed by the reference's standard deviation (as Evidently)."""

from __future__ import annotations

from scipy import stats

from detectors.profile import FloatArray, NumericProfile


def wasserstein(reference: NumericProfile, current: FloatArray) -> tuple[float, None]:
    """Distance / max(std of reference with ddof=0, 0.001); no p-value.

    Examples:
        >>> import numpy as np
        >>> profile = NumericProfile.fit(np.array([0.0, 1.0, 2.0, 3.0]))
        >>> round(wasserstein(profile, np.array([1.0, 2.0, 3.0, 4.0]))[0], 6)
        0.894427
    """
    norm = max(reference.std, 0.001)
    return float(stats.wasserstein_distance(reference.values, current)) / norm, None
