"""`driftline analyze`: the drift report of two files, with no service at all."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from collector.errors import CollectorError, ConfigError

EXIT_OK, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2


class AnalyzeInputError(CollectorError):
    """The files or options given to `driftline analyze` cannot be used."""


def read_table(path_text: str, role: str) -> pd.DataFrame:
    """Read a CSV or Parquet file, naming the role (reference/current) in errors."""
    path = Path(path_text)
    if not path.exists():
        raise AnalyzeInputError(f"--{role}: file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        if suffix in {".csv", ".txt", ".gz"}:
            return pd.read_csv(path)
    except Exception as exc:  # pandas raises many types for unreadable files
        raise AnalyzeInputError(f"--{role}: {path} cannot be read ({type(exc).__name__})") from exc
    raise AnalyzeInputError(f"--{role}: {path} is neither .csv nor .parquet")


def _settings_from_config(args: argparse.Namespace) -> tuple[dict[str, str] | None, dict[str, Any]]:
    if args.config is None:
        return None, {}
    from collector.config import load_settings

    settings = load_settings(args.config)
    if args.model is None:
        if len(settings.models) != 1:
            raise ConfigError(f"{args.config}: name the model with --model (it has "
                              f"{len(settings.models)})")
        model = settings.models[0]
    else:
        model = settings.model(args.model)
    drift = model.drift
    schema: dict[str, str] = dict(model.features)
    if model.prediction is not None:
        schema["prediction"] = model.prediction
    options = {
        "numeric_method": drift.numeric_method,
        "categorical_method": drift.categorical_method,
        "methods": dict(drift.methods),
        "threshold": drift.threshold,
        "thresholds": dict(drift.thresholds),
        "drift_share": drift.drift_share,
        "min_samples": drift.min_samples,
        "correction": drift.correction,
        "min_effect_size": drift.min_effect_size,
    }
    return schema, options


def build_report(args: argparse.Namespace) -> tuple[Any, Any, pd.DataFrame]:
    """Fit the reference and compare the current file; returns (report, profile, current)."""
    from detectors import DetectorError, DriftOptions, ReferenceProfile, detect_drift

    reference = read_table(args.reference, "reference")
    current = read_table(args.current, "current")
    schema, options = _settings_from_config(args)
    shared = [c for c in reference.columns if c in set(current.columns)]
    if args.columns:
        wanted = [c.strip() for c in args.columns.split(",") if c.strip()]
        missing = [c for c in wanted if c not in shared]
        if missing:
            raise AnalyzeInputError(f"--columns: {missing} not in both files")
        shared = wanted
    if schema is not None:
        shared = [c for c in shared if c in schema]
    if not shared:
        raise AnalyzeInputError("the two files share no columns to compare")
    if args.threshold is not None and not args.threshold > 0:
        raise AnalyzeInputError(f"--threshold must be positive, got {args.threshold}")
    if args.drift_share is not None and not 0 < args.drift_share <= 1:
        raise AnalyzeInputError(f"--drift-share must be in (0, 1], got {args.drift_share}")
    if args.numeric_method:
        options["numeric_method"] = args.numeric_method
    if args.categorical_method:
        options["categorical_method"] = args.categorical_method
    if args.threshold is not None:
        options["threshold"] = args.threshold
    if args.drift_share is not None:
        options["drift_share"] = args.drift_share
    try:
        drift_options = DriftOptions(**options)
        sub_schema = None if schema is None else {c: schema[c] for c in shared}
        profile = ReferenceProfile.fit(reference[shared], schema=sub_schema)
        report = detect_drift(profile, current[shared], drift_options)
    except (DetectorError, ValueError) as exc:
        raise AnalyzeInputError(str(exc)) from exc
    return report, profile, current[shared]


def run_analyze(args: argparse.Namespace) -> int:
    """Run `driftline analyze`; returns the exit code."""
    from detectors import render_html, report_to_text

    try:
        report, profile, current = build_report(args)
    except (AnalyzeInputError, ConfigError) as exc:
        print(f"driftline analyze: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        output = json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
    elif args.format == "html":
        output = render_html(report, profile, current)
    else:
        output = report_to_text(report) + "\n"
    if args.output:
        Path(args.output).write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    if args.fail_on_drift and report.dataset_drifted:
        return EXIT_DRIFT
    return EXIT_OK
