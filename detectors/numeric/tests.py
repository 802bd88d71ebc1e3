"""scipy-backed two-sample tests and distances for numeric columns.

Each function takes the fitted reference column and the current values and returns
(statistic, p-value or None). Where Evidently has the method, the statistic or p-value is the
one Evidently computes (see docs/drift-methods.md for the few deliberate differences).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats

from detectors.profile import FloatArray, NumericProfile


def anderson(reference: NumericProfile, current: FloatArray) -> tuple[float, float]:
    """k-sample Anderson-Darling (scipy.stats.anderson_ksamp); p-value capped to [0.001, 0.25].

    Examples:
        >>> profile = NumericProfile.fit(np.arange(100.0))
        >>> anderson(profile, np.arange(100.0) + 50)[1] < 0.01
        True
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns when the p-value is capped
        result = stats.anderson_ksamp([reference.values, current])
    return float(result.statistic), float(result.pvalue)


def cramer_von_mises(reference: NumericProfile, current: FloatArray) -> tuple[float, float]:
    """Two-sample Cramér-von Mises (scipy.stats.cramervonmises_2samp, asymptotic p-value).

    Examples:
        >>> profile = NumericProfile.fit(np.arange(100.0))
        >>> cramer_von_mises(profile, np.arange(100.0))[1] > 0.9
        True
    """
    result = stats.cramervonmises_2samp(reference.values, current, method="asymptotic")
    return float(result.statistic), float(result.pvalue)


def energy(reference: NumericProfile, current: FloatArray) -> tuple[float, None]:
    """Energy distance (scipy.stats.energy_distance); no p-value.

    Examples:
        >>> energy(NumericProfile.fit(np.arange(10.0)), np.arange(10.0))
        (0.0, None)
    """
    return float(stats.energy_distance(reference.values, current)), None


def mannwhitney(reference: NumericProfile, current: FloatArray) -> tuple[float, float]:
    """Mann-Whitney U, two-sided (Evidently tests one side only; a drop would go unseen).

    Examples:
        >>> mannwhitney(NumericProfile.fit(np.arange(50.0)), np.arange(50.0))[1]
        1.0
    """
    result = stats.mannwhitneyu(reference.values, current, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def t_test(reference: NumericProfile, current: FloatArray) -> tuple[float, float]:
    """Student's t-test of the means (scipy.stats.ttest_ind, equal variances, as Evidently).

    Examples:
        >>> t_test(NumericProfile.fit(np.arange(50.0)), np.arange(50.0))
        (0.0, 1.0)
    """
    if reference.std == 0 and float(np.std(current)) == 0:
        return 0.0, 1.0 if float(current.mean()) == reference.mean else 0.0
    result = stats.ttest_ind(reference.values, current)
    return float(result.statistic), float(result.pvalue)
