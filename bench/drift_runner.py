"""One tool's drift measurement in a fresh process, for bench/drift.py.

    python bench/drift_runner.py TOOL DATA_DIR

TOOL is driftline, evidently_legacy, evidently_current, alibi_detect or nannyml. DATA_DIR holds
reference.parquet, current.parquet, current_next.parquet and columns.json (written by
bench/drift.py). Prints one JSON object on stdout: read_seconds (pandas reading the three files,
not part of any timing), rss_after_read_mb, cold_seconds, repeat_seconds (None where the tool has
no fitted state to reuse), peak_mb, process_maxrss_mb and the verdicts on current.parquet.

peak_mb is the kernel's peak resident set size of this process (VmHWM), restarted with
/proc/self/clear_refs once the three DataFrames are read: interpreter, DataFrames, the tool's
imports and its work, nothing subtracted, but without the Parquet reader's transient buffers
(which differ between the pyarrow versions of the environments). process_maxrss_mb is
ru_maxrss of the whole process, read included. Without clear_refs peak_mb falls back to it.

Imports only the measured tool, so it runs inside the peers' own virtual environments too
(those have no driftline installed). Each tool gets the input its documentation asks for,
prepared before the clock starts: DataFrames for driftline, Evidently and NannyML; float arrays
and integer category codes for Alibi Detect (the encoding is not timed, which favours it).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

THRESHOLD = 0.05  # p-value threshold for the peers' KS and chi-square tests (their default)


def _maxrss_mb() -> float:
    # The whole process's peak, read included; Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Restart the kernel's peak-RSS count (VmHWM) from the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _release_read_buffers() -> None:
    # Arrow's allocator keeps freed pages; hand them back so that every tool starts from
    # the same resident DataFrames.
    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def run_driftline(data: dict[str, Any]) -> dict[str, Any]:
    from detectors import DriftOptions, ReferenceProfile, detect_drift

    reference, current, current_next = data["reference"], data["current"], data["next"]

    def cold() -> Any:
        profile = ReferenceProfile.fit(reference)
        return profile, detect_drift(profile, current, DriftOptions())

    cold_seconds, (profile, report) = _timed(cold)
    repeat_seconds, _next_report = _timed(lambda: detect_drift(profile, current_next,
                                                               DriftOptions()))
    return {
        "cold_seconds": cold_seconds,
        "repeat_seconds": repeat_seconds,
        "features": {name: f.drifted for name, f in report.features.items()},
        "methods": {name: f.method for name, f in report.features.items()},
        "dataset_drifted": report.dataset_drifted,
    }


def run_evidently_legacy(data: dict[str, Any]) -> dict[str, Any]:
    from evidently.legacy.metric_preset import DataDriftPreset
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report

    mapping = ColumnMapping(numerical_features=data["numeric"],
                            categorical_features=data["categorical"])
    report = Report(metrics=[DataDriftPreset()])
    # run() computes every metric; as_dict() below only reads the results, untimed.
    cold_seconds, _ = _timed(lambda: report.run(reference_data=data["reference"],
                                                current_data=data["current"],
                                                column_mapping=mapping))
    results = {m["metric"]: m["result"] for m in report.as_dict()["metrics"]}
    table = results["DataDriftTable"]["drift_by_columns"]
    return {
        "cold_seconds": cold_seconds,
        "repeat_seconds": None,
        "features": {name: bool(table[name]["drift_detected"]) for name in data["columns"]},
        "methods": {name: table[name]["stattest_name"] for name in data["columns"]},
        "dataset_drifted": bool(results["DatasetDriftMetric"]["dataset_drift"]),
    }


def run_evidently_current(data: dict[str, Any]) -> dict[str, Any]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=data["numeric"],
                                categorical_columns=data["categorical"])

    def cold() -> Any:
        reference = Dataset.from_pandas(data["reference"], data_definition=definition)
        current = Dataset.from_pandas(data["current"], data_definition=definition)
        return Report([DataDriftPreset()]).run(current, reference)

    cold_seconds, snapshot = _timed(cold)
    features: dict[str, bool] = {}
    methods: dict[str, str] = {}
    dataset_drifted = False
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            # The current API reports each column's score and threshold, not a verdict; the
            # verdict is Evidently's rule: a p-value test drifts at score < threshold (K-S at
            # <=), a distance at score >= threshold.
            name, score, threshold = config["column"], metric["value"], config["threshold"]
            method = config["method"]
            if "p_value" in method:
                drifted = score <= threshold if method.startswith("K-S") else score < threshold
            else:
                drifted = score >= threshold
            features[name], methods[name] = bool(drifted), method
        elif config["type"].endswith("DriftedColumnsCount"):
            dataset_drifted = bool(metric["value"]["share"] >= config["drift_share"])
    return {"cold_seconds": cold_seconds, "repeat_seconds": None, "features": features,
            "methods": methods, "dataset_drifted": dataset_drifted}


def run_alibi_detect(data: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    from alibi_detect.cd import ChiSquareDrift, KSDrift

    numeric, categorical = data["numeric"], data["categorical"]
    reference = data["reference"]
    codes = {c: pd.Index(sorted(reference[c].unique())) for c in categorical}

    def encode(frame: pd.DataFrame) -> Any:
        return np.column_stack([codes[c].get_indexer(frame[c]) for c in categorical])

    ref_numeric = reference[numeric].to_numpy(dtype=np.float64)
    ref_codes = encode(reference)
    windows = {key: (data[key][numeric].to_numpy(dtype=np.float64), encode(data[key]))
               for key in ("current", "next")}

    def cold() -> Any:
        ks = KSDrift(ref_numeric, p_val=THRESHOLD)
        chi = ChiSquareDrift(ref_codes, p_val=THRESHOLD)
        x_numeric, x_codes = windows["current"]
        return ks, chi, ks.predict(x_numeric), chi.predict(x_codes)

    def repeat() -> Any:
        x_numeric, x_codes = windows["next"]
        return ks.predict(x_numeric), chi.predict(x_codes)

    cold_seconds, (ks, chi, ks_result, chi_result) = _timed(cold)
    repeat_seconds, _ = _timed(repeat)
    # Alibi Detect's per-feature verdict: p < p_val / n_features (its default Bonferroni).
    features = {}
    for names, result in ((numeric, ks_result), (categorical, chi_result)):
        limit = result["data"]["threshold"]
        features.update({n: bool(p < limit) for n, p in zip(names, result["data"]["p_val"],
                                                             strict=True)})
    dataset_drifted = bool(ks_result["data"]["is_drift"] or chi_result["data"]["is_drift"])
    return {"cold_seconds": cold_seconds, "repeat_seconds": repeat_seconds, "features": features,
            "methods": {**dict.fromkeys(numeric, "ks"), **dict.fromkeys(categorical, "chi2")},
            "dataset_drifted": dataset_drifted}


def run_nannyml(data: dict[str, Any]) -> dict[str, Any]:
    import nannyml
    from nannyml.thresholds import ConstantThreshold

    columns, categorical = data["columns"], data["categorical"]
    # NannyML alerts on KS when D leaves mean +- 3 sd of the reference chunks' D, which one
    # chunk cannot give; the asymptotic two-sample critical value of D at p = 0.05 makes its
    # verdict comparable to the p-value tests (chi2 alerts at p < 0.05 by itself).
    n, m = len(data["reference"]), len(data["current"])
    critical = 1.3581 * ((n + m) / (n * m)) ** 0.5
    # One chunk per window, so that each window is compared as a whole (the default chunker
    # would cut it into ten).
    calculator = nannyml.UnivariateDriftCalculator(
        column_names=columns, treat_as_categorical=categorical,
        continuous_methods=["kolmogorov_smirnov"], categorical_methods=["chi2"], chunk_number=1,
        thresholds={"kolmogorov_smirnov": ConstantThreshold(upper=critical)})

    def cold() -> Any:
        calculator.fit(data["reference"])
        return calculator.calculate(data["current"])

    cold_seconds, result = _timed(cold)
    repeat_seconds, _ = _timed(lambda: calculator.calculate(data["next"]))
    frame = result.filter(period="analysis").to_df()
    features = {}
    for name in columns:
        method = "chi2" if name in categorical else "kolmogorov_smirnov"
        features[name] = bool(frame[(name, method, "alert")].iloc[-1])
    return {"cold_seconds": cold_seconds, "repeat_seconds": repeat_seconds, "features": features,
            "methods": {n: ("chi2" if n in categorical else "kolmogorov_smirnov") for n in columns},
            "dataset_drifted": None}


RUNNERS = {"driftline": run_driftline, "evidently_legacy": run_evidently_legacy,
           "evidently_current": run_evidently_current, "alibi_detect": run_alibi_detect,
           "nannyml": run_nannyml}


def main() -> None:
    tool, directory = sys.argv[1], Path(sys.argv[2])
    runner = RUNNERS[tool]
    columns = json.loads((directory / "columns.json").read_text())
    started = time.perf_counter()
    data: dict[str, Any] = {
        "reference": pd.read_parquet(directory / "reference.parquet"),
        "current": pd.read_parquet(directory / "current.parquet"),
        "next": pd.read_parquet(directory / "current_next.parquet"),
    }
    read_seconds = time.perf_counter() - started
    data.update(numeric=columns["numeric"], categorical=columns["categorical"],
                columns=columns["numeric"] + columns["categorical"])
    _release_read_buffers()
    rss_after_read_mb = _status_mb("VmRSS")
    reset = _reset_peak()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = runner(data)
    peak_mb = _status_mb("VmHWM") if reset else None
    result.update(tool=tool, read_seconds=read_seconds, rss_after_read_mb=rss_after_read_mb,
                  peak_mb=peak_mb if peak_mb is not None else _maxrss_mb(),
                  peak_from="VmHWM after the read" if reset and peak_mb else "ru_maxrss",
                  process_maxrss_mb=_maxrss_mb())
    # The tools may print notices on stdout; the JSON is the last line.
    sys.stdout.write("\n" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
