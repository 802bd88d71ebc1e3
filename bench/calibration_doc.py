"""docs/calibration.md from the measured cells of bench/calibration_runs.py.

Every number and every comparison in the prose is read from the cells, so a run with
another seed or other sizes writes a document that still matches its tables.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy
from calibration_runs import (
    BATCH,
    SETTINGS,
    SHIFTS,
    TARGET_HALF_WIDTH,
    SizeResult,
    Tally,
    wilson,
)


def _cell(tally: Tally | None) -> str:
    if tally is None or tally.reps == 0:
        return "—"
    rate, low, high = wilson(tally.flagged, tally.reps)
    return f"{100 * rate:.1f}% ±{100 * (high - low) / 2:.1f} ({tally.reps})"




def _n(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else \
        f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def format_sizes(sizes: Sequence[int]) -> str:
    return ", ".join(_n(n) for n in sizes)


def _find(results: Sequence[SizeResult], distribution: str, n: int) -> SizeResult | None:
    return next((r for r in results if r.distribution == distribution and r.n == n), None)


def _goal(s: int, results: Sequence[SizeResult]) -> str:
    """One line: how close setting `s` comes to the project goal, from the measured cells."""
    above, limit = [], []
    for r in results:
        if r.distribution != "normal":
            continue
        tally = r.tallies[(s, 0)]
        _rate, low, high = wilson(tally.flagged, tally.reps)
        if low > 0.05:
            above.append(r.n)
        elif high > 0.05:
            limit.append(r.n)
    parts = []
    if above:
        parts.append(f"false alarms above 5% at n = {format_sizes(above)}")
    if limit:
        parts.append(f"false alarms within noise of 5% at n = {format_sizes(limit)}")
    if not above and not limit:
        parts.append("false alarms below 5% at every n")
    at_100k = _find(results, "normal", 100_000)
    detection_fails = detection_limit = False
    if at_100k is None:
        parts.append("0.1\u03c3 at 100k not measured in this run")
    else:
        tally = at_100k.tallies[(s, SHIFTS.index(0.1))]
        _rate, low, high = wilson(tally.flagged, tally.reps)
        verdict = "meets ≥ 95%" if low >= 0.95 else "fails ≥ 95%" if high < 0.95 else \
            "within noise of 95%"
        detection_fails, detection_limit = high < 0.95, low < 0.95 <= high
        parts.append(f"0.1\u03c3 at 100k caught {_cell(tally)}: {verdict}")
    skewed = [r.n for r in results if r.distribution == "lognormal"
              and wilson(r.tallies[(s, 0)].flagged, r.tallies[(s, 0)].reps)[1] > 0.05]
    if skewed:
        parts.append(f"on lognormal data, false alarms above 5% at n = {format_sizes(skewed)}")
    overall = "fails the goal" if above or detection_fails else \
        "meets the goal within the measurement's noise" if limit or detection_limit else \
        "meets the goal"
    if at_100k is None and not above:
        overall = "goal not fully measured (no 100k row)"
    proposed = " (proposed)" if SETTINGS[s].proposed else ""
    return f"- **{SETTINGS[s].label}**{proposed} {overall}: " + "; ".join(parts) + "."


def _index(label: str) -> int:
    return next(i for i, s in enumerate(SETTINGS) if s.label == label)


def _pct(results: Sequence[SizeResult], label: str, shift: float, n: int) -> str:
    found = _find(results, "normal", n)
    tally = found.tallies.get((_index(label), SHIFTS.index(shift))) if found else None
    return f"{100 * tally.flagged / tally.reps:.1f}%" if tally and tally.reps else "—"


def _span(results: Sequence[SizeResult], labels: Sequence[str], shift: float,
          sizes: Sequence[int]) -> str:
    rates = [100 * t.flagged / t.reps for r in results if r.distribution == "normal"
             and r.n in sizes for label in labels
             if (t := r.tallies[(_index(label), SHIFTS.index(shift))]).reps]
    if not rates:
        return "—"
    low, high = f"{min(rates):.1f}%", f"{max(rates):.1f}%"
    return low if low == high else f"{low} to {high}"


def _reading(results: Sequence[SizeResult], sizes: Sequence[int]) -> list[str]:
    """Prose on the p-value tests, the binned distances and the proposals, from the cells."""
    large = [n for n in sizes if n >= 1000]
    ks01, ks01_effect = "ks, threshold 0.01", "ks, threshold 0.01, min_effect_size 0.05"
    big = [n for n in sizes if n >= 10_000]
    binned = ["psi", "jensenshannon"]
    return [
        "`ks`, `t_test` and `mannwhitney` are tests at level 5%, so their false alarms sit at "
        f"about 5% at every n (here {_span(results, ['ks', 't_test', 'mannwhitney'], 0.0, sizes)}"
        "): within noise of the limit, not clearly under it. `auto` has `ks`'s false alarms up "
        "to 1k rows and `wasserstein`'s from 2k on; what it gives up is detection (next section).",
        "",
        "`psi` and `jensenshannon` at 0.1 flag most windows without drift at n = 100 "
        f"({_pct(results, 'psi', 0.0, 100)} and {_pct(results, 'jensenshannon', 0.0, 100)}); "
        f"from 1k on they catch 0.1\u03c3 in {_span(results, binned, 0.1, large)} "
        f"of repetitions and 0.5\u03c3 in {_span(results, binned, 0.5, large)}; "
        "their thresholds are minimum effects somewhere between 0.1\u03c3 and 0.5\u03c3.",
        "",
        "The proposed settings keep `ks` and move its threshold to p < 0.01: false alarms "
        f"{_span(results, [ks01], 0.0, sizes)} over all n, clear of 5% rather than at it, and "
        f"0.1\u03c3 at 100k still caught in {_pct(results, ks01, 0.1, 100_000)}. The price is "
        f"power at small n: 0.5\u03c3 at n = 100 is caught in {_pct(results, ks01, 0.5, 100)} of "
        f"repetitions against {_pct(results, 'ks', 0.5, 100)} for `ks` at 0.05, and 0.1\u03c3 "
        f"at 1k in {_pct(results, ks01, 0.1, 1000)} against {_pct(results, 'ks', 0.1, 1000)}. "
        "Adding `min_effect_size=0.05` barely moves the rates up to 2k and leaves 0.1\u03c3 at "
        f"100k at {_pct(results, ks01_effect, 0.1, 100_000)}, but makes a 0.05\u03c3 shift a "
        f"coin flip from 10k on ({_span(results, [ks01_effect], 0.05, big)}) where `ks` alone "
        f"catches it in {_span(results, [ks01], 0.05, [n for n in big if n >= 100_000])} "
        "at 100k and above: it is Evidently's construction, a minimum effect, placed at half "
        "the goal's shift instead of on it. It suits those who do not want alerts for shifts "
        "under about 0.05\u03c3 however large the window.",
    ]


def _row_rate(results: Sequence[SizeResult], s: int, c: int, n: int) -> str:
    found = _find(results, "normal", n)
    return _cell(found.tallies.get((s, c))) if found else "not measured"


def render(results: Sequence[SizeResult], meta: dict[str, str]) -> str:
    sizes = sorted({r.n for r in results if r.distribution == "normal"})
    skewed = sorted({r.n for r in results if r.distribution == "lognormal"})
    shift_01 = SHIFTS.index(0.1)
    lines = [
        "# Calibration of the numeric drift methods",
        "",
        "How often each numeric setting flags drift when there is none (false alarms) and when "
        "the mean moved by 0.05\u03c3, 0.1\u03c3 and 0.5\u03c3 (detection), at sizes from "
        f"{_n(sizes[0])} to {_n(sizes[-1])} values (issue 4). Produced by "
        "`bench/calibration.py`; every number below comes from the run described here.",
        "",
        "## How it was produced",
        "",
        f"- Command: `{meta['command']}` (seed {meta['seed']}, {meta['jobs']} worker "
        f"process{'' if meta['jobs'] == '1' else 'es'}), started {meta['started_at']}, "
        f"took {meta['minutes']} minutes.",
        f"- Machine: {meta['machine']}; load average {meta['load_start']} at the start and "
        f"{meta['load_end']} at the end (the machine was shared with other work). "
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"pandas {pd.__version__}; detectors at commit {meta['commit']}.",
        f"- Sizes: n = {format_sizes(sizes)}, the **reference and the current window both of "
        "n values**. 2k is the first size where `auto` switches from `ks` to `wasserstein` "
        "(above 1000 reference rows).",
        "- Data: standard normal; a shift of k\u03c3 adds k to every current value. False alarms "
        "were also measured on lognormal(0, 1) data"
        + (f" (n = {format_sizes(skewed)})." if skewed else " (not in this run)."),
        "- One repetition draws a **fresh reference and a fresh current sample**, fits "
        "`ReferenceProfile.fit` on the reference, and tests four windows against it: the current "
        "sample (no drift) and the same sample shifted by 0.05\u03c3, 0.1\u03c3 and 0.5\u03c3. "
        "Reusing one fitted reference for all repetitions would not be valid: the false-alarm "
        "rate would be conditional on that one reference (one whose mean is off by chance "
        "flags most windows), while the rate a test promises, and the one compared here, "
        "averages over references. All settings see the same samples, so rates in one row are "
        "correlated; each is unbiased.",
        f"- Repetitions: in batches of {BATCH}; every cell gets at least {BATCH}, then a cell "
        f"stops once its Wilson 95% half-width is ≤ {TARGET_HALF_WIDTH:.2f}, or at "
        f"{meta['max_reps']} repetitions. Rates near 0 or 1 stop at 100; a rate near 5% needs "
        "about 500, one near 50% about 2400. Repetition i of size n draws from "
        "`numpy.random.default_rng([seed, distribution, n, i])`: the numbers do not depend on "
        "the number of workers.",
        "- Verdicts come from the method functions that `detect_drift` calls, with its verdict "
        "rule (p-value < threshold and, when set, |Cohen's d| ≥ min_effect_size; distance ≥ "
        "threshold), each window built once for all settings. One shortcut: above 10,000 "
        "values `ks` takes its p-value from `scipy.stats.kstwo.sf(D, effective n)`, which takes "
        "scipy about a second for the tiny p-values of a shifted 1M window, so the bench decides "
        "p < threshold as D > `kstwo.isf(threshold, effective n)` (the same verdict, from the "
        "library's statistic; the library's p-value decides within 1e-6 of the critical "
        "value). The first "
        f"{meta['verify_reps']} repetitions of every size also ran `detect_drift` itself on "
        f"every cell: {meta['checked']} verdicts, all equal.",
        "- A cell reads `rate ±half-width (repetitions)`: the share of repetitions flagged, "
        "the half-width of its Wilson 95% interval in percentage points (the interval is "
        "centred slightly towards 50%, so near 0 it is asymmetric), and the repetitions used.",
        "",
        "## The goal, and how close each setting comes",
        "",
        "The project goal: **a default that keeps false alarms ≤ 5% at every n while still "
        "catching 0.1\u03c3 at n = 100k ≥ 95% of the time.** Read against the normal data: a "
        "setting fails the false-alarm part at n when its whole interval lies above 5% and is "
        "*within noise of 5%* when the interval contains 5% (a test at level 5% is exactly "
        "there); the detection part is judged the same way against 95%.",
        "",
    ]
    lines += [_goal(s, results) for s in range(len(SETTINGS))]
    lines += ["", *_reading(results, sizes)]
    lines += ["", "## Why Evidently's default catches 0.1\u03c3 about half the time", ""]
    w = next(i for i, s in enumerate(SETTINGS) if s.label == "wasserstein")
    measured = ", ".join(f"{_n(n)}: {_row_rate(results, w, shift_01, n)}"
                         for n in sizes if n > 1000)
    lines += [
        "Above 1000 reference rows `auto` is `wasserstein` with threshold 0.1, and its statistic "
        "is the Wasserstein-1 distance divided by the reference's standard deviation. The "
        "distance between a distribution and itself shifted by k\u03c3 is exactly k\u03c3, so "
        "for a 0.1\u03c3 shift the normed statistic is 0.1 plus sampling noise (to first order the "
        "difference of the two sample means, over the reference's standard deviation), and "
        "that noise is as often negative as positive. A threshold of 0.1 sits on the centre of "
        "the statistic's distribution: about half the windows fall below it, at every n. A "
        "larger n narrows the noise but does not move its centre, so detection of 0.1\u03c3 stays "
        "near 50% instead of rising to 100%, while 0.05\u03c3 (statistic ≈ 0.05) is caught less "
        "and less and 0.5\u03c3 always. "
        f"Measured for `wasserstein` at 0.1\u03c3: {measured or 'no size above 1000 in this run'}.",
        f"At n = 100 (where `auto` uses `ks`) the noise alone reaches 0.1 in "
        f"{_pct(results, 'wasserstein', 0.0, 100)} of repetitions without drift. "
        "The threshold is a minimum effect (\"shifts of at least about 0.1\u03c3\"), not a "
        "significance level, which is also why its false alarms vanish as n grows: "
        "with no drift the statistic is only noise, which shrinks like 1/√n.",
        "",
        "## Results",
        "",
    ]
    for s, setting in enumerate(SETTINGS):
        lines += [f"### {setting.label}", "", setting.note + ".", ""]
        header = "| n | false alarms | 0.05\u03c3 | 0.1\u03c3 | 0.5\u03c3 |"
        rule = "| --- | --- | --- | --- | --- |"
        if skewed:
            header += " false alarms, lognormal |"
            rule += " --- |"
        lines += [header, rule]
        for n in sizes:
            cells = [_row_rate(results, s, c, n) for c in range(len(SHIFTS))]
            if skewed:
                found = _find(results, "lognormal", n)
                cells.append(_cell(found.tallies.get((s, 0))) if found else "—")
            lines.append(f"| {_n(n)} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "## Left out",
        "",
        "- Categorical columns and the other numeric methods (`anderson`, `cramer_von_mises`, "
        "`energy`, `mmd`, the chi-square family on few distinct values).",
        "- Windows of a different size than the reference, and changes of scale or shape (only "
        "the mean moved).",
        "- Shifts of the lognormal data (false alarms only).",
        "- Several features at once: with many columns the dataset verdict and any multiple-"
        "testing correction change the rates; these are per-column rates.",
        "",
    ]
    return "\n".join(lines)

