"""ADWIN: adaptive windowing, a change in the mean between two parts of a recent window.

Bifet and Gavaldà, "Learning from time-changing data with adaptive windowing", SDM 2007
(the ADWIN2 variant of section 4). The window is kept compressed as an exponential
histogram: row `i` holds up to `max_buckets` buckets of 2**i values each, newest last, a
bucket being the sum of its values and their sum of squared deviations. A full row merges
its two oldest buckets into one of the next row (variances combined as Babcock et al.,
PODS 2003). Every `clock` values the window is split at each bucket boundary, oldest part
W0 against newest W1; when the means differ by more than

    eps = sqrt(2 m sigma^2 ln(2 ln(n) / delta)) + 2/3 m ln(2 ln(n) / delta),
    m = 1 / (n0 - min_window_length + 1) + 1 / (n1 - min_window_length + 1),

(sigma^2 the window's variance, n its length) the oldest bucket is dropped and the splits
are tried again. The detection points equal river's `river.drift.ADWIN` (0.26, whose
`rust_src/adwin.rs` ports the former `adwin_c.pyx`): the arithmetic is done in the same
order, so the floating-point values and the decisions are the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from detectors.streaming.base import StreamingDetector, require_float, require_int


@dataclass(slots=True)
class _Row:
    """The buckets of one size, oldest first: their sums and sums of squared deviations."""

    totals: list[float] = field(default_factory=list)
    variances: list[float] = field(default_factory=list)


class ADWIN(StreamingDetector):
    """Adaptive windowing (Bifet and Gavaldà 2007) with river's parameters and results.

    Args:
        delta: Significance of the cut test, in (0, 1); smaller detects less.
        clock: Test the window every `clock` values (1 tests at every value).
        max_buckets: Buckets of each size kept before the two oldest merge (at least 1).
        min_window_length: Splits leaving fewer values than this (at least 1) on a side are
            not tested.
        grace_period: No test until the window holds more than this many values.

    Raises:
        OptionsError: A parameter is out of range (a `ValueError`; the message names it).

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> stream = np.concatenate([rng.normal(0.0, 1.0, 1000), rng.normal(2.0, 1.0, 1000)])
        >>> adwin = ADWIN()
        >>> [i for i, x in enumerate(stream) if adwin.update(x).drift_detected]
        [1023]
        >>> round(adwin.estimation, 1), adwin.width
        (2.0, 976)
    """

    def __init__(self, delta: float = 0.002, clock: int = 32, max_buckets: int = 5,
                 min_window_length: int = 5, grace_period: int = 10) -> None:
        super().__init__()
        self.delta: Final = require_float("delta", delta, low=0.0, high=1.0,
                                          low_open=True, high_open=True)
        self.clock: Final = require_int("clock", clock, minimum=1)
        self.max_buckets: Final = require_int("max_buckets", max_buckets, minimum=1)
        # river accepts 0; with max_buckets=1 a split can then leave the new side empty and
        # its mean a division by zero.
        self.min_window_length: Final = require_int("min_window_length", min_window_length,
                                                    minimum=1)
        self.grace_period: Final = require_int("grace_period", grace_period, minimum=0)
        self._reset()

    @property
    def width(self) -> int:
        """How many values the window holds."""
        return int(self._width)

    @property
    def estimation(self) -> float:
        """The mean of the window (0.0 while it is empty)."""
        return self._total / self._width if self._width else 0.0

    def _reset(self) -> None:
        self._rows: list[_Row] = [_Row()]
        self._width = 0.0
        self._total = 0.0
        self._variance = 0.0  # sum of squared deviations from the window's mean
        self._ticks = 0

    def _step(self, value: float) -> bool:
        self._insert(value)
        self._ticks += 1
        if self._ticks % self.clock != 0 or self._width <= self.grace_period:
            return False
        drifted = False
        while self._has_cut():
            drifted = True
            self._drop_oldest()
        return drifted

    def _insert(self, value: float) -> None:
        row = self._rows[0]
        row.totals.append(value)
        row.variances.append(0.0)
        # Welford's update of the sum of squared deviations, term by term as river does.
        self._width += 1.0
        if self._width > 1.0:
            deviation = value - self._total / (self._width - 1.0)
            self._variance += (self._width - 1.0) * deviation * deviation / self._width
        self._total += value
        self._merge_full_rows()

    def _merge_full_rows(self) -> None:
        level = 0
        while len(self._rows[level].totals) > self.max_buckets:
            row = self._rows[level]
            size = float(1 << level)
            first, second = row.totals[0] / size, row.totals[1] / size
            total = row.totals[0] + row.totals[1]
            variance = row.variances[0] + row.variances[1] + size * 0.5 * (first - second) * (
                first - second)
            if level + 1 == len(self._rows):
                self._rows.append(_Row())
            self._rows[level + 1].totals.append(total)
            self._rows[level + 1].variances.append(variance)
            del row.totals[:2], row.variances[:2]
            level += 1

    def _drop_oldest(self) -> None:
        # With max_buckets=1 a row can be empty while an older one is not; river reads such an
        # empty row as zeros and then fails, so empty rows at the old end are removed here.
        while not self._rows[-1].totals:
            self._rows.pop()
        last = len(self._rows) - 1
        row = self._rows[last]
        size = float(1 << last)
        total, variance = row.totals.pop(0), row.variances.pop(0)
        mean = total / size
        self._width -= size
        self._total -= total
        window_mean = self._total / self._width
        self._variance -= variance + size * self._width * (mean - window_mean) * (
            mean - window_mean) / (size + self._width)
        if not row.totals:
            self._rows.pop()

    def _has_cut(self) -> bool:
        """Whether some split of the window, oldest part against newest, has different means."""
        n_old, n_new = 0.0, self._width
        sum_old, sum_new = 0.0, self._total
        for level in range(len(self._rows) - 1, -1, -1):
            size = float(1 << level)
            totals = self._rows[level].totals
            for k, total in enumerate(totals):
                n_old += size
                n_new -= size
                sum_old += total
                sum_new -= total
                if level == 0 and k == len(totals) - 1:
                    return False  # the newest bucket always stays on the new side
                if (n_new >= self.min_window_length and n_old >= self.min_window_length
                        and self._exceeds_bound(n_old, n_new, sum_old / n_old - sum_new / n_new)):
                    return True
        return False

    def _exceeds_bound(self, n_old: float, n_new: float, gap: float) -> bool:
        """The test of the paper's Theorem 3, with its variance-aware (Bernstein) bound."""
        log_term = math.log(2.0 * math.log(self._width) / self.delta)
        harmonic = 1.0 / (n_old - self.min_window_length + 1.0) + 1.0 / (
            n_new - self.min_window_length + 1.0)
        radicand = 2.0 * harmonic * (self._variance / self._width) * log_term
        if not radicand >= 0.0:
            # Rounding can leave the running variance a hair below zero; river's square root
            # is then NaN and the comparison False.
            return False
        bound = math.sqrt(radicand) + 2.0 / 3.0 * log_term * harmonic
        return abs(gap) > bound
