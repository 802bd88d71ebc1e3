"""Human-readable renderings of a drift report: a terminal table and a self-contained page.

The page is built in `detectors.report_html` (summary, features drifted first, inline
SVG plots); this module keeps the terminal table and the public entry points.
"""

from __future__ import annotations

from detectors.report import DriftReport
from detectors.report_html import render_html
from detectors.report_html.labels import format_number, status_label, verdict_label

__all__ = ["render_html", "report_to_text"]


def report_to_text(report: DriftReport) -> str:
    """A plain-text table of the report, for a terminal.

    One line per feature; `verdict` is DRIFT, ok or "not tested", and `status` says why
    a feature was not tested or counts as drifted without a test (insufficient data,
    type mismatch, missing), blank when a test ran.
    """
    verdict = "DRIFT" if report.dataset_drifted else "no drift"
    lines = [
        f"dataset: {verdict} ({report.share_drifted:.0%} of features drifted, "
        f"threshold share {report.drift_share:.0%}; reference {report.n_reference} rows, "
        f"current {report.n_current} rows)",
        "",
        f"{'feature':<24} {'kind':<12} {'method':<14} {'statistic':>10} {'p-value':>10} "
        f"{'threshold':>9} {'effect':>8}  {'verdict':<10}  status",
    ]
    for name, f in report.features.items():
        lines.append(
            f"{name[:24]:<24} {f.kind:<12} {f.method:<14} {format_number(f.statistic):>10} "
            f"{format_number(f.p_value):>10} {format_number(f.threshold):>9} "
            f"{format_number(f.effect_size):>8}  {verdict_label(f):<10}  {status_label(f)}"
            .rstrip()
        )
    return "\n".join(lines)
