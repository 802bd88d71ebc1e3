"""Whole-sample tests computed by scipy: Anderson-Darling, Cramér-von Mises, and others.

Also Mann-Whitney U, energy distance and Student's t (from the fitted moments).

Each returns (statistic, p-value) with scipy's definitions; Evidently uses the same
scipy functions (its Cramér-von Mises is a copy of scipy's), except where noted.
"""

from __future__ import annotations

import math
import threading
import warnings

from scipy import stats

from detectors.columns import NumericWindow
from detectors.profile import NumericProfile

_WARNINGS_LOCK = threading.Lock()


def anderson(reference: NumericProfile, current: NumericWindow) -> tuple[float, float]:
    """k-sample Anderson-Darling (scipy.stats.anderson_ksamp, midrank).

    scipy caps the p-value to [0.001, 0.25] and warns when it does; the capped value
    is kept (as Evidently does) and the warning silenced.

    Examples:
        >>> import numpy as np
        >>> profile = NumericProfile.fit(np.arange(100.0))
        >>> anderson(profile, NumericWindow.of(np.arange(100.0) + 50))[1] < 0.01
        True
    """
    if reference.n < 2 or current.n < 2:
        return 0.0, 1.0  # scipy needs two values a side (and fails with an IndexError)
    if reference.n_unique == 1 and current.values.min() == current.values.max() \
            and current.values[0] == reference.values[0]:
        return 0.0, 1.0  # one value on both sides: scipy would divide by zero
    # catch_warnings swaps process-wide filters: one thread at a time.
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.anderson_ksamp([reference.values, current.values])
    return float(result.statistic), float(result.pvalue)


def cramer_von_mises(reference: NumericProfile, current: NumericWindow) -> tuple[float, float]:
    """Two-sample Cramér-von Mises (scipy.stats.cramervonmises_2samp, method auto).

    Examples:
        >>> import numpy as np
        >>> profile = NumericProfile.fit(np.arange(100.0))
        >>> cramer_von_mises(profile, NumericWindow.of(np.arange(100.0)))[1] > 0.9
        True
    """
    if reference.n < 2 or current.n < 2:
        return 0.0, 1.0
    result = stats.cramervonmises_2samp(reference.values, current.values)
    return float(result.statistic), float(result.pvalue)


def mannwhitney(reference: NumericProfile, current: NumericWindow) -> tuple[float, float]:
    """Mann-Whitney U, two-sided (scipy.stats.mannwhitneyu, method auto).

    Evidently's `mannw` uses the one-sided alternative "less" (reference stochastically
    smaller), which misses drift in the other direction; driftline tests both sides.

    Examples:
        >>> import numpy as np
        >>> profile = NumericProfile.fit(np.arange(100.0))
        >>> mannwhitney(profile, NumericWindow.of(np.arange(100.0)))[1]
        1.0
    """
    result = stats.mannwhitneyu(reference.values, current.values, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def energy(reference: NumericProfile, current: NumericWindow) -> tuple[float, None]:
    """Energy distance (scipy.stats.energy_distance); a distance, no p-value.

    Examples:
        >>> import numpy as np
        >>> profile = NumericProfile.fit(np.arange(10.0))
        >>> energy(profile, NumericWindow.of(np.arange(10.0)))
        (0.0, None)
    """
    return float(stats.energy_distance(reference.values, current.values)), None


def t_test(reference: NumericProfile, current: NumericWindow) -> tuple[float, float]:
    """Student's two-sample t-test with pooled variance (as scipy.stats.ttest_ind).

    Computed from the reference's fitted mean and variance, so the reference is not
    read again.

    Examples:
        >>> import numpy as np
        >>> profile = NumericProfile.fit(np.arange(100.0))
        >>> t_test(profile, NumericWindow.of(np.arange(100.0)))
        (0.0, 1.0)
    """
    n1, n2 = reference.n, current.n
    if n1 < 2 or n2 < 2:
        return 0.0, 1.0
    std1 = reference.std * math.sqrt(n1 / (n1 - 1))
    mean2, std2 = float(current.values.mean()), float(current.values.std(ddof=1))
    if std1 == 0 and std2 == 0:
        return 0.0, (1.0 if mean2 == reference.mean else 0.0)
    result = stats.ttest_ind_from_stats(reference.mean, std1, n1, mean2, std2, n2, equal_var=True)
    return float(result.statistic), float(result.pvalue)
