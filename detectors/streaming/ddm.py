"""DDM: the drift detection method, a rise in a model's error rate above its best level.

Gama, Medas, Castillo and Rodrigues, "Learning with drift detection", SBIA 2004. The input
is a stream of errors (1 when the model was wrong, 0 when right). With p_i the error rate
so far and s_i = sqrt(p_i (1 - p_i) / i) its binomial standard deviation, the detector
remembers p_min and s_min where p_i + s_i was lowest and, after `warm_start` values, signals

    a warning when p_i + s_i > p_min + warning_threshold * s_min,
    a drift   when p_i + s_i > p_min + drift_threshold * s_min.

The detection and warning points equal river's `river.drift.binary.DDM` (0.26): the error
rate is updated as river's `stats.Mean`, and a new minimum is taken when p_i + s_i is at or
below the old one, as there.
"""

from __future__ import annotations

import math
from typing import Final, SupportsFloat

from detectors.errors import OptionsError, StreamValueError
from detectors.streaming.base import StreamingDetector, require_float, require_int


class DDM(StreamingDetector):
    """The drift detection method with river's parameters, warnings and results.

    Args:
        warm_start: Values to see before a warning or a drift can be signalled.
        warning_threshold: Standard deviations above the minimum for a warning (2: about 95%).
        drift_threshold: Standard deviations above the minimum for a drift (3: about 99%);
            at least `warning_threshold`.

    Raises:
        OptionsError: A parameter is out of range (a `ValueError`; the message names it).

    `update` takes an error indicator: True or 1 for an error, False or 0 for a correct
    prediction (river also takes fractions, and so does this class, within [0, 1]).

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(5)
        >>> errors = np.concatenate([rng.random(1000) < 0.1, rng.random(1000) < 0.3])
        >>> ddm = DDM()
        >>> drifts, warnings = [], []
        >>> for i, error in enumerate(errors):
        ...     if ddm.update(error).drift_detected:
        ...         drifts.append(i)
        ...     elif ddm.warning_detected:
        ...         warnings.append(i)
        >>> drifts, warnings[0]
        ([1067], 1023)
    """

    def __init__(self, warm_start: int = 30, warning_threshold: float = 2.0,
                 drift_threshold: float = 3.0) -> None:
        super().__init__()
        self.warm_start: Final = require_int("warm_start", warm_start, minimum=0)
        self.warning_threshold: Final = require_float("warning_threshold", warning_threshold,
                                                      low=0.0, low_open=True)
        self.drift_threshold: Final = require_float("drift_threshold", drift_threshold,
                                                    low=0.0, low_open=True)
        if self.drift_threshold < self.warning_threshold:
            raise OptionsError(
                f"drift_threshold ({drift_threshold!r}) must be at least warning_threshold "
                f"({warning_threshold!r})")
        self._reset()

    @property
    def warning_detected(self) -> bool:
        """Whether the last value put the detector in the warning zone (never with a drift)."""
        return self._warning_detected

    def _check(self, x: SupportsFloat) -> float:
        value = super()._check(x)
        if not 0.0 <= value <= 1.0:
            # Not an error indicator; river takes it and fails (math domain error) once the
            # error rate turns negative.
            raise StreamValueError(f"DDM.update needs an error indicator in [0, 1], got {x!r}")
        return value

    def _reset(self) -> None:
        self._warning_detected = False
        self._n = 0.0
        self._rate = 0.0
        self._rate_min = math.inf
        self._std_min = math.inf
        self._level_min = math.inf  # the lowest p_i + s_i, p_min + s_min

    def _step(self, value: float) -> bool:
        self._n += 1.0
        self._rate += (1.0 / self._n) * (value - self._rate)
        std = math.sqrt(max(self._rate * (1.0 - self._rate), 0.0) / self._n)
        if self._n <= self.warm_start:
            return False
        level = self._rate + std
        if level <= self._level_min:
            self._rate_min, self._std_min = self._rate, std
            self._level_min = self._rate_min + self._std_min
        drifted = level > self._rate_min + self.drift_threshold * self._std_min
        self._warning_detected = (not drifted
                                  and level > self._rate_min + self.warning_threshold
                                  * self._std_min)
        return drifted
