"""KSWIN: a Kolmogorov-Smirnov test between the newest values and a sample of older ones.

Raab, Heusinger and Schleif, "Reactive soft prototype computing for concept drift
streams", Neurocomputing 416 (2020). A sliding window holds the last `window_size`
values. Once it is full, every value triggers a two-sample KS test (scipy's `ks_2samp`,
`method="auto"`) between the newest `stat_size` values and `stat_size` values drawn
without replacement from the older part of the window; a drift is a p-value at or below
`alpha` with a statistic above 0.1 (river's guard against tiny differences).

The detection points equal river's `river.drift.KSWIN` (0.26) for the same `seed`: the
positions are drawn exactly as river draws them, with the standard library's
`random.Random(seed).sample(range(window_size - stat_size), stat_size)`, one draw per
test, and the generator is seeded again after each detection as river's reset does. A
numpy generator would draw other positions and detect elsewhere. With `seed=None` the
draws, hence the detections, change from run to run (as in river).
"""

from __future__ import annotations

import random
import warnings
from collections import deque
from collections.abc import Iterable
from typing import Final, SupportsFloat

import numpy as np
from scipy import stats

from detectors.errors import OptionsError
from detectors.streaming.base import StreamingDetector, require_float, require_int

# river's extra condition on the KS statistic, besides the p-value (river/drift/kswin.py).
_MIN_STATISTIC = 0.1


class KSWIN(StreamingDetector):
    """Kolmogorov-Smirnov windowing with river's parameters and, for a seed, its results.

    Args:
        alpha: Significance of the KS test, in (0, 1); the method is sensitive to it, and
            its authors advise values below 0.01.
        window_size: Length of the sliding window.
        stat_size: Values in each sample of the test; the older part of the window must hold
            as many, so `window_size >= 2 * stat_size`.
        seed: Seed of the positions drawn from the older part (None: a fresh seed).
        window: Values to start the window with, oldest first, instead of a cold start
            (only the last `window_size` are kept; forgotten at the first detection).

    Raises:
        OptionsError: A parameter is out of range (a `ValueError`; the message names it).

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> stream = np.concatenate([rng.normal(0.0, 1.0, 500), rng.normal(2.0, 1.0, 500)])
        >>> kswin = KSWIN(alpha=0.0001, seed=42)
        >>> [i for i, x in enumerate(stream) if kswin.update(x).drift_detected]
        [523]
    """

    def __init__(self, alpha: float = 0.005, window_size: int = 100, stat_size: int = 30,
                 seed: int | None = None, window: Iterable[SupportsFloat] | None = None) -> None:
        super().__init__()
        self.alpha: Final = require_float("alpha", alpha, low=0.0, high=1.0,
                                          low_open=True, high_open=True)
        self.window_size: Final = require_int("window_size", window_size, minimum=2)
        self.stat_size: Final = require_int("stat_size", stat_size, minimum=1)
        if self.window_size < 2 * self.stat_size:
            # river accepts stat_size < window_size < 2 * stat_size and then fails at the
            # first test: the older part is too small to draw stat_size positions from.
            raise OptionsError(
                f"window_size ({window_size!r}) must be at least twice stat_size "
                f"({stat_size!r})")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise OptionsError(f"seed must be an integer or None, got {seed!r}")
        self.seed: Final = seed
        self._reset()
        if window is not None:
            self._window.extend(self._check(x) for x in window)

    @property
    def p_value(self) -> float:
        """The p-value of the last test (0.0 before the first and after a reset, as river)."""
        return self._p_value

    def _reset(self) -> None:
        self._window: deque[float] = deque(maxlen=self.window_size)
        self._rng = random.Random(self.seed)  # river's generator, for river's draws
        self._p_value = 0.0

    def _step(self, value: float) -> bool:
        self._window.append(value)
        if len(self._window) < self.window_size:
            return False
        older = self.window_size - self.stat_size
        values = np.fromiter(self._window, dtype=np.float64, count=self.window_size)
        positions = self._rng.sample(range(older), self.stat_size)
        with warnings.catch_warnings():
            # method="auto" warns when the exact p-value fails and scipy falls back to the
            # asymptotic one; river silences that RuntimeWarning too.
            warnings.simplefilter("ignore", category=RuntimeWarning)
            result = stats.ks_2samp(values[positions], values[older:], method="auto")
        self._p_value = float(result.pvalue)
        return self._p_value <= self.alpha and float(result.statistic) > _MIN_STATISTIC
