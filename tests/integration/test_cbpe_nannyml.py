"""CBPE equals NannyML 0.13.1's on NannyML's own synthetic datasets, chunk by chunk.

NannyML runs in its own virtual environment, the benchmark's (bench/drift.py's
`peer_python("nannyml")`, cached under .driftline/bench-venvs/nannyml; the first run
creates it, which takes a couple of minutes and needs the package index). The script
bench/nannyml_cbpe_runner.py fits NannyML's CBPE on each reference with
chunks of 5000 rows, estimates the analysis set, and writes the data and NannyML's
per-chunk results. Here our `CBPE` is fitted on the same reference and estimates each of
the same chunks (the reference's own chunks too, which NannyML estimates in-sample);
every metric's value, sampling error, lower and upper bound must agree.

Tolerance: 1e-6, absolute. Every step is deterministic and repeats NannyML's
arithmetic in the same order (isotonic fit by scikit-learn, prediction by `np.interp`
as scikit-learn's, the ROC points rounded to 5 decimals, the sampling-error arrays built
in NannyML's element order), so the measured difference is 0.0 on every field; 1e-6
leaves room only for floating-point reassociation in a future numpy or scikit-learn.
One step depends on the numpy build: NannyML sorts scores with np.argsort's default,
unstable sort, and the datasets' scores have two decimals, so the order of tied scores
moves the reference ROC AUC's sampling error (rank gaps) and the multiclass ROC AUC (tied
raw scores with different renormalised probabilities). Measured with a stable sort in
place of NannyML's: up to 1.3e-5. Both venvs run the same numpy here (checked below);
should they ever differ, the ROC AUC fields are held to 1e-4 instead.

If the environment cannot be created (no access to the package index), the test fails;
it never skips.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.drift import peer_python
from detectors.estimation import CBPE, METRICS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).resolve().parents[2] / "bench" / "nannyml_cbpe_runner.py"
TOLERANCE = 1e-6
TIE_ORDER_TOLERANCE = 1e-4
FIELDS = ("value", "sampling_error", "lower", "upper")
# The dataset's column order, which is not sorted: our CBPE must reorder as NannyML does.
MULTICLASS_CLASSES = ("prepaid_card", "highstreet_card", "upmarket_card")


@pytest.fixture(scope="module")
def nannyml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        python = peer_python("nannyml")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"NannyML's virtual environment could not be created "
                    f"(.driftline/bench-venvs/nannyml; needs the package index): {exc}",
                    pytrace=False)
    out = tmp_path_factory.mktemp("nannyml-cbpe")
    env = {**os.environ, "NML_DISABLE_USAGE_LOGGING": "1"}
    done = subprocess.run([str(python), str(RUNNER), str(out)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        pytest.fail(f"the NannyML runner failed (exit {done.returncode}):\n{done.stderr[-3000:]}",
                    pytrace=False)
    return out


def _results(directory: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads((directory / "results.json").read_text())
    return results


def _fit(directory: Path, case: str) -> tuple[CBPE, pd.DataFrame, pd.DataFrame]:
    reference = pd.read_parquet(directory / f"{case}-reference.parquet")
    analysis = pd.read_parquet(directory / f"{case}-analysis.parquet")
    if case == "multiclass":
        cbpe = CBPE.fit(reference["y_true"], _scores(reference, case), reference["y_pred"],
                        classes=MULTICLASS_CLASSES)
    else:
        cbpe = CBPE.fit(reference["repaid"], _scores(reference, case), reference["y_pred"])
    return cbpe, reference, analysis


def _scores(frame: pd.DataFrame, case: str) -> np.ndarray:
    if case == "multiclass":
        return frame[[f"y_pred_proba_{label}" for label in MULTICLASS_CLASSES]].to_numpy()
    return frame["y_pred_proba"].to_numpy()


def _differences(directory: Path, case: str) -> dict[tuple[str, str], float]:
    """The largest absolute difference per (metric, field) over all chunks."""
    cbpe, reference, analysis = _fit(directory, case)
    worst: dict[tuple[str, str], float] = {}
    chunks = _results(directory)[case]["chunks"]
    for chunk in chunks:
        frame = reference if chunk["period"] == "reference" else analysis
        rows = frame.iloc[chunk["start_index"]:chunk["end_index"] + 1]
        ours = cbpe.estimate(_scores(rows, case), rows["y_pred"].to_numpy()).to_dict()
        assert ours["n"] == len(rows)
        for metric in METRICS:
            for field in FIELDS:
                mine, theirs = ours["metrics"][metric][field], chunk[metric][field]
                assert (mine is None) == (theirs is None), (chunk["key"], metric, field)
                gap = 0.0 if mine is None else abs(mine - theirs)
                worst[metric, field] = max(worst.get((metric, field), 0.0), gap)
    return worst


def _check(worst: dict[tuple[str, str], float], directory: Path) -> None:
    same_numpy = _results(directory)["numpy"] == np.__version__
    for (metric, field), gap in worst.items():
        bound = TOLERANCE if same_numpy or metric != "roc_auc" else TIE_ORDER_TOLERANCE
        assert gap <= bound, f"{metric} {field}: off by {gap:.3g} (tolerance {bound:g})"


def test_nannyml_version(nannyml_dir: Path) -> None:
    assert _results(nannyml_dir)["nannyml"] == "0.13.1"


@pytest.mark.parametrize("case", ["car_loan", "calibrated", "multiclass"])
def test_calibration_decision_equals_nannyml(nannyml_dir: Path, case: str) -> None:
    cbpe, _, _ = _fit(nannyml_dir, case)
    theirs = _results(nannyml_dir)[case]["calibrated"]
    if case == "multiclass":
        assert cbpe.classes is not None
        ours = {label: calibrator is not None
                for label, calibrator in zip(cbpe.classes, cbpe.calibrators, strict=True)}
        assert ours == theirs
    else:
        assert cbpe.calibrated is theirs


@pytest.mark.parametrize("case", ["car_loan", "calibrated", "multiclass"])
def test_estimates_equal_nannyml(nannyml_dir: Path, case: str) -> None:
    # car_loan: binary, calibrated by NannyML; calibrated: binary, left as it is, with a last
    # analysis chunk of one row; multiclass: two of three classes calibrated.
    worst = _differences(nannyml_dir, case)
    assert set(worst) == {(metric, field) for metric in METRICS for field in FIELDS}
    _check(worst, nannyml_dir)
