"""Maximum mean discrepancy with a Gaussian kernel and a permutation p-value.

The statistic is Evidently's `empirical_mmd`: kernel width from the median of the
squared reference distances (Gretton et al. 2012, "A kernel two-sample test"), the
unbiased within-sample terms and the mean cross term. The kernel matrices are
quadratic in size, so each side is subsampled (seeded) to at most `MAX_SAMPLES`
values; the p-value comes from `PERMUTATIONS` seeded permutations, so it is
deterministic (Evidently's is not seeded).
"""

from __future__ import annotations

import numpy as np

from detectors.columns import FloatArray, NumericWindow
from detectors.profile import NumericProfile

MAX_SAMPLES = 1000
PERMUTATIONS = 100
SEED = 0


def _subsample(values: FloatArray, rng: np.random.Generator) -> FloatArray:
    if values.size <= MAX_SAMPLES:
        return values
    picked: FloatArray = rng.choice(values, MAX_SAMPLES, replace=False)
    return picked


def _statistic(kernel: FloatArray, n_x: int) -> float:
    n_y = kernel.shape[0] - n_x
    kxx = kernel[:n_x, :n_x].sum() / (n_x * (n_x - 1))
    kyy = kernel[n_x:, n_x:].sum() / (n_y * (n_y - 1))
    return float(kxx + kyy - 2.0 * kernel[n_x:, :n_x].mean())


def mmd(reference: NumericProfile, current: NumericWindow) -> tuple[float, float]:
    """MMD² estimate and its permutation p-value.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> profile = NumericProfile.fit(rng.normal(size=200))
        >>> mmd(profile, NumericWindow.of(rng.normal(3, 1, 200)))[1]
        0.0
    """
    rng = np.random.default_rng(SEED)
    x = _subsample(np.asarray(reference.values), rng)
    y = _subsample(current.values, rng)
    if x.size < 2 or y.size < 2:
        return 0.0, 1.0
    squared_x = (x[:, None] - x[None, :]) ** 2
    sigma = float(np.sqrt(0.5 * np.percentile(squared_x.ravel(), 50, method="nearest")))
    if sigma == 0:
        sigma = float(np.sqrt(0.5))
    gamma = 1.0 / (2.0 * sigma**2)
    both = np.concatenate([x, y])
    kernel = np.exp(-gamma * (both[:, None] - both[None, :]) ** 2)
    np.fill_diagonal(kernel, 0.0)
    observed = _statistic(kernel, x.size)
    exceed = 0
    for _ in range(PERMUTATIONS):
        order = rng.permutation(both.size)
        exceed += observed <= _statistic(kernel[np.ix_(order, order)], x.size)
    return observed, exceed / PERMUTATIONS
