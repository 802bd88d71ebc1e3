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


def _statistics(kernel: FloatArray, sides: FloatArray, n_x: int) -> FloatArray:
    # Columns of `sides` mark the reference side (1) of each split. With s that indicator,
    # sum(Kxx) = s'Ks, sum(Kyy) = (1-s)'K(1-s), sum(Kxy) = s'K(1-s): one matrix product for
    # all splits, no permuted copies of the kernel.
    n_y = kernel.shape[0] - n_x
    other = 1.0 - sides
    k_s = kernel @ sides
    k_o = kernel @ other
    kxx = np.sum(sides * k_s, axis=0) / (n_x * (n_x - 1))
    kyy = np.sum(other * k_o, axis=0) / (n_y * (n_y - 1))
    kxy = np.sum(other * k_s, axis=0) / (n_x * n_y)
    values: FloatArray = kxx + kyy - 2.0 * kxy
    return values


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
    sides = np.zeros((both.size, PERMUTATIONS + 1))
    sides[: x.size, 0] = 1.0  # the observed split first
    for j in range(1, PERMUTATIONS + 1):
        sides[rng.permutation(both.size)[: x.size], j] = 1.0
    values = _statistics(kernel, sides, x.size)
    observed = float(values[0])
    return observed, float(np.mean(observed <= values[1:]))
