"""NannyML 0.13.1's CBPE on its bundled synthetic datasets (run in NannyML's own venv).

    <nannyml venv>/bin/python bench/nannyml_cbpe_runner.py OUT_DIR

Imports nothing of driftline: this script runs in the interpreter that
bench/drift.py's `peer_python("nannyml")` creates. For each case it writes
`<case>-reference.parquet` and `<case>-analysis.parquet` (the rows CBPE saw) and, in
`results.json`, NannyML's per-chunk value, sampling error and confidence band of every
estimated metric (reference and analysis chunks) and its calibration decisions.

Cases:
- `car_loan`: `load_synthetic_car_loan_dataset()` as shipped (binary).
- `calibrated`: synthetic binary scores drawn calibrated (seeded, rounded to three
  decimals so that ties occur), which NannyML leaves uncalibrated, so that the no-calibration
  path of the binary case runs too (the car-loan scores are calibrated by NannyML); its
  analysis chunks of 3333 rows leave a last chunk of one row.
- `multiclass`: `load_synthetic_multiclass_classification_dataset()` (three classes).
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import nannyml
import numpy as np
import pandas as pd

METRICS = ["roc_auc", "f1", "precision", "recall", "accuracy"]
CHUNK_SIZE = 5000
# Chunk size of the analysis set; 3333 leaves a last, incomplete chunk of one row (NannyML keeps
# it).
ANALYSIS_CHUNK_SIZES = {"car_loan": CHUNK_SIZE, "calibrated": 3333, "multiclass": CHUNK_SIZE}
FIELDS = {"value": "value", "sampling_error": "sampling_error",
          "lower": "lower_confidence_boundary", "upper": "upper_confidence_boundary"}
MULTICLASS_PROBA = {
    "prepaid_card": "y_pred_proba_prepaid_card",
    "highstreet_card": "y_pred_proba_highstreet_card",
    "upmarket_card": "y_pred_proba_upmarket_card",
}


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _chunks(result: Any) -> list[dict[str, Any]]:
    frame = result.to_df(multilevel=False)
    chunks = []
    for _, row in frame.iterrows():
        chunk: dict[str, Any] = {"key": row["chunk_key"], "period": row["chunk_period"],
                                 "start_index": int(row["chunk_start_index"]),
                                 "end_index": int(row["chunk_end_index"])}
        for metric in METRICS:
            chunk[metric] = {ours: _number(row[f"{metric}_{theirs}"])
                             for ours, theirs in FIELDS.items()}
        chunks.append(chunk)
    return chunks


def _run(name: str, reference: pd.DataFrame, analysis: pd.DataFrame, out: Path,
         **columns: Any) -> dict[str, Any]:
    reference.to_parquet(out / f"{name}-reference.parquet")
    analysis.to_parquet(out / f"{name}-analysis.parquet")
    estimator = nannyml.CBPE(metrics=METRICS, chunk_size=CHUNK_SIZE, **columns)
    estimator.fit(reference)
    reference_chunks = [c for c in _chunks(estimator.result) if c["period"] == "reference"]
    # A second estimator with another chunk size, fitted the same way, for the analysis set.
    analysis_estimator = nannyml.CBPE(metrics=METRICS, chunk_size=ANALYSIS_CHUNK_SIZES[name],
                                      **columns)
    analysis_estimator.fit(reference)
    analysis_chunks = [c for c in _chunks(analysis_estimator.estimate(analysis))
                       if c["period"] == "analysis"]
    if columns["problem_type"] == "classification_binary":
        calibrated: Any = bool(estimator.needs_calibration)
    else:
        calibrated = {label: type(calibrator).__name__ == "IsotonicCalibrator"
                      for label, calibrator in estimator._calibrators.items()}
    return {"calibrated": calibrated, "chunks": reference_chunks + analysis_chunks}


def _calibrated_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(20261124)
    score = np.round(rng.beta(2.0, 2.0, 20_000), 3)
    reference = pd.DataFrame({"y_pred_proba": score, "y_pred": (score >= 0.5).astype(int),
                              "repaid": rng.binomial(1, score)})
    score = np.round(rng.beta(2.0, 3.0, 10_000), 3)  # a shifted window
    analysis = pd.DataFrame({"y_pred_proba": score, "y_pred": (score >= 0.5).astype(int)})
    return reference, analysis


def main() -> None:
    """Write the datasets and NannyML's estimates into the directory given."""
    # NannyML warns about few chunks and undefined realized metrics; neither is compared.
    warnings.simplefilter("ignore")
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    binary = {"problem_type": "classification_binary", "y_pred_proba": "y_pred_proba",
              "y_pred": "y_pred", "y_true": "repaid"}
    keep = ["y_pred_proba", "y_pred", "repaid"]
    reference, analysis, _ = nannyml.load_synthetic_car_loan_dataset()
    reference, analysis = reference[keep], analysis[["y_pred_proba", "y_pred"]]
    results = {"nannyml": nannyml.__version__, "numpy": np.__version__,
               "car_loan": _run("car_loan", reference, analysis, out, **binary)}
    results["calibrated"] = _run("calibrated", *_calibrated_frames(), out, **binary)
    reference, analysis, _ = nannyml.load_synthetic_multiclass_classification_dataset()
    proba = list(MULTICLASS_PROBA.values())
    results["multiclass"] = _run(
        "multiclass", reference[[*proba, "y_pred", "y_true"]], analysis[[*proba, "y_pred"]], out,
        problem_type="classification_multiclass", y_pred_proba=MULTICLASS_PROBA,
        y_pred="y_pred", y_true="y_true")
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
