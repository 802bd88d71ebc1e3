"""Human-readable renderings of a drift report: a terminal table and a self-contained page."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from detectors.columns import category_counts, numeric_values
from detectors.profile import NumericProfile, ReferenceProfile
from detectors.report import DriftReport


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"


def report_to_text(report: DriftReport) -> str:
    """A plain-text table of the report, for a terminal."""
    verdict = "DRIFT" if report.dataset_drifted else "no drift"
    lines = [
        f"dataset: {verdict} ({report.share_drifted:.0%} of features drifted, "
        f"threshold share {report.drift_share:.0%}; reference {report.n_reference} rows, "
        f"current {report.n_current} rows)",
        "",
        f"{'feature':<24} {'kind':<12} {'method':<14} {'statistic':>10} {'p-value':>10} "
        f"{'threshold':>9} {'effect':>8}  verdict",
    ]
    for name, f in report.features.items():
        state = "insufficient data" if f.status != "ok" else ("DRIFT" if f.drifted else "ok")
        lines.append(
            f"{name[:24]:<24} {f.kind:<12} {f.method:<14} {_fmt(f.statistic):>10} "
            f"{_fmt(f.p_value):>10} {_fmt(f.threshold):>9} {_fmt(f.effect_size):>8}  {state}"
        )
    return "\n".join(lines)


def _bars(ref: np.ndarray, cur: np.ndarray, labels: list[str]) -> str:
    width, height = 360, 120
    n = max(len(labels), 1)
    top = max(float(ref.max(initial=0)), float(cur.max(initial=0)), 1e-12)
    slot = width / n
    parts = [f'<svg width="{width}" height="{height + 14}" role="img">']
    for i in range(len(labels)):
        for j, (share, color) in enumerate(((ref[i], "#8da0cb"), (cur[i], "#fc8d62"))):
            h = height * float(share) / top
            x = i * slot + j * slot / 2
            parts.append(f'<rect x="{x:.1f}" y="{height - h:.1f}" width="{slot / 2 - 1:.1f}" '
                         f'height="{h:.1f}" fill="{color}"><title>{html.escape(labels[i])}: '
                         f'{share:.3f}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: DriftReport, profile: ReferenceProfile, current: pd.DataFrame) -> str:
    """A self-contained HTML page: the verdict, the table, and a distribution plot per feature."""
    rows = []
    for name, f in report.features.items():
        reference = profile.column(name)
        column = current[name] if name in current.columns else pd.Series([], dtype=object)
        if isinstance(reference, NumericProfile):
            values = numeric_values(column)
            both = np.concatenate([reference.values, values])
            edges = np.histogram_bin_edges(both, bins=20) if both.size else np.array([0.0, 1.0])
            ref = np.histogram(reference.values, edges)[0] / max(reference.n, 1)
            cur = np.histogram(values, edges)[0] / max(values.size, 1)
            labels = [f"{edges[i]:.3g} to {edges[i + 1]:.3g}" for i in range(len(edges) - 1)]
        else:
            names, counted = category_counts(column)
            counts = dict(zip(names, counted.tolist(), strict=True))
            keys = sorted(set(reference.categories) | set(names))[:30]
            ref_map = reference.count_map()
            ref = np.array([ref_map.get(k, 0) for k in keys]) / max(reference.n, 1)
            cur = np.array([counts.get(k, 0) for k in keys]) / max(int(counted.sum()), 1)
            labels = keys
        state = "insufficient data" if f.status != "ok" else ("DRIFT" if f.drifted else "ok")
        rows.append(
            f"<tr class='{state.split()[0].lower()}'><td>{html.escape(name)}</td><td>{f.kind}</td>"
            f"<td>{f.method}</td><td>{_fmt(f.statistic)}</td><td>{_fmt(f.p_value)}</td>"
            f"<td>{_fmt(f.threshold)}</td><td>{_fmt(f.effect_size)}</td><td>{state}</td>"
            f"<td>{_bars(ref, cur, labels)}</td></tr>"
        )
    verdict = "Dataset drift detected" if report.dataset_drifted else "No dataset drift"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>driftline drift report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:middle}}
tr.drift td:first-child{{color:#c0392b;font-weight:bold}}.legend span{{padding:0 8px}}</style>
</head><body><h1>{verdict}</h1>
<p>{report.share_drifted:.0%} of features drifted (dataset threshold {report.drift_share:.0%});
reference {report.n_reference} rows, current {report.n_current} rows.</p>
<p class="legend"><span style="background:#8da0cb">reference</span>
<span style="background:#fc8d62">current</span></p>
<table><tr><th>feature</th><th>kind</th><th>method</th><th>statistic</th><th>p-value</th>
<th>threshold</th><th>effect size</th><th>verdict</th><th>distribution</th></tr>
{''.join(rows)}</table></body></html>
"""
