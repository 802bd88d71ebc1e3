"""The cost of a full monitoring run against a drift-only run of the same window, in one run.

    python bench/run.py [--json] [--repeats N] [--store-repeats N] [--no-store] [--profile]

Data: bench/drift.py's 100k/100k generator (40 numeric and 10 categorical columns, the window
drifted as there), plus a binary score from a logistic model of two of the features and a
label drawn from it (calibrated scores), for a reference of 100,000 rows with `prediction`
and `label` and a window of 100,000 events. The model declares the 50 features and a numeric
prediction, with the default drift, quality and performance settings (CBPE on).

Compute, in memory (the window as `RunInput`, built as the monitor builds it from the store):
- drift only: `detect_model_drift` on the window's frame (the frame built beforehand);
- full: `compute_run` on the same window (frame, drift, data quality, realized performance,
  CBPE estimate, label delay, segments when configured).
Cases: every event labelled; 30% labelled; every event labelled with segments by one
categorical feature. Each figure is the median of --repeats warm runs, the drift-only and the
full run alternating so that a change of machine load hits both. The parts of the full run
are timed in separate, equally many runs by wrapping the functions `compute_run` calls
(`other` is the rest: label mask, version counts, window facts); the goal is a ratio of at
most 1.5.

Service path, on SQLite (--no-store skips it): the same events and labels inserted into a
temporary store with `insert_predictions` / `insert_labels` (5,000 a transaction), then
`read_window` + `run_input` + `compute_run` against `read_window` + `run_input` + drift only,
--store-repeats times each; `read_window` alone is timed too, to show what it costs.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# bench/drift.py's generator (this directory is on sys.path when run as a script).
from drift import N_CATEGORICAL, N_NUMERIC, _frame

import collector.run as run_module
from collector.config import ModelSettings, ReferenceSettings, SegmentSettings
from collector.events import LabelEvent, PredictionEvent
from collector.monitor import run_input
from collector.reference import PREDICTION_COLUMN, ModelReference
from collector.run import PreparedLabels, RunInput, compute_run, detect_model_drift
from collector.store.engine import make_engine, make_session_factory
from collector.store.migrate import upgrade
from collector.store.queries import insert_labels, insert_predictions
from collector.store.window import Window, read_window
from detectors import CBPE

N_EVENTS = 100_000
SEED_REFERENCE, SEED_WINDOW = 200, 201  # bench/drift.py's seeds for its 100k/100k data
GOAL_RATIO = 1.5
INSERT_BATCH = 5_000
MODEL = "bench"
VERSION = "7"
SEGMENT_FEATURE = "cat_3"
CASES = (("all labelled", 1.0, False), ("30% labelled", 0.3, False),
         ("all labelled, segments", 1.0, True))
# The functions of compute_run timed as its parts: (owner, attribute, part).
PARTS: tuple[tuple[Any, str, str], ...] = (
    (RunInput, "frame", "frame"),
    (run_module, "detect_model_drift", "drift"),
    (run_module, "assess_quality", "quality"),
    (run_module, "prepare_labels", "labels"),
    (PreparedLabels, "performance", "performance"),
    (CBPE, "estimate", "estimate"),
    (run_module, "compute_segments", "segments"),
    (run_module, "label_delay", "delay"),
)
PART_NAMES = (*(part for _owner, _name, part in PARTS), "other")


# --- data -------------------------------------------------------------------------------------

def _scores(frame: pd.DataFrame) -> np.ndarray:
    # num_00 is N(0, 1) and num_04 N(40, 5) in the reference; the window shifts both a little,
    # so the scores move with the features, as a real model's would.
    logit = (0.9 * frame["num_00"].to_numpy(dtype=np.float64)
             + 0.6 * (frame["num_04"].to_numpy(dtype=np.float64) - 40.0) / 5.0)
    scores: np.ndarray = 1.0 / (1.0 + np.exp(-(logit - 0.8)))
    return scores


@dataclass(frozen=True)
class Workload:
    """The reference table and the window: features, scores, labels and times."""

    reference: pd.DataFrame
    features: pd.DataFrame
    scores: np.ndarray
    labels: np.ndarray
    prediction_at: pd.DatetimeIndex
    label_at: pd.DatetimeIndex


def workload(n_events: int) -> Workload:
    rng = np.random.default_rng(SEED_WINDOW)
    reference = _frame(SEED_REFERENCE, N_EVENTS, drifted=False)
    reference_scores = _scores(reference)
    reference[PREDICTION_COLUMN] = reference_scores
    reference["label"] = (rng.random(len(reference)) < reference_scores).astype(int)
    features = _frame(SEED_WINDOW, n_events, drifted=True)
    scores = _scores(features)
    labels = (rng.random(n_events) < scores).astype(int)
    start = datetime(2026, 11, 30, tzinfo=UTC)
    # Whole milliseconds: the store keeps what an event's ISO timestamp carries.
    offsets = np.sort(rng.integers(0, 3_600_000, n_events))
    prediction_at = pd.DatetimeIndex(pd.Timestamp(start) + pd.to_timedelta(offsets, "ms"))
    delays = rng.integers(60_000, 86_400_000, n_events)
    label_at = pd.DatetimeIndex(prediction_at + pd.to_timedelta(delays, "ms"))
    return Workload(reference, features, scores, labels, prediction_at, label_at)


def model_settings(*, segments: bool) -> ModelSettings:
    features = {f"num_{i:02d}": "numeric" for i in range(N_NUMERIC)}
    features.update({f"cat_{j}": "categorical" for j in range(N_CATEGORICAL)})
    return ModelSettings(
        name=MODEL, features=features, prediction="numeric",  # type: ignore[arg-type]
        reference=ReferenceSettings(path=Path("reference.parquet")),
        segments=SegmentSettings(by=[SEGMENT_FEATURE] if segments else []))


def labelled_mask(n_events: int, share: float) -> np.ndarray:
    if share >= 1.0:
        return np.ones(n_events, dtype=bool)
    return np.random.default_rng(SEED_WINDOW + 1).random(n_events) < share


def memory_input(work: Workload, model: ModelSettings, labelled: np.ndarray) -> RunInput:
    """The window as `collector.monitor.run_input` builds it from a stored window."""
    labels = [int(v) if keep else None for v, keep in zip(work.labels, labelled, strict=True)]
    label_at = work.label_at.where(labelled)
    segment_values = {key: work.features[key].tolist() for key in model.segments.by}
    return RunInput(
        features=work.features[list(model.features)], predictions=work.scores.tolist(),
        labels=labels, prediction_at=work.prediction_at, label_at=pd.DatetimeIndex(label_at),
        versions=[VERSION] * len(labels), segment_values=segment_values)


# --- timing -----------------------------------------------------------------------------------

def _timed(call: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds (every thread of the process) of one call."""
    gc.collect()  # a full collection left over from the previous call is not this call's cost
    started, cpu_started = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - started, time.process_time() - cpu_started


def alternate(calls: dict[str, Callable[[], object]], repeats: int, *, warm_up: bool = True
              ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall and CPU seconds of each call over `repeats` rounds, after one warm-up call each.

    The order rotates every round, so that a change of the machine's load hits every call.
    """
    for call in calls.values() if warm_up else ():
        call()
    wall: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_index in range(repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            seconds, cpu_seconds = _timed(calls[name])
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    return wall, cpu


@contextmanager
def part_timers(totals: dict[str, float]) -> Iterator[None]:
    """Add the time spent in each of `PARTS` to `totals` while the block runs."""
    saved: list[tuple[Any, str, Any]] = []

    def wrap(original: Callable[..., Any], part: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[part] += time.perf_counter() - started
        return timed

    try:
        for owner, name, part in PARTS:
            original = owner.__dict__[name]  # the plain function, also for a method
            saved.append((owner, name, original))
            setattr(owner, name, wrap(original, part))
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def parts_of(call: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median seconds of each part of the full run over `repeats` runs."""
    runs: list[dict[str, float]] = []
    for _ in range(repeats):
        totals = dict.fromkeys(PART_NAMES, 0.0)
        with part_timers(totals):
            totals["other"] = _timed(call)[0]
        totals["other"] -= sum(v for k, v in totals.items() if k != "other")
        runs.append(totals)
    return {name: statistics.median(r[name] for r in runs) for name in PART_NAMES}


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


# --- the cases --------------------------------------------------------------------------------

def measure_case(work: Workload, share: float, segments: bool, repeats: int,
                 references: dict[bool, ModelReference]) -> dict[str, Any]:
    model = model_settings(segments=segments)
    reference = references[segments]
    data = memory_input(work, model, labelled_mask(len(work.labels), share))
    frame = data.frame()
    samples, cpu = alternate({
        "drift": lambda: detect_model_drift(model, reference.profile, frame),
        "full": lambda: compute_run(model, reference, data),
    }, repeats)
    result = compute_run(model, reference, data)
    drift, full = _median(samples["drift"]), _median(samples["full"])
    cpu_drift, cpu_full = _median(cpu["drift"]), _median(cpu["full"])
    return {
        "labelled_share": share,
        "n_labelled": result.window.n_labelled,
        "segments": list(model.segments.by),
        "drift_seconds": drift,
        "full_seconds": full,
        "ratio": full / drift,
        "goal_met": full / drift <= GOAL_RATIO,
        "cpu_drift_seconds": cpu_drift,
        "cpu_full_seconds": cpu_full,
        "cpu_ratio": cpu_full / cpu_drift,
        "parts_seconds": parts_of(lambda: compute_run(model, reference, data), repeats),
        "drift_runs_seconds": samples["drift"],
        "full_runs_seconds": samples["full"],
        "dataset_drifted": result.dataset_drifted,
        "notes": list(result.notes),
    }


def profile_full(work: Workload, reference: ModelReference, top: int = 25) -> str:
    model = model_settings(segments=False)
    data = memory_input(work, model, labelled_mask(len(work.labels), 1.0))
    compute_run(model, reference, data)
    profiler = cProfile.Profile()
    profiler.enable()
    compute_run(model, reference, data)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# --- the service path -------------------------------------------------------------------------

def events(work: Workload, labelled: np.ndarray
           ) -> tuple[list[PredictionEvent], list[LabelEvent]]:
    records = work.features.to_dict("records")
    predictions = [
        PredictionEvent(event_id=f"p-{i}", model=MODEL, timestamp=at.to_pydatetime(),
                        features=features, prediction=float(score), model_version=VERSION,
                        request_id=f"r-{i}")
        for i, (features, score, at) in enumerate(
            zip(records, work.scores, work.prediction_at, strict=True))]
    labels = [
        LabelEvent(event_id=f"l-{i}", model=MODEL, request_id=f"r-{i}",
                   timestamp=work.label_at[i].to_pydatetime(), label=int(work.labels[i]))
        for i in np.flatnonzero(labelled)]
    return predictions, labels


def measure_store(work: Workload, reference: ModelReference, repeats: int,
                  memory_result: dict[str, Any]) -> dict[str, Any]:
    model = model_settings(segments=False)
    labelled = labelled_mask(len(work.labels), 1.0)
    predictions, labels = events(work, labelled)
    with tempfile.TemporaryDirectory(prefix="driftline-bench-run-") as tmp:
        engine = make_engine(f"sqlite+pysqlite:///{tmp}/store.db")
        try:
            upgrade(engine)
            sessions = make_session_factory(engine)
            received_at = datetime.now(UTC)
            started = time.perf_counter()
            for batch, insert in ((predictions, insert_predictions), (labels, insert_labels)):
                for offset in range(0, len(batch), INSERT_BATCH):
                    with sessions.begin() as session:
                        insert(session, batch[offset:offset + INSERT_BATCH],  # type: ignore[arg-type]
                               received_at)
            insert_seconds = time.perf_counter() - started
            del predictions, labels
            now = work.prediction_at.max().to_pydatetime() + timedelta(seconds=1)

            def read() -> Window:
                with sessions() as session:
                    return read_window(session, MODEL, now=now, last_events=len(work.labels),
                                       expected=list(model.features))

            def drift_path() -> object:
                return detect_model_drift(model, reference.profile,
                                          run_input(model, read()).frame())

            def full_path() -> object:
                return compute_run(model, reference, run_input(model, read()))

            # The warm-up: the first read fills SQLite's and the kernel's page caches.
            stored = compute_run(model, reference, run_input(model, read()))
            memory = compute_run(model, reference, memory_input(work, model, labelled))
            samples, cpu = alternate({"read": read, "drift": drift_path, "full": full_path},
                                     repeats, warm_up=False)
        finally:
            engine.dispose()
    read_s, drift_s, full_s = (_median(samples[k]) for k in ("read", "drift", "full"))
    n_events = len(work.labels)
    return {
        "insert_seconds": insert_seconds,
        "insert_events_per_second": (n_events + int(labelled.sum())) / insert_seconds,
        "read_seconds": read_s,
        "drift_path_seconds": drift_s,
        "full_path_seconds": full_s,
        "ratio": full_s / drift_s,
        "goal_met": full_s / drift_s <= GOAL_RATIO,
        "cpu_ratio": _median(cpu["full"]) / _median(cpu["drift"]),
        "read_share_of_full_path": read_s / full_s,
        "compute_ratio_in_memory": memory_result["ratio"],
        "same_result_as_in_memory": stored.to_dict() == memory.to_dict(),
        "runs_seconds": samples,
    }


# --- output -----------------------------------------------------------------------------------

def _goal(met: bool) -> str:
    return "met" if met else "MISSED"


def table(results: dict[str, Any]) -> str:
    lines = [f"run cost: {results['n_events']:,} events x 50 features (40 numeric, 10 "
             f"categorical), binary score and label; reference {N_EVENTS:,} rows; medians of "
             f"{results['repeats']} warm runs ({results['cpus']} cores, load average "
             f"{results['load_average']:.1f})",
             f"{'case':<24} {'drift only s':>12} {'full run s':>11} {'ratio':>7} "
             f"{'CPU ratio':>10}  goal <= {GOAL_RATIO}x"]
    for name, case in results["cases"].items():
        lines.append(f"{name:<24} {case['drift_seconds']:>12.3f} {case['full_seconds']:>11.3f} "
                     f"{case['ratio']:>6.2f}x {case['cpu_ratio']:>9.2f}x  "
                     f"{_goal(case['goal_met'])}")
    lines.append("")
    lines.append("parts of the full run, s (timed in separate runs)")
    lines.append(f"{'case':<24} " + " ".join(f"{p:>11}" for p in PART_NAMES))
    for name, case in results["cases"].items():
        parts = case["parts_seconds"]
        lines.append(f"{name:<24} " + " ".join(f"{parts[p]:>11.3f}" for p in PART_NAMES))
    store = results.get("store")
    if store is not None:
        lines += [
            "",
            f"service path on SQLite (all labelled), medians of {results['store_repeats']} "
            "runs",
            f"insert {results['n_events']:,} predictions + labels: "
            f"{store['insert_seconds']:.1f} s ({store['insert_events_per_second']:,.0f} events/s)",
            f"read_window {store['read_seconds']:.2f} s; read + drift only "
            f"{store['drift_path_seconds']:.2f} s; read + full run {store['full_path_seconds']:.2f}"
            f" s; ratio {store['ratio']:.2f}x (CPU {store['cpu_ratio']:.2f}x, "
            f"{_goal(store['goal_met'])}); the read is "
            f"{100 * store['read_share_of_full_path']:.0f}% of the full path",
            "same result as in memory: " + ("yes" if store["same_result_as_in_memory"] else "NO"),
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--repeats", type=int, default=7,
                        help="warm runs per timing in memory; figures are medians")
    parser.add_argument("--store-repeats", type=int, default=3,
                        help="warm runs per timing of the service path on SQLite")
    parser.add_argument("--events", type=int, default=N_EVENTS, help="events in the window")
    parser.add_argument("--no-store", action="store_true", help="skip the service path")
    parser.add_argument("--profile", action="store_true",
                        help="print cProfile's top functions of one full run to stderr")
    args = parser.parse_args()
    if args.repeats < 1 or args.store_repeats < 1 or args.events < 100:
        parser.error("--repeats and --store-repeats must be at least 1, --events at least 100")
    started = time.perf_counter()
    work = workload(args.events)
    references = {segments: ModelReference.fit(model_settings(segments=segments),
                                               work.reference, "generated")
                  for segments in (False, True)}
    print(f"data generated and reference fitted in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    results: dict[str, Any] = {
        "n_events": args.events, "n_reference": N_EVENTS, "repeats": args.repeats,
        "store_repeats": args.store_repeats, "goal_ratio": GOAL_RATIO,
        "cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "cases": {}}
    for name, share, segments in CASES:
        results["cases"][name] = measure_case(work, share, segments, args.repeats, references)
        print(f"{name}: ratio {results['cases'][name]['ratio']:.2f}x", file=sys.stderr)
    if args.profile:
        print(profile_full(work, references[False]), file=sys.stderr)
    if not args.no_store:
        results["store"] = measure_store(work, references[False], args.store_repeats,
                                         results["cases"][CASES[0][0]])
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    main()
