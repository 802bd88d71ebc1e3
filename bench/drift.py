"""Drift detection against Evidently, Alibi Detect and NannyML on the same data (issue 4).

    python bench/drift.py [--json] [--sizes 10k/10k,100k/100k,1M/100k] [--repeats N]
                          [--peers evidently,alibi_detect,nannyml]

Data: 40 numeric columns (normal, log-normal, gamma, uniform, and two integer columns of five
values) and 10 categorical columns of eight string categories, generated with a fixed seed per
size. The current window shifts 10 numeric columns by 0.04 to 0.4 reference standard deviations
(some under Evidently's Wasserstein threshold of 0.1, most over it) and changes the category
shares of 3 categorical columns by different amounts; `current_next` is a second window drawn
the same way with another seed. Each size is written once to Parquet in a temporary directory
and every tool reads it there; the read is not timed (each tool's own read time is reported in
its entry under `peers`, and once per size in the table).

Each tool runs in its own fresh process (bench/drift_runner.py), so that its peak memory is its
own: peak_mb is the kernel's peak resident set size of that process (VmHWM), restarted through
/proc/self/clear_refs right after the Parquet read, so it counts the interpreter, the three
DataFrames, the tool's imports and its work, nothing subtracted, but not the reader's transient
buffers (drift_runner.py's own output also has the process's `ru_maxrss`, read included). With
--repeats N each tool runs in N fresh processes, the tools taking turns (driftline, Evidently,
Alibi Detect, NannyML, driftline, ...) so that a change in the machine's load falls on all of
them alike, and every figure is the median.

- driftline: cold = `ReferenceProfile.fit` + `detect_drift` with the default `DriftOptions`
  (method auto); repeat = `detect_drift` of `current_next` against the fitted profile.
- Evidently: its legacy API (`evidently.legacy` Report with `DataDriftPreset`, explicit
  `ColumnMapping`) and its current API (`evidently.Report` + `DataDriftPreset` on `Dataset`s),
  default (auto) methods, each timed over `run()`. `evidently_seconds` is the faster of the two.
  Evidently keeps no fitted state between reports, so its repeat time is its cold time (not
  measured a second time).
- Alibi Detect: `KSDrift` on the numeric columns and `ChiSquareDrift` on the categorical ones
  (integer codes); cold = construct both + predict, repeat = predict on `current_next`.
- NannyML: `UnivariateDriftCalculator` with KS for continuous and chi2 for categorical columns,
  one chunk per window; cold = fit + calculate, repeat = calculate on `current_next`.

`verdicts_equal`: driftline's per-feature and dataset verdicts on `current` equal Evidently's
under both of its APIs (the current API reports scores and thresholds; its verdicts are derived
with Evidently's rule); each comparison is also under peers.evidently. Alibi Detect and NannyML
use other tests (KS with a Bonferroni correction; NannyML's KS, binned from 10,000 reference
rows, and chi2), so only their counts of drifted features are reported, not compared.

Alibi Detect and NannyML pin versions of numpy, pandas and scipy that differ from driftline's,
so each runs in a virtual environment of its own created here under .driftline/bench-venvs/
(pip installs by package name; reused while the requirements stay the same). Evidently is one
of driftline's own dependencies and runs in the project's interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "drift_runner.py"
VENVS = ROOT / ".driftline" / "bench-venvs"
SIZES = {"10k/10k": (10_000, 10_000), "100k/100k": (100_000, 100_000),
         "1M/100k": (1_000_000, 100_000)}
# Peers that run in their own virtual environment, and what pip installs there.
PEER_REQUIREMENTS = {
    # alibi-detect 0.13.0 pins numpy < 2, which pyarrow 21 and later refuse.
    "alibi_detect": ["alibi-detect==0.13.0", "pyarrow<21"],
    # NannyML imports statsmodels without declaring it (shared/notes/ecosystem.md section 8).
    "nannyml": ["nannyml==0.13.1", "statsmodels", "pyarrow"],
}
PEERS = ("evidently", "alibi_detect", "nannyml")
N_NUMERIC, N_CATEGORICAL, N_CATEGORIES = 40, 10, 8
SHIFTED_NUMERIC = 10  # the first ten numeric columns drift
SHIFTS = np.linspace(0.04, 0.4, SHIFTED_NUMERIC)  # in reference standard deviations
CHANGED_CATEGORICAL = {0: 0.15, 1: 0.35, 2: 0.7}  # column -> weight of the other shares


# --- data -------------------------------------------------------------------------------------

def _numeric_column(rng: np.random.Generator, index: int, size: int) -> np.ndarray:
    if index >= N_NUMERIC - 2:
        # Five distinct values: Evidently's auto choice bins such columns (jensenshannon).
        return np.minimum(rng.poisson(1.2, size), 4).astype(np.int64)
    family = index % 4
    if family == 0:
        return rng.normal(10.0 * index, 1.0 + index, size)
    if family == 1:
        return rng.lognormal(1.0, 0.5, size)
    if family == 2:
        return rng.gamma(2.0, 3.0, size)
    return rng.uniform(-index, index, size)


def _frame(seed: int, size: int, *, drifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shares_rng = np.random.default_rng(1234)  # category shares are the same for every window
    columns: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        values = _numeric_column(rng, i, size)
        if drifted and i < SHIFTED_NUMERIC:
            values = values + SHIFTS[i] * _reference_std(i)
        columns[f"num_{i:02d}"] = values
    names = np.array([f"cat_{k}" for k in range(N_CATEGORIES)], dtype=object)
    for j in range(N_CATEGORICAL):
        shares = shares_rng.dirichlet(np.full(N_CATEGORIES, 2.0))
        other = shares_rng.dirichlet(np.full(N_CATEGORIES, 2.0))
        if drifted and j in CHANGED_CATEGORICAL:
            weight = CHANGED_CATEGORICAL[j]
            shares = (1 - weight) * shares + weight * other
        columns[f"cat_{j}"] = names[rng.choice(N_CATEGORIES, size, p=shares)]
    return pd.DataFrame(columns)


def _reference_std(index: int) -> float:
    # The population standard deviation of each family (the shift is in these units).
    family = index % 4
    if family == 0:
        return 1.0 + index
    if family == 1:
        return float(np.sqrt((np.exp(0.25) - 1) * np.exp(2.0 + 0.25)))
    if family == 2:
        return float(np.sqrt(2.0) * 3.0)
    return float(2.0 * index / np.sqrt(12.0))


def write_data(directory: Path, label: str) -> None:
    n_reference, n_current = SIZES[label]
    seed = 100 * (list(SIZES).index(label) + 1)
    _frame(seed, n_reference, drifted=False).to_parquet(directory / "reference.parquet")
    _frame(seed + 1, n_current, drifted=True).to_parquet(directory / "current.parquet")
    _frame(seed + 2, n_current, drifted=True).to_parquet(directory / "current_next.parquet")
    columns = {"numeric": [f"num_{i:02d}" for i in range(N_NUMERIC)],
               "categorical": [f"cat_{j}" for j in range(N_CATEGORICAL)]}
    (directory / "columns.json").write_text(json.dumps(columns))


# --- peer environments ------------------------------------------------------------------------

def peer_python(peer: str) -> Path:
    """The interpreter of the peer's own virtual environment, created on first use."""
    venv = VENVS / peer
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = "\n".join(PEER_REQUIREMENTS[peer])
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"creating {venv} ({', '.join(PEER_REQUIREMENTS[peer])})", file=sys.stderr)
    # The base interpreter, not this virtual environment's: the peer gets none of our packages.
    base = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base), "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER_REQUIREMENTS[peer]],
                   check=True)
    stamp.write_text(wanted)
    return python


# --- measurement ------------------------------------------------------------------------------

def run_tool(tool: str, python: Path, directory: Path) -> dict[str, Any]:
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(python), str(RUNNER), tool, str(directory)], env=env, cwd=ROOT,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return float(statistics.median(values)) if values else None


def summarise_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One tool's figures: medians over its runs, verdicts from the first."""
    first = runs[0]
    return {
        "cold_seconds": _median(runs, "cold_seconds"),
        "repeat_seconds": _median(runs, "repeat_seconds"),
        "peak_mb": _median(runs, "peak_mb"),
        "read_seconds": _median(runs, "read_seconds"),
        "rss_after_read_mb": _median(runs, "rss_after_read_mb"),
        "cold_runs_seconds": [r["cold_seconds"] for r in runs],
        "repeat_runs_seconds": [r["repeat_seconds"] for r in runs],
        "features": first["features"],
        "methods": first["methods"],
        "dataset_drifted": first["dataset_drifted"],
        "n_drifted": sum(first["features"].values()),
    }


def measure_tools(tools: dict[str, Path], directory: Path, repeats: int
                  ) -> dict[str, dict[str, Any]]:
    """Every tool `repeats` times, taking turns, each run in a fresh process."""
    runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in tools}
    for _ in range(repeats):
        for tool, python in tools.items():
            runs[tool].append(run_tool(tool, python, directory))
            print(f"  {tool}: cold {runs[tool][-1]['cold_seconds']:.3f} s", file=sys.stderr)
    return {tool: summarise_runs(tool_runs) for tool, tool_runs in runs.items()}


def _verdicts_equal(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    return bool(ours["features"] == theirs["features"]
                and ours["dataset_drifted"] == theirs["dataset_drifted"])


def _slim(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("features", "methods")}


def measure_size(label: str, repeats: int, peers: list[str]) -> dict[str, Any]:
    own = Path(sys.executable)
    tools = {"driftline": own}
    if "evidently" in peers:
        tools.update(evidently_legacy=own, evidently_current=own)
    for peer in ("alibi_detect", "nannyml"):
        if peer in peers:
            tools[peer] = peer_python(peer)  # created before any timing
    with tempfile.TemporaryDirectory(prefix="driftline-bench-") as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        write_data(directory, label)
        print(f"{label}: data written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        measured = measure_tools(tools, directory, repeats)
    ours = measured["driftline"]
    results: dict[str, dict[str, Any]] = {}
    if "evidently" in peers:
        legacy, current = measured["evidently_legacy"], measured["evidently_current"]
        faster = legacy if legacy["cold_seconds"] <= current["cold_seconds"] else current
        results["evidently"] = {
            "cold_seconds": faster["cold_seconds"],
            "repeat_seconds": faster["cold_seconds"],  # no fitted state: repeat = cold
            "peak_mb": faster["peak_mb"],
            "api": "legacy" if faster is legacy else "current",
            "legacy": _slim(legacy),
            "current": _slim(current),
            "verdicts_equal_legacy": _verdicts_equal(ours, legacy),
            "verdicts_equal_current": _verdicts_equal(ours, current),
            "methods_equal": ours["methods"] == _driftline_names(legacy["methods"]),
            "n_drifted": legacy["n_drifted"],
            "dataset_drifted": legacy["dataset_drifted"],
            "read_seconds": legacy["read_seconds"],
        }
    for peer in ("alibi_detect", "nannyml"):
        if peer in peers:
            results[peer] = _slim(measured[peer])
    return summarise(ours, results)


def _driftline_names(evidently_methods: dict[str, str]) -> dict[str, str]:
    names = {"Wasserstein distance (normed)": "wasserstein",
             "Jensen-Shannon distance": "jensenshannon", "K-S p_value": "ks",
             "chi-square p_value": "chisquare", "Z-test p_value": "z"}
    return {column: names.get(m, m) for column, m in evidently_methods.items()}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def summarise(ours: dict[str, Any], peers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    evidently = peers.get("evidently", {})
    colds = [p["cold_seconds"] for p in peers.values()]
    repeats = [p["repeat_seconds"] for p in peers.values() if p["repeat_seconds"] is not None]
    return {
        "evidently_seconds": evidently.get("cold_seconds"),
        "cold_seconds": ours["cold_seconds"],
        "repeat_seconds": ours["repeat_seconds"],
        "speedup_cold": _ratio(evidently.get("cold_seconds"), ours["cold_seconds"]),
        "speedup_repeat": _ratio(evidently.get("repeat_seconds"), ours["repeat_seconds"]),
        "verdicts_equal": (evidently.get("verdicts_equal_legacy", False)
                           and evidently.get("verdicts_equal_current", False)),
        "best_peer_cold_seconds": min(colds) if colds else None,
        "best_peer_repeat_seconds": min(repeats) if repeats else None,
        "evidently_peak_mb": evidently.get("peak_mb"),
        "driftline_peak_mb": ours["peak_mb"],
        "peers": peers,
        # Not in the JSON output (see main): for the table only.
        "_driftline": _slim(ours),
    }


# --- output -----------------------------------------------------------------------------------

def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["size       tool               cold s    repeat s   peak MB  drifted  "
             "verdicts = driftline's"]
    for label, row in results.items():
        ours = row["_driftline"]
        lines.append(f"{label:<10} driftline        {_seconds(row['cold_seconds']):>8} "
                     f"{_seconds(row['repeat_seconds']):>10} {row['driftline_peak_mb']:>9.0f}"
                     f"  {ours['n_drifted']:>7}  -")
        for peer, result in row["peers"].items():
            entries = [(peer, result)]
            if peer == "evidently":
                entries = [("evidently legacy", result["legacy"]),
                           ("evidently current", result["current"])]
            for name, entry in entries:
                equal = "-"
                if peer == "evidently":
                    key = "verdicts_equal_legacy" if "legacy" in name else "verdicts_equal_current"
                    equal = "yes" if result[key] else "NO"
                repeat = entry["repeat_seconds"] if peer != "evidently" else None
                lines.append(f"{'':<10} {name:<17} {_seconds(entry['cold_seconds']):>8} "
                             f"{_seconds(repeat):>10} {entry['peak_mb']:>9.0f}"
                             f"  {entry['n_drifted']:>7}  {equal}")
        peer_cold = _ratio(row["best_peer_cold_seconds"], row["cold_seconds"])
        peer_repeat = _ratio(row["best_peer_repeat_seconds"], row["repeat_seconds"])
        lines.append(f"{'':<10} speed-up vs Evidently: cold {_fmt_ratio(row['speedup_cold'])}, "
                     f"repeat {_fmt_ratio(row['speedup_repeat'])}; vs fastest peer: cold "
                     f"{_fmt_ratio(peer_cold)}, repeat {_fmt_ratio(peer_repeat)}; "
                     f"Parquet read (untimed) {_seconds(ours['read_seconds'])} s")
    return "\n".join(lines)


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--sizes", default=",".join(SIZES),
                        help=f"comma-separated subset of {', '.join(SIZES)}")
    parser.add_argument("--repeats", type=int, default=1,
                        help="fresh processes per tool; figures are medians")
    parser.add_argument("--peers", default=",".join(PEERS),
                        help=f"comma-separated subset of {', '.join(PEERS)}")
    args = parser.parse_args()
    labels = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in labels if s not in SIZES]
    if unknown or args.repeats < 1:
        parser.error(f"--sizes must be among {', '.join(SIZES)} (got {unknown}) "
                     "and --repeats at least 1")
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if set(peers) - set(PEERS):
        parser.error(f"--peers must be among {', '.join(PEERS)}, got {args.peers!r}")
    results = {label: measure_size(label, args.repeats, peers) for label in labels}
    if args.json:
        public = {label: {k: v for k, v in row.items() if not k.startswith("_")}
                  for label, row in results.items()}
        print(json.dumps({"sizes": public}, indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
