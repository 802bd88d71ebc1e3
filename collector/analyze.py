"""`driftline analyze`: a run's whole result on two files, with no service at all.

The reference and current files become a model's settings and a run's input
(`collector.analyze_input`), and `collector.run.compute_run` computes the `RunResult` the
service computes: drift, data quality, realized performance when the current file has
labels, the reference's performance, estimated performance (CBPE) when a classifier's
scores are given, and performance per segment. With `--config` and `--model` it is
exactly the service's run of that model on the same window.

The JSON is `RunResult.to_dict()`: the drift report's keys (`driftline.drift-report/v1`)
at the top level, with `performance` (null without labels), `reference_performance`,
`estimated_performance` (classification with scores only), `data_quality` and
`segments` (a list, one entry per segment column) beside them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from collector.analyze_input import Analysis, AnalyzeInputError, flag_names, prepare
from collector.errors import ConfigError
from collector.run import RunResult, compute_run
from detectors import DetectorError

__all__ = ["AnalyzeInputError", "build_run", "run_analyze", "run_to_text"]

EXIT_OK, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2
RUN_SECTIONS = ("performance", "reference_performance", "estimated_performance",
                "data_quality", "segments")
# The metrics the text summary shows, in this order, when the reports have them.
_TEXT_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
                 "log_loss", "brier", "mae", "rmse", "mape", "r2", "mean_error")


def build_run(args: argparse.Namespace) -> tuple[RunResult, Analysis]:
    """The run of the files and flags in `args`, and what it was computed on.

    Raises:
        AnalyzeInputError: A file, flag, column or value cannot be used (one line).
        ConfigError: `--config` cannot be read or names no such model.
    """
    analysis = prepare(args)
    try:
        result = compute_run(analysis.model, analysis.reference, analysis.data)
    except DetectorError as exc:
        raise AnalyzeInputError(flag_names(str(exc))) from exc
    return result, analysis


def _number(value: Any) -> str:
    from detectors.report_html.labels import format_number

    return format_number(value) if isinstance(value, int | float) else "-"


def _width(side: str) -> int:
    return 28 if side.startswith("estimated") else 12


def _performance_lines(run: dict[str, Any]) -> list[str]:
    current, reference = run["performance"], run["reference_performance"]
    estimated = run["estimated_performance"]
    sides = [(name, part["metrics"]) for name, part in (
        ("current", current), ("reference", reference)) if part is not None]
    if estimated is not None:
        sides.append(("estimated (CBPE)", estimated["metrics"]))
    if not sides:
        return []
    counts = []
    if current is not None:
        counts.append(f"{current['n_labelled']:,} of {current['n_total']:,} current rows "
                      "labelled")
    if reference is not None:
        counts.append(f"reference {reference['n_labelled']:,} labelled rows")
    lines = ["", "performance" + (f" ({'; '.join(counts)})" if counts else ""),
             f"{'metric':<18}" + "".join(f"{name:>{_width(name)}}" for name, _ in sides)]
    for metric in _TEXT_METRICS:
        cells = [values.get(metric) for _, values in sides]
        if all(cell is None for cell in cells):
            continue
        text = []
        for (name, _), cell in zip(sides, cells, strict=True):
            if isinstance(cell, dict):  # an estimate: value [lower, upper]
                cell = (f"{_number(cell['value'])} [{_number(cell['lower'])}, "
                        f"{_number(cell['upper'])}]")
            text.append(f"{cell if isinstance(cell, str) else _number(cell):>{_width(name)}}")
        lines.append(f"{metric:<18}" + "".join(text))
    return lines


def _quality_line(quality: dict[str, Any] | None) -> list[str]:
    if quality is None:
        return []
    breaches = [f"{b['feature']} {b['check']} {_number(b['value'])} > {_number(b['threshold'])}"
                for b in quality["breaches"]]
    text = (f"{len(breaches)} breach{'es' if len(breaches) != 1 else ''}: "
            + "; ".join(breaches[:5]) + (" ..." if len(breaches) > 5 else "")
            if breaches else f"ok ({len(quality['features'])} features checked)")
    for key in ("unknown_columns", "missing_columns"):
        if quality[key]:
            text += f"; {key.replace('_', ' ')}: {', '.join(quality[key][:10])}"
    return ["", f"data quality: {text}"]


def _segment_lines(segments: list[dict[str, Any]]) -> list[str]:
    lines = []
    for segment in segments:
        groups = ", ".join(f"{name} {group['n']:,}" for name, group in segment["groups"].items())
        spread = segment["disparity"]
        gaps = [f"{name} difference {_number(spread[name]['difference'])}"
                for name in ("accuracy", "f1", "mae") if name in spread]
        gaps += [f"{name.replace('_', ' ')} {_number(spread[name])}"
                 for name in ("demographic_parity_difference", "equalized_odds_difference")
                 if spread.get(name) is not None]
        lines.append(f"segment {segment['by']}: {groups}"
                     + (f"; {', '.join(gaps)}" if gaps else ""))
    return ["", *lines] if lines else []


def run_to_text(result: RunResult) -> str:
    """The drift table, then short performance, estimate, data-quality and segment lines."""
    from detectors import report_to_text

    run = result.to_dict()
    lines = [report_to_text(result.drift), *_performance_lines(run),
             *_quality_line(run["data_quality"]), *_segment_lines(run["segments"])]
    lines += [f"note: {note}" for note in run["notes"]]
    return "\n".join(lines)


def run_analyze(args: argparse.Namespace) -> int:
    """Run `driftline analyze`; returns the exit code."""
    from detectors import render_html

    try:
        result, analysis = build_run(args)
    except (AnalyzeInputError, ConfigError) as exc:
        print(f"driftline analyze: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.format == "json":
        output = json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n"
    elif args.format == "html":
        run = result.to_dict()
        output = render_html(result.drift, analysis.reference.profile, analysis.data.frame(),
                             extras={key: run[key] for key in RUN_SECTIONS})
    else:
        output = run_to_text(result) + "\n"
    if args.output:
        try:
            Path(args.output).write_text(output, encoding="utf-8")
        except OSError as exc:
            print(f"driftline analyze: --output: cannot write {args.output} "
                  f"({exc.strerror or type(exc).__name__})", file=sys.stderr)
            return EXIT_USAGE
    else:
        sys.stdout.write(output)
    if args.fail_on_drift and result.drift.dataset_drifted:
        return EXIT_DRIFT
    return EXIT_OK
