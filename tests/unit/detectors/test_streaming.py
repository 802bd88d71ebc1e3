"""The streaming detectors detect at exactly river's points, on the same streams.

Each detector runs beside its river counterpart (river 0.26, a test-only dependency) on
synthetic streams (abrupt and gradual shifts, no drift, constant, ties, heavy tails, error
streams) and on real data (river's bundled Brent crude and Apple prices, the Phishing set,
scikit-learn's breast cancer set), under several parameter settings; the lists of indices
where `drift_detected` is True must be equal, not merely close.

Degenerate input: river lets a NaN into the state and then never detects again; ours
rejects a value that is not a finite number with a ValueError and leaves the state as it
was (tested below), so the stream can go on.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from river import datasets as river_datasets
from river import drift as river_drift
from river.drift import binary as river_binary
from river.drift import datasets as river_drift_datasets
from sklearn.datasets import load_breast_cancer

from detectors import ADWIN, DDM, KSWIN, OptionsError, PageHinkley
from detectors.streaming import StreamingDetector

STREAMING_DIR = Path(__file__).resolve().parents[3] / "detectors" / "streaming"


def _ours(detector: StreamingDetector, stream: Sequence[float]) -> list[int]:
    return [i for i, x in enumerate(stream) if detector.update(x).drift_detected]


def _rivers(detector: Any, stream: Sequence[float]) -> list[int]:
    points = []
    for i, x in enumerate(stream):
        detector.update(x)
        if detector.drift_detected:
            points.append(i)
    return points


# ---------------------------------------------------------------------------------- streams

def _numeric_streams(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 2000
    return {
        "abrupt": np.concatenate([rng.normal(0, 1, n // 2), rng.normal(2, 1, n // 2)]),
        "abrupt_small": np.concatenate([rng.normal(0, 1, n // 2), rng.normal(0.4, 1, n // 2)]),
        "gradual": rng.normal(np.linspace(0, 3, n), 1),
        "no_drift": rng.normal(5, 2, n),
        "constant": np.full(n, 1.0),
        "ties": rng.integers(0, 5, n).astype(float),
        "heavy_tails_offset": rng.standard_t(2, n) * 100 + 1e6,
        "several_shifts": np.concatenate([rng.normal(m, 0.5, n // 5) for m in [0, 3, -2, 5, 0]]),
        "variance_change": np.concatenate([rng.normal(0, 1, n // 2), rng.normal(0, 4, n // 2)]),
    }


def _real_streams() -> dict[str, np.ndarray]:
    return {
        "brent_crude": np.array([y for _, y in river_drift_datasets.BrentSpotPrice()], float),
        "apple_close": np.array([y["Close"] for _, y in river_drift_datasets.Apple()], float),
        "breast_cancer_radius": load_breast_cancer().data[:, 0].astype(float),
    }


def _error_streams(rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = 3000
    step = np.where(np.arange(n) < n // 2, 0.1, 0.3)
    phishing = [(x["long_url"] > 0.5) != y for x, y in river_datasets.Phishing()]
    cancer = load_breast_cancer()
    # A one-feature rule as the model; its mistakes are the error stream.
    cancer_errors = (cancer.data[:, 0] > 15.0) != (cancer.target == 0)
    return {
        "abrupt": (rng.random(n) < step).astype(float),
        "gradual": (rng.random(n) < np.linspace(0.05, 0.5, n)).astype(float),
        "no_drift": (rng.random(n) < 0.2).astype(float),
        "improving": (rng.random(n) < step[::-1]).astype(float),
        "all_correct": np.zeros(n),
        "all_wrong": np.ones(n),
        "phishing_rule": np.array(phishing, float),
        "breast_cancer_rule": cancer_errors.astype(float),
    }


NUMERIC = [*_numeric_streams(np.random.default_rng(0)), *_real_streams()]
ERRORS = list(_error_streams(np.random.default_rng(0)))


@pytest.fixture(scope="module")
def real_streams() -> dict[str, np.ndarray]:
    return _real_streams()


@pytest.fixture
def numeric_stream(request: pytest.FixtureRequest, rng: np.random.Generator,
                   real_streams: dict[str, np.ndarray]) -> list[float]:
    name: str = request.param
    stream = real_streams[name] if name in real_streams else _numeric_streams(rng)[name]
    return [float(x) for x in stream]


@pytest.fixture
def error_stream(request: pytest.FixtureRequest, rng: np.random.Generator) -> list[float]:
    return [float(x) for x in _error_streams(rng)[request.param]]


# ------------------------------------------------------------------------ equal to river

ADWIN_PARAMS = [
    {},
    {"clock": 1},
    {"delta": 0.1, "clock": 4, "max_buckets": 2, "min_window_length": 10, "grace_period": 50},
    {"delta": 1e-5, "clock": 1, "max_buckets": 1, "min_window_length": 1, "grace_period": 0},
    {"delta": 0.5, "clock": 7, "max_buckets": 8, "min_window_length": 30, "grace_period": 200},
]


def _rivers_adwin(params: dict[str, Any], stream: Sequence[float]) -> tuple[list[int], int]:
    """river's detection points, and how many values it took before a panic (if any)."""
    detector, points = river_drift.ADWIN(**params), []
    for i, x in enumerate(stream):
        try:
            detector.update(x)
        except BaseException as exc:  # pyo3's PanicException derives from BaseException
            if type(exc).__name__ != "PanicException":
                raise
            return points, i
        if detector.drift_detected:
            points.append(i)
    return points, len(stream)


@pytest.mark.parametrize("numeric_stream", NUMERIC, indirect=True)
@pytest.mark.parametrize("params", ADWIN_PARAMS, ids=str)
def test_adwin_detects_where_river_does(numeric_stream: list[float], params: dict[str, Any]
                                        ) -> None:
    ours = _ours(ADWIN(**params), numeric_stream)
    theirs, taken = _rivers_adwin(params, numeric_stream)
    if taken < len(numeric_stream):
        # With max_buckets=1 a bucket row can empty while an older one is not; river 0.26
        # then reads the empty row and panics (slice index starts at 1 but ends at 0).
        # Ours drops such rows; the points up to river's panic must still be river's.
        assert params.get("max_buckets") == 1
        ours = [i for i in ours if i < taken]
    assert ours == theirs


def test_adwin_window_equals_rivers_at_every_step(rng: np.random.Generator) -> None:
    stream = [float(x) for x in _numeric_streams(rng)["several_shifts"]]
    ours, theirs = ADWIN(clock=8), river_drift.ADWIN(clock=8)
    for x in stream:
        ours.update(x)
        theirs.update(x)
        assert (ours.width, ours.estimation) == (theirs.width, theirs.estimation)
    assert ours.n_detections > 1


PAGE_HINKLEY_PARAMS = [
    {},
    {"threshold": 10.0, "delta": 0.05, "min_instances": 10},
    {"threshold": 5.0, "alpha": 0.99, "mode": "up"},
    {"threshold": 5.0, "delta": 0.0, "alpha": 1.0, "mode": "down"},
    {"threshold": 1.0, "min_instances": 1, "mode": "both"},
]


@pytest.mark.parametrize("numeric_stream", NUMERIC, indirect=True)
@pytest.mark.parametrize("params", PAGE_HINKLEY_PARAMS, ids=str)
def test_page_hinkley_detects_where_river_does(numeric_stream: list[float],
                                               params: dict[str, Any]) -> None:
    assert _ours(PageHinkley(**params), numeric_stream) == _rivers(
        river_drift.PageHinkley(**params), numeric_stream)


DDM_PARAMS = [
    {},
    {"warm_start": 100},
    {"warm_start": 0, "warning_threshold": 1.5, "drift_threshold": 2.5},
    {"warm_start": 10, "warning_threshold": 3.0, "drift_threshold": 3.0},
]


@pytest.mark.parametrize("error_stream", ERRORS, indirect=True)
@pytest.mark.parametrize("params", DDM_PARAMS, ids=str)
def test_ddm_detects_and_warns_where_river_does(error_stream: list[float],
                                                params: dict[str, Any]) -> None:
    ours, theirs = DDM(**params), river_binary.DDM(**params)
    ours_points: list[tuple[int, bool, bool]] = []
    river_points: list[tuple[int, bool, bool]] = []
    for i, x in enumerate(error_stream):
        ours.update(x)
        theirs.update(x)
        if ours.drift_detected or ours.warning_detected:
            ours_points.append((i, ours.drift_detected, ours.warning_detected))
        if theirs.drift_detected or theirs.warning_detected:
            river_points.append((i, theirs.drift_detected, theirs.warning_detected))
    assert ours_points == river_points


def test_ddm_takes_booleans_as_river_does(rng: np.random.Generator) -> None:
    errors = list(rng.random(2000) < np.where(np.arange(2000) < 1000, 0.1, 0.3))
    assert _ours(DDM(), errors) == _rivers(river_binary.DDM(), [bool(e) for e in errors])


# KSWIN costs a scipy ks_2samp (about 1 ms) per value: shorter streams, and the other
# parameter settings on a few of them.
KSWIN_LENGTH = 400
KSWIN_CASES = [({"seed": 42}, name) for name in NUMERIC] + [
    (params, name)
    for params in [{"alpha": 0.01, "window_size": 60, "stat_size": 20, "seed": 7},
                   {"alpha": 0.0001, "window_size": 200, "stat_size": 50, "seed": 3}]
    for name in ["abrupt", "gradual", "several_shifts", "apple_close"]]


@pytest.mark.parametrize(("params", "numeric_stream"), KSWIN_CASES, indirect=["numeric_stream"],
                         ids=str)
def test_kswin_detects_where_river_does_for_the_same_seed(numeric_stream: list[float],
                                                         params: dict[str, Any]) -> None:
    middle = max(0, len(numeric_stream) // 2 - KSWIN_LENGTH // 2)
    stream = numeric_stream[middle:middle + KSWIN_LENGTH]
    assert _ours(KSWIN(**params), stream) == _rivers(river_drift.KSWIN(**params), stream)


def test_kswin_p_value_equals_rivers_at_every_step(rng: np.random.Generator) -> None:
    stream = [float(x) for x in _numeric_streams(rng)["several_shifts"][:600]]
    ours, theirs = KSWIN(alpha=0.01, window_size=50, stat_size=20, seed=5), river_drift.KSWIN(
        alpha=0.01, window_size=50, stat_size=20, seed=5)
    for x in stream:
        ours.update(x)
        theirs.update(x)
        assert ours.p_value == theirs.p_value
    assert ours.n_detections >= 1


def test_kswin_starting_window_as_rivers(rng: np.random.Generator) -> None:
    start = [float(x) for x in rng.normal(0, 1, 150)]
    stream = [float(x) for x in rng.normal(1.5, 1, 300)]
    ours = KSWIN(alpha=0.001, seed=11, window=start)
    theirs = river_drift.KSWIN(alpha=0.001, seed=11, window=start)
    points = _ours(ours, stream)
    assert points == _rivers(theirs, stream)
    assert points[0] < 30  # the warm window lets the very first values be tested


def test_kswin_without_seed_runs(rng: np.random.Generator) -> None:
    stream = np.concatenate([rng.normal(0, 1, 300), rng.normal(5, 1, 200)])
    points = _ours(KSWIN(alpha=0.001), [float(x) for x in stream])
    assert points
    assert points[0] >= 300


# --------------------------------------------------------------------- shape and counting

DETECTORS: list[Callable[[], StreamingDetector]] = [
    ADWIN, PageHinkley, DDM, lambda: KSWIN(seed=1)]


@pytest.mark.parametrize("make", DETECTORS, ids=["ADWIN", "PageHinkley", "DDM", "KSWIN"])
def test_update_returns_the_detector_and_counts_detections(make: Callable[[],
                                                           StreamingDetector]) -> None:
    detector = make()
    assert detector.update(0) is detector
    assert detector.drift_detected is False
    with pytest.raises(AttributeError):
        detector.drift_detected = True  # type: ignore[misc]
    stream = [0.0] * 200 + [1.0] * 200 + [0.0] * 200 + [1.0] * 200
    points = _ours(make(), stream)
    counted = make()
    for x in stream:
        counted.update(x)
    assert len(points) >= 2
    assert counted.n_detections == len(points)


def test_adwin_counts_every_detection_where_river_restarts_its_count() -> None:
    stream = [0.0] * 300 + [1.0] * 300 + [0.0] * 300
    ours, theirs = ADWIN(), river_drift.ADWIN()
    assert _ours(ours, stream) == _rivers(theirs, stream)
    # river's ADWIN rebuilds its helper, count included, at the update after a detection.
    assert (ours.n_detections, theirs.n_detections) == (2, 0)


# ----------------------------------------------------------------------- degenerate input

def _stream_for(make: Callable[[], StreamingDetector]) -> list[float]:
    rng = np.random.default_rng(3)
    if make is DDM:
        return [float(x) for x in rng.random(1500) < np.repeat([0.1, 0.4], 750)]
    return [float(x) for x in np.concatenate([rng.normal(0, 1, 250), rng.normal(3, 1, 250)])]


NOT_NUMBERS = [math.nan, math.inf, -math.inf, np.float64("nan"), "1.0", b"1"]


@pytest.mark.parametrize("make", DETECTORS, ids=["ADWIN", "PageHinkley", "DDM", "KSWIN"])
def test_non_finite_values_are_rejected_and_leave_the_state_alone(
        make: Callable[[], StreamingDetector]) -> None:
    stream = _stream_for(make)
    clean = _ours(make(), stream)
    detector = make()
    points = []
    for i, x in enumerate(stream):
        if i % 37 == 5:
            bad = NOT_NUMBERS[i // 37 % len(NOT_NUMBERS)]
            message = re.escape(f"update needs a finite number, got {bad!r}")
            with pytest.raises(ValueError, match=message):
                detector.update(bad)
        if detector.update(x).drift_detected:
            points.append(i)
    assert points == clean
    assert clean


@pytest.mark.parametrize("bad", [-0.5, 1.5, 2, -1])
def test_ddm_rejects_values_outside_zero_one(bad: float) -> None:
    ddm = DDM()
    with pytest.raises(ValueError, match=rf"error indicator in \[0, 1\], got {bad}"):
        ddm.update(bad)


def test_ddm_takes_fractions_as_river_does(rng: np.random.Generator) -> None:
    stream = [float(x) for x in np.clip(rng.normal(np.repeat([0.2, 0.5], 1000), 0.2), 0, 1)]
    assert _ours(DDM(), stream) == _rivers(river_binary.DDM(), stream)


def test_too_short_streams_never_detect() -> None:
    assert _ours(ADWIN(clock=1), [0.0] * 10 + [100.0]) == []  # within the grace period
    assert _ours(PageHinkley(), [0.0] * 20 + [1e6] * 9) == []  # below min_instances
    assert _ours(DDM(), [0.0] * 15 + [1.0] * 15) == []  # within warm_start
    assert _ours(KSWIN(seed=0), [0.0] * 50 + [100.0] * 49) == []  # the window is not full


# ------------------------------------------------------------------------------ validation

@pytest.mark.parametrize(("make", "match"), [
    (lambda: ADWIN(delta=0.0), r"delta must be in \(0.0, 1.0\), got 0.0"),
    (lambda: ADWIN(delta=1.5), r"delta must be in \(0.0, 1.0\), got 1.5"),
    (lambda: ADWIN(delta=math.nan), r"delta must be in .*, got nan"),
    (lambda: ADWIN(clock=0), r"clock must be an integer >= 1, got 0"),
    (lambda: ADWIN(clock=2.5), r"clock must be an integer >= 1, got 2.5"),
    (lambda: ADWIN(max_buckets=0), r"max_buckets must be an integer >= 1, got 0"),
    (lambda: ADWIN(min_window_length=0), r"min_window_length must be an integer >= 1, got 0"),
    (lambda: ADWIN(grace_period=-1), r"grace_period must be an integer >= 0, got -1"),
    (lambda: ADWIN(grace_period=True), r"grace_period must be an integer >= 0, got True"),
    (lambda: PageHinkley(min_instances=0), r"min_instances must be an integer >= 1, got 0"),
    (lambda: PageHinkley(delta=-0.1), r"delta must be in \[0.0, inf\], got -0.1"),
    (lambda: PageHinkley(threshold=0), r"threshold must be in \(0.0, inf\], got 0"),
    (lambda: PageHinkley(alpha=0.0), r"alpha must be in \(0.0, 1.0\], got 0.0"),
    (lambda: PageHinkley(alpha=1.01), r"alpha must be in \(0.0, 1.0\], got 1.01"),
    (lambda: PageHinkley(mode="sideways"), r"mode must be one of .*'both'.*, got 'sideways'"),
    (lambda: PageHinkley(threshold="50"), r"threshold must be a number, got '50'"),
    (lambda: DDM(warm_start=-1), r"warm_start must be an integer >= 0, got -1"),
    (lambda: DDM(warning_threshold=0.0), r"warning_threshold must be in \(0.0, inf\], got 0.0"),
    (lambda: DDM(drift_threshold=-3), r"drift_threshold must be in \(0.0, inf\], got -3"),
    (lambda: DDM(warning_threshold=3.0, drift_threshold=2.0),
     r"drift_threshold \(2.0\) must be at least warning_threshold \(3.0\)"),
    (lambda: KSWIN(alpha=0.0), r"alpha must be in \(0.0, 1.0\), got 0.0"),
    (lambda: KSWIN(alpha=1.0), r"alpha must be in \(0.0, 1.0\), got 1.0"),
    (lambda: KSWIN(window_size=1), r"window_size must be an integer >= 2, got 1"),
    (lambda: KSWIN(stat_size=0), r"stat_size must be an integer >= 1, got 0"),
    (lambda: KSWIN(window_size=50, stat_size=30),
     r"window_size \(50\) must be at least twice stat_size \(30\)"),
    (lambda: KSWIN(seed=1.5), r"seed must be an integer or None, got 1.5"),
    (lambda: KSWIN(window=[0.0, math.nan]), r"KSWIN.update needs a finite number, got nan"),
])
def test_bad_parameters_are_named(make: Callable[[], StreamingDetector], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_parameter_errors_are_detector_errors() -> None:
    with pytest.raises(OptionsError):
        ADWIN(clock=0)


def test_numpy_integers_are_accepted_as_parameters() -> None:
    adwin = ADWIN(clock=np.int64(4), delta=np.float64(0.01))
    assert (adwin.clock, adwin.delta) == (4, 0.01)
    assert type(adwin.clock) is int


def test_defaults_are_rivers() -> None:
    pairs: list[tuple[Any, Any, list[str]]] = [
        (ADWIN(), river_drift.ADWIN(),
         ["delta", "clock", "max_buckets", "min_window_length", "grace_period"]),
        (PageHinkley(), river_drift.PageHinkley(),
         ["min_instances", "delta", "threshold", "alpha", "mode"]),
        (DDM(), river_binary.DDM(), ["warm_start", "warning_threshold", "drift_threshold"]),
        (KSWIN(), river_drift.KSWIN(), ["alpha", "window_size", "stat_size", "seed"]),
    ]
    for ours, theirs, names in pairs:
        assert {n: getattr(ours, n) for n in names} == {n: getattr(theirs, n) for n in names}


def test_the_detectors_do_not_import_river() -> None:
    for module in STREAMING_DIR.glob("*.py"):
        tree = ast.parse(module.read_text())
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names]
        imported += [node.module or "" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] == "river"], module
