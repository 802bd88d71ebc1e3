"""The simulation behind bench/calibration.py: settings, repetitions, sequential stopping.

For each setting (a `DriftOptions`: the default `auto`, each method alone with its default
threshold, and the calibrated settings proposed in docs/calibration.md) and each size n
(reference and current both of n values), a repetition draws a fresh reference and a fresh
current sample, fits `ReferenceProfile.fit` on the reference, and tests four windows against
it: the current sample itself (no drift: a flag is a false alarm) and the current sample
shifted by 0.05, 0.1 and 0.5 standard deviations. A rate is the share of flagged
repetitions, with a Wilson 95% interval.

Why both samples are drawn fresh: a reference fitted once and reused by every repetition
gives the false-alarm rate *conditional on that one reference*, which for a p-value test can
be far from its level (a reference whose mean is off by chance is "drifted" against most
windows). The rate a method promises, and the one that tells settings apart, averages over
references too. Within a repetition the four windows share the reference and the current
noise, and all settings see the same samples (common random numbers): each rate is unbiased,
the rates of one repetition are correlated.

Repetitions run in batches of 100 (the first batch for every cell, so that a rate of 0 or 1 is
known to ±1.9%); after each batch a cell whose Wilson half-width is at most 0.02 stops, the
others go on to at most `max_reps` (2400: the half-width at a rate of 50%). Which cells run in
a batch depends only on earlier batches, and repetition i of size n draws from
`default_rng([seed, distribution, n, i])`, so the numbers do not depend on the worker count.

Speed: `detect_drift` re-reads and re-sorts the window once per setting; the bench instead
builds each window once and calls the method functions of `detectors.select.METHODS` (the
ones `detect_drift` calls), applying `detect_drift`'s verdict rule. One shortcut: above
10,000 values the KS verdict p < threshold is taken as D > kstwo.isf(threshold, effective
n), from the library's statistic, because scipy needs about a second for the tiny p-values
of a shifted 1M window (see `Window._ks_asymptotic`). The first repetitions of every size
(`verify_reps`) also run `detect_drift` for every cell and stop the run if a verdict differs.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from detectors import DriftOptions, ReferenceProfile, auto_method, detect_drift
from detectors.columns import NumericWindow
from detectors.numeric.ks import ks_statistic
from detectors.profile import NumericProfile
from detectors.select import METHODS

Z_95 = 1.959963984540054
KS_EXACT_MAX = 10_000  # detectors.numeric.ks: scipy's exact p-value up to this many values
TARGET_HALF_WIDTH = 0.02
BATCH = 100
SHIFTS = (0.0, 0.05, 0.1, 0.5)  # in standard deviations of the distribution; 0 = no drift
# Distributions: the standard normal for everything, and a skewed one (lognormal(0, 1)) for
# false alarms only. The value is the standard deviation that shifts are measured in.
DISTRIBUTIONS = {"normal": 1.0, "lognormal": math.sqrt((math.e - 1.0) * math.e)}
DISTRIBUTION_IDS = {name: i for i, name in enumerate(DISTRIBUTIONS)}


@dataclass(frozen=True)
class Setting:
    """One row group of the document: a label, the options, and what it stands for."""

    label: str
    options: DriftOptions
    note: str
    proposed: bool = False


SETTINGS = (
    Setting("auto", DriftOptions(), "the default: `ks` (p < 0.05) up to 1000 reference rows, "
            "`wasserstein` (normed distance ≥ 0.1) above, as Evidently chooses"),
    Setting("ks", DriftOptions(numeric_method="ks"), "two-sample Kolmogorov-Smirnov, p < 0.05"),
    Setting("wasserstein", DriftOptions(numeric_method="wasserstein"),
            "Wasserstein-1 / std of the reference ≥ 0.1"),
    Setting("psi", DriftOptions(numeric_method="psi"), "PSI over Sturges bins ≥ 0.1"),
    Setting("jensenshannon", DriftOptions(numeric_method="jensenshannon"),
            "Jensen-Shannon distance over Sturges bins ≥ 0.1"),
    Setting("t_test", DriftOptions(numeric_method="t_test"), "Student's t, p < 0.05"),
    Setting("mannwhitney", DriftOptions(numeric_method="mannwhitney"),
            "Mann-Whitney U (two-sided), p < 0.05"),
    Setting("ks, threshold 0.01", DriftOptions(numeric_method="ks", threshold=0.01),
            "proposed: `DriftOptions(numeric_method=\"ks\", threshold=0.01)`", proposed=True),
    Setting("ks, threshold 0.01, min_effect_size 0.05",
            DriftOptions(numeric_method="ks", threshold=0.01, min_effect_size=0.05),
            "proposed: `DriftOptions(numeric_method=\"ks\", threshold=0.01, "
            "min_effect_size=0.05)`: also |Cohen's d| ≥ 0.05", proposed=True),
)

Cell = tuple[int, int]  # (index into SETTINGS, index into SHIFTS)


def wilson(successes: int, trials: int) -> tuple[float, float, float]:
    """Observed rate and the Wilson 95% interval (low, high)."""
    if trials == 0:
        return math.nan, 0.0, 1.0
    rate = successes / trials
    z2 = Z_95 * Z_95
    centre = (rate + z2 / (2 * trials)) / (1 + z2 / trials)
    half = Z_95 * math.sqrt(rate * (1 - rate) / trials + z2 / (4 * trials**2)) / (1 + z2 / trials)
    return rate, max(centre - half, 0.0), min(centre + half, 1.0)


def half_width(successes: int, trials: int) -> float:
    _rate, low, high = wilson(successes, trials)
    return (high - low) / 2


def draw(distribution: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if distribution == "normal":
        return rng.standard_normal(n)
    return rng.lognormal(0.0, 1.0, n)


@functools.cache
def _ks_critical(threshold: float, effective_n: float) -> float:
    return float(stats.kstwo.isf(threshold, effective_n))


class Window:
    """One window against one fitted reference column; each method computed at most once."""

    def __init__(self, reference: NumericProfile, values: np.ndarray) -> None:
        self.reference = reference
        self.window = NumericWindow(values)
        self._results: dict[str, tuple[float | None, float | None]] = {}
        self._effect: float | None = None
        self._ks_d: float | None = None

    def result(self, name: str) -> tuple[float | None, float | None]:
        if name not in self._results:
            self._results[name] = METHODS[name].function(self.reference, self.window)
        return self._results[name]

    def effect_size(self) -> float:
        # Cohen's d with the pooled standard deviation, as detect_drift computes it.
        if self._effect is None:
            ref, values = self.reference, self.window.values
            n1, n2 = ref.n, values.size
            var1 = ref.std**2 * n1 / (n1 - 1)
            var2 = float(values.var(ddof=1))
            pooled = math.sqrt(((n1 - 1) * var1 + (n2 - 1) * var2) / (n1 + n2 - 2))
            self._effect = (float(values.mean()) - ref.mean) / pooled
        return self._effect

    def _ks_asymptotic(self, threshold: float) -> bool:
        # Above 10,000 values `ks` takes its p-value from kstwo.sf(D, effective n), which
        # costs scipy about a second when the p-value is tiny and n is 500k (any real shift
        # at 1M). p < threshold is D > kstwo.isf(threshold, effective n): the same verdict
        # from the library's statistic; within 1e-6 of the critical value, the library's own
        # p-value decides.
        if self._ks_d is None:
            self._ks_d = ks_statistic(self.reference, self.window)
        d = self._ks_d
        big, small = sorted([float(self.reference.n), float(self.window.n)], reverse=True)
        critical = _ks_critical(threshold, float(np.round(big * small / (big + small))))
        if abs(d - critical) > 1e-6 * critical:
            return d > critical
        _statistic, p_value = self.result("ks")
        return p_value is not None and p_value < threshold

    def drifted(self, options: DriftOptions) -> bool:
        """detect_drift's verdict for a single numeric column (no correction applies)."""
        name = options.numeric_method
        if name == "auto":
            name = auto_method(self.reference, self.window)
        spec = METHODS[name]
        threshold = options.threshold if options.threshold is not None else \
            spec.default_threshold
        if spec.p_value:
            # Effect size first: when it is too small the p-value cannot change the verdict.
            if options.min_effect_size is not None and \
                    abs(self.effect_size()) < options.min_effect_size:
                return False
            if name == "ks" and max(self.reference.n, self.window.n) > KS_EXACT_MAX:
                return self._ks_asymptotic(threshold)
            _statistic, p_value = self.result(name)
            return p_value is not None and p_value < threshold
        statistic, _p = self.result(name)
        return statistic is not None and statistic >= threshold


@dataclass(frozen=True)
class Chunk:
    """Repetitions `reps` of one distribution and size, for the cells still running."""

    distribution: str
    n: int
    reps: tuple[int, ...]
    cells: tuple[Cell, ...]
    seed: int
    verify_reps: int


def run_chunk(chunk: Chunk) -> tuple[np.ndarray, int]:
    """Verdicts (repetition x cell) and how many were checked against detect_drift."""
    flags = np.zeros((len(chunk.reps), len(chunk.cells)), dtype=bool)
    sigma = DISTRIBUTIONS[chunk.distribution]
    checked = 0
    for row, rep in enumerate(chunk.reps):
        rng = np.random.default_rng(
            [chunk.seed, DISTRIBUTION_IDS[chunk.distribution], chunk.n, rep])
        reference = draw(chunk.distribution, rng, chunk.n)
        current = draw(chunk.distribution, rng, chunk.n)
        profile = ReferenceProfile.fit(pd.DataFrame({"x": reference}))
        column = profile.column("x")
        if not isinstance(column, NumericProfile):
            raise TypeError(f"column x fitted as {type(column).__name__}, expected numeric")
        # Every test is invariant to the order of the window's values; sorting once here
        # makes each shifted window's own sort nearly free.
        ordered = np.sort(current)
        windows: dict[int, Window] = {}
        for col, (s, c) in enumerate(chunk.cells):
            shift = SHIFTS[c] * sigma
            if c not in windows:
                windows[c] = Window(column, ordered + shift)
            flags[row, col] = windows[c].drifted(SETTINGS[s].options)
            if rep < chunk.verify_reps:
                report = detect_drift(profile, pd.DataFrame({"x": current + shift}),
                                      SETTINGS[s].options)
                if report.features["x"].drifted != flags[row, col]:
                    raise RuntimeError(
                        f"fast verdict {flags[row, col]} differs from detect_drift's for "
                        f"{SETTINGS[s].label!r}, shift {SHIFTS[c]}, n={chunk.n}, "
                        f"{chunk.distribution} repetition {rep}")
                checked += 1
    return flags, checked


@dataclass
class Tally:
    """Flags and repetitions of one cell."""

    flagged: int = 0
    reps: int = 0


@dataclass
class SizeResult:
    """All cells of one distribution and size."""

    distribution: str
    n: int
    tallies: dict[Cell, Tally]
    seconds: float
    checked: int


def _split(reps: Sequence[int], parts: int) -> Iterator[tuple[int, ...]]:
    size = max(1, math.ceil(len(reps) / parts))
    for start in range(0, len(reps), size):
        yield tuple(reps[start:start + size])


def run_size(distribution: str, n: int, shifts: Sequence[int], *, seed: int, max_reps: int,
             verify_reps: int, jobs: int, pool: ProcessPoolExecutor | None) -> SizeResult:
    """Every setting at the shifts `shifts` (indices into SHIFTS), until each cell stops."""
    started = time.perf_counter()
    tallies = {(s, c): Tally() for s in range(len(SETTINGS)) for c in shifts}
    active = list(tallies)
    checked = 0
    start = 0
    while active:
        reps = list(range(start, min(start + BATCH, max_reps)))
        chunks = [Chunk(distribution, n, part, tuple(active), seed, verify_reps)
                  for part in _split(reps, 2 * jobs)]
        results = pool.map(run_chunk, chunks) if pool else map(run_chunk, chunks)
        for flags, count in results:
            checked += count
            for col, cell in enumerate(active):
                tallies[cell].flagged += int(flags[:, col].sum())
                tallies[cell].reps += flags.shape[0]
        start += len(reps)
        active = [cell for cell in active
                  if tallies[cell].reps < max_reps
                  and half_width(tallies[cell].flagged, tallies[cell].reps) > TARGET_HALF_WIDTH]
    seconds = time.perf_counter() - started
    print(f"{distribution} n={n}: {start} repetitions at most, {seconds:.1f} s, "
          f"{checked} verdicts checked against detect_drift", file=sys.stderr, flush=True)
    return SizeResult(distribution, n, tallies, seconds, checked)

