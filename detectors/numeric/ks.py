"""Two-sample Kolmogorov-Smirnov test (scipy.stats.ks_2samp, two-sided, method auto)."""

from __future__ import annotations

from scipy import stats

from detectors.profile import FloatArray, NumericProfile


def ks(reference: NumericProfile, current: FloatArray) -> tuple[float, float]:
    """KS statistic and p-value of `current` against the reference values.

    Examples:
        >>> import numpy as np
        >>> profile = NumericProfile.fit(np.arange(100.0))
        >>> statistic, p_value = ks(profile, np.arange(100.0))
        >>> statistic, p_value
        (0.0, 1.0)
    """
    result = stats.ks_2samp(reference.values, current)
    return float(result.statistic), float(result.pvalue)
