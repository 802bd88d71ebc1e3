"""The shape every streaming change detector shares: river's `update(x)` and `drift_detected`.

A detector takes one value at a time. `update(x)` returns the detector, and the read-only
`drift_detected` says whether that value completed a change. As river does
(`river.base.DriftDetector`), a detector forgets everything at the update that follows a
detection and starts afresh from that value, so the points where `drift_detected` is True
are river's points.

Values are checked before they touch the state. river lets a NaN in: ADWIN and
Page-Hinkley keep it in a running sum, after which every comparison is False and they are
blind for good; KSWIN is blind until it leaves the window; DDM fails with a TypeError once
past its warm start. Here a value that is not a finite number raises `StreamValueError`
(a `ValueError`) and leaves the detector as it was.
"""

from __future__ import annotations

import abc
import math
import numbers
from typing import Self, SupportsFloat

from detectors.errors import OptionsError, StreamValueError


class StreamingDetector(abc.ABC):
    """A change detector over a stream of numbers, one `update` per value.

    Examples:
        >>> from detectors.streaming import PageHinkley
        >>> detector: StreamingDetector = PageHinkley(min_instances=3, threshold=5.0)
        >>> [detector.update(x).drift_detected for x in [0, 0, 0, 0, 10, 10]]
        [False, False, False, False, True, False]
        >>> detector.n_detections
        1
    """

    def __init__(self) -> None:
        self._drift_detected = False
        self._n_detections = 0

    @property
    def drift_detected(self) -> bool:
        """Whether the last value completed a change."""
        return self._drift_detected

    @property
    def n_detections(self) -> int:
        """How many updates have detected a change since the detector was built."""
        return self._n_detections

    def update(self, x: SupportsFloat) -> Self:
        """Take one value; afterwards `drift_detected` says whether it completed a change.

        Args:
            x: The next value of the stream.

        Returns:
            The detector itself, so that `detector.update(x).drift_detected` reads naturally.

        Raises:
            StreamValueError: `x` is not a finite number (or, for DDM, not in [0, 1]); the
                detector is unchanged.
        """
        value = self._check(x)
        if self._drift_detected:
            # river's detectors reset at the update after a detection, not at the detection
            # itself, so the state that found the change stays readable until then.
            self._reset()
        self._drift_detected = self._step(value)
        if self._drift_detected:
            self._n_detections += 1
        return self

    def _check(self, x: SupportsFloat) -> float:
        """The value as a float, or StreamValueError when it is not a finite number."""
        # float() would parse a string; a stream of text is a caller's bug, not a number.
        value = math.nan if isinstance(x, str | bytes) else float(x)
        if not math.isfinite(value):
            raise StreamValueError(f"{type(self).__name__}.update needs a finite number, got {x!r}")
        return value

    @abc.abstractmethod
    def _reset(self) -> None:
        """Forget the stream (parameters stay)."""

    @abc.abstractmethod
    def _step(self, value: float) -> bool:
        """Add one checked value to the state; True when it completes a change."""


def require_int(name: str, value: object, *, minimum: int) -> int:
    """`value` when it is an integer (not a bool) of at least `minimum`, else OptionsError.

    Examples:
        >>> require_int("clock", 32, minimum=1)
        32
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise OptionsError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def require_float(name: str, value: object, *, low: float, high: float = math.inf,
                  low_open: bool = False, high_open: bool = False) -> float:
    """`value` as a float when it is a real number in the interval, else OptionsError.

    The interval is [low, high], each end open when `low_open` / `high_open` says so.

    Examples:
        >>> require_float("delta", 0.002, low=0.0, high=1.0, low_open=True, high_open=True)
        0.002
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionsError(f"{name} must be a number, got {value!r}")
    number = float(value)
    above = number > low if low_open else number >= low
    below = number < high if high_open else number <= high
    if math.isnan(number) or not (above and below):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise OptionsError(f"{name} must be in {interval}, got {value!r}")
    return number
