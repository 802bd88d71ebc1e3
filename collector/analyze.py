"""`driftline analyze`: the drift report of two files, with no service at all.

With `--config` and `--model` it computes exactly what the service's run of that model
computes on the same window (`collector.run.detect_model_drift`): same features, same
prediction handling, same options.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from collector.config import ModelSettings
from collector.errors import CollectorError, ConfigError, ReferenceDataError
from collector.reference import fit_model_profile, read_table
from collector.run import detect_model_drift
from detectors import DetectorError, DriftOptions, DriftReport, ReferenceProfile, detect_drift

EXIT_OK, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2


class AnalyzeInputError(CollectorError):
    """The files or options given to `driftline analyze` cannot be used."""


def _read(path_text: str, role: str, file_format: Any = "auto") -> pd.DataFrame:
    try:
        return read_table(Path(path_text), file_format)
    except ReferenceDataError as exc:
        raise AnalyzeInputError(f"--{role}: {exc}") from exc


def _model(args: argparse.Namespace) -> ModelSettings | None:
    if args.config is None:
        if args.model is not None:
            raise AnalyzeInputError("--model needs --config (the file that declares it)")
        return None
    from collector.config import load_settings

    settings = load_settings(args.config)
    if args.model is None:
        if len(settings.models) != 1:
            raise ConfigError(f"{args.config}: name the model with --model (it has "
                              f"{len(settings.models)}: "
                              f"{', '.join(m.name for m in settings.models)})")
        return settings.models[0]
    return settings.model(args.model)


def _options(args: argparse.Namespace, model: ModelSettings | None) -> DriftOptions:
    """The model's drift settings (or the defaults), overridden by the flags given."""
    kwargs: dict[str, Any] = {}
    if model is not None:
        drift = model.drift
        kwargs = {
            "numeric_method": drift.numeric_method,
            "categorical_method": drift.categorical_method,
            "methods": dict(drift.methods),
            "p_value_threshold": drift.p_value_threshold,
            "distance_threshold": drift.distance_threshold,
            "threshold": drift.threshold,
            "thresholds": dict(drift.thresholds),
            "drift_share": drift.drift_share,
            "min_samples": drift.min_samples,
            "correction": drift.correction,
            "min_effect_size": drift.min_effect_size,
        }
    flags = {
        "numeric_method": args.numeric_method,
        "categorical_method": args.categorical_method,
        "p_value_threshold": args.p_value_threshold,
        "distance_threshold": args.distance_threshold,
        "threshold": args.threshold,
        "drift_share": args.drift_share,
        "min_samples": args.min_samples,
    }
    kwargs.update({k: v for k, v in flags.items() if v is not None})
    try:
        return DriftOptions(**kwargs)
    except DetectorError as exc:
        raise AnalyzeInputError(_flag_names(str(exc))) from exc


def _flag_names(message: str) -> str:
    """Name the options as the command line spells them."""
    for option in ("p_value_threshold", "distance_threshold", "drift_share", "min_samples",
                   "threshold"):
        if message.startswith(option):
            return "--" + option.replace("_", "-") + message[len(option):]
    return message


def build_report(args: argparse.Namespace) -> tuple[DriftReport, ReferenceProfile, pd.DataFrame]:
    """Fit the reference and compare the current file; returns (report, profile, current)."""
    model = _model(args)
    options = _options(args, model)
    if args.reference is not None:
        reference = _read(args.reference, "reference")
        source = args.reference
    elif model is not None:
        reference = _read(str(model.reference.path), "reference", model.reference.format)
        source = str(model.reference.path)
    else:
        raise AnalyzeInputError("give --reference (or --config, whose model names its reference)")
    current = _read(args.current, "current")
    reference.columns = [str(c) for c in reference.columns]
    current.columns = [str(c) for c in current.columns]
    columns = list(reference.columns) if model is None else list(model.features)
    if args.columns:
        wanted = [c.strip() for c in args.columns.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in reference.columns]
        if unknown:
            raise AnalyzeInputError(f"--columns: {unknown} not in the reference")
        columns = wanted if model is None else [c for c in columns if c in wanted]
    if not set(columns) & set(current.columns):
        raise AnalyzeInputError(
            f"the current file has none of the columns to compare ({', '.join(columns[:10])}"
            f"{', ...' if len(columns) > 10 else ''}): the files share no columns to compare"
        )
    try:
        if model is not None:
            if args.columns:
                model = model.model_copy(update={
                    "features": {c: k for c, k in model.features.items() if c in columns}})
            profile = fit_model_profile(model, reference, source)
            report = detect_model_drift(model, profile, current, options)
        else:
            profile = ReferenceProfile.fit(reference[columns])
            report = detect_drift(profile, current[[c for c in columns if c in current]],
                                  options)
    except ReferenceDataError as exc:
        raise AnalyzeInputError(str(exc)) from exc
    except DetectorError as exc:
        raise AnalyzeInputError(_flag_names(str(exc))) from exc
    return report, profile, current


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
        try:
            Path(args.output).write_text(output, encoding="utf-8")
        except OSError as exc:
            print(f"driftline analyze: --output: cannot write {args.output} "
                  f"({exc.strerror or type(exc).__name__})", file=sys.stderr)
            return EXIT_USAGE
    else:
        sys.stdout.write(output)
    if args.fail_on_drift and report.dataset_drifted:
        return EXIT_DRIFT
    return EXIT_OK
