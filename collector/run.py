"""What one monitoring run computes from a window: the same in the service and offline.

`driftline analyze --config X --model M` and the service's scheduled run of M both call
`detect_model_drift`, so the two give one verdict on the same data (issue 9).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from collector.config import ModelSettings
from collector.reference import PREDICTION_COLUMN
from detectors import DriftOptions, DriftReport, ReferenceProfile, detect_drift


def drift_options(model: ModelSettings, *, min_samples: int | None = None) -> DriftOptions:
    """Detector options from a model's drift settings."""
    drift = model.drift
    return DriftOptions(
        numeric_method=drift.numeric_method,
        categorical_method=drift.categorical_method,
        methods=dict(drift.methods),
        p_value_threshold=drift.p_value_threshold,
        distance_threshold=drift.distance_threshold,
        threshold=drift.threshold,
        thresholds=dict(drift.thresholds),
        drift_share=drift.drift_share,
        min_samples=drift.min_samples if min_samples is None else min_samples,
        correction=drift.correction,
        min_effect_size=drift.min_effect_size,
    )


def detect_model_drift(
    model: ModelSettings, profile: ReferenceProfile, frame: pd.DataFrame,
    options: DriftOptions | None = None,
) -> DriftReport:
    """The drift report of a model's window.

    The features decide the dataset verdict (and share the multiple-testing correction);
    the prediction column is tested beside them and reported as `prediction`, but is not
    a feature: the model's output moving is prediction drift, reported on its own.
    """
    options = options or drift_options(model)
    features = [c for c in model.features if c in profile.columns]
    present = [c for c in features if c in frame.columns]
    report = detect_drift(_subset(profile, features), frame[present], options)
    if PREDICTION_COLUMN in profile.columns:
        own = frame[[c for c in (PREDICTION_COLUMN,) if c in frame.columns]]
        outputs = detect_drift(_subset(profile, [PREDICTION_COLUMN]), own, options)
        merged = {**report.features, PREDICTION_COLUMN: outputs.features[PREDICTION_COLUMN]}
        report = dataclasses.replace(report, features=merged)
    return report


def _subset(profile: ReferenceProfile, columns: list[str]) -> ReferenceProfile:
    """The profile of some of its columns (sharing the fitted arrays, nothing copied)."""
    kinds = {c: profile.kinds[c] for c in columns}
    return ReferenceProfile(
        kinds,
        {c: profile.numeric[c] for c in columns if kinds[c] == "numeric"},
        {c: profile.categorical[c] for c in columns if kinds[c] == "categorical"},
        profile.n_rows,
    )
