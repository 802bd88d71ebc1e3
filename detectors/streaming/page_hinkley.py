"""Page-Hinkley: a cumulative sum of deviations from the running mean, against its extreme.

Page, "Continuous inspection schemes", Biometrika 41 (1954), as a two-sided test with a
forgetting factor (Sebastião and Fernandes, ISMIS 2017). With the running mean m_t,

    U_t = alpha U_(t-1) + (x_t - m_t) - delta     (rises when the mean goes up)
    L_t = alpha L_(t-1) + (x_t - m_t) + delta     (falls when the mean goes down)

a change is an increase when U_t - min U > threshold, a decrease when max L - L_t >
threshold (`mode` says which count), tested once `min_instances` values have arrived.
The detection points equal river's `river.drift.PageHinkley` (0.26): the running mean is
updated as river's `stats.Mean` and the sums in the same order, and, as there, the
running maximum of L starts at -1 rather than minus infinity.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from detectors.errors import OptionsError
from detectors.streaming.base import StreamingDetector, require_float, require_int

PageHinkleyMode = Literal["up", "down", "both"]


class PageHinkley(StreamingDetector):
    """The Page-Hinkley test with river's parameters and results.

    Args:
        min_instances: Values to see before a change can be detected (at least 1).
        delta: Magnitude of change tolerated, subtracted at each step (non-negative).
        threshold: The detection threshold, lambda (positive).
        alpha: Forgetting factor of the cumulative sums, in (0, 1].
        mode: Detect increases of the mean (`"up"`), decreases (`"down"`) or both.

    Raises:
        OptionsError: A parameter is out of range (a `ValueError`; the message names it).

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> stream = np.concatenate([rng.normal(0.0, 1.0, 1000), rng.normal(2.0, 1.0, 1000)])
        >>> ph = PageHinkley()
        >>> [i for i, x in enumerate(stream) if ph.update(x).drift_detected]
        [1018]
        >>> ph = PageHinkley(mode="down")
        >>> [i for i, x in enumerate(stream) if ph.update(x).drift_detected]
        []
    """

    def __init__(self, min_instances: int = 30, delta: float = 0.005, threshold: float = 50.0,
                 alpha: float = 1 - 0.0001, mode: PageHinkleyMode = "both") -> None:
        super().__init__()
        self.min_instances: Final = require_int("min_instances", min_instances, minimum=1)
        self.delta: Final = require_float("delta", delta, low=0.0)
        self.threshold: Final = require_float("threshold", threshold, low=0.0, low_open=True)
        self.alpha: Final = require_float("alpha", alpha, low=0.0, high=1.0, low_open=True)
        if mode not in get_args(PageHinkleyMode):
            raise OptionsError(f"mode must be one of {get_args(PageHinkleyMode)}, got {mode!r}")
        self.mode: Final = mode
        self._reset()

    def _reset(self) -> None:
        self._n = 0.0
        self._mean = 0.0
        self._sum_up = 0.0
        self._sum_down = 0.0
        self._min_up = float("inf")
        self._max_down = -1.0  # river's starting value

    def _step(self, value: float) -> bool:
        # river's stats.Mean: the weight over the count, times the deviation.
        self._n += 1.0
        self._mean += (1.0 / self._n) * (value - self._mean)
        deviation = value - self._mean
        self._sum_up = self.alpha * self._sum_up + deviation - self.delta
        self._sum_down = self.alpha * self._sum_down + deviation + self.delta
        self._min_up = min(self._min_up, self._sum_up)
        self._max_down = max(self._max_down, self._sum_down)
        if self._n < self.min_instances:
            return False
        increase = self._sum_up - self._min_up > self.threshold
        decrease = self._max_down - self._sum_down > self.threshold
        if self.mode == "up":
            return increase
        if self.mode == "down":
            return decrease
        return increase or decrease
