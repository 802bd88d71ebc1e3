"""`render_html`: a self-contained page a person reads instead of the JSON.

The summary comes first (verdict, share drifted, counts by status, sizes), then the
features, drifted first, each a `<details>` row with the method, statistic, p-value and
threshold; drifted features open with their plot, the others collapsed, so a report on
1,000 features is a list to scan, not a wall of plots. No script and no external
resource: a Content-Security-Policy forbids both, so the page makes no request when
viewed.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from detectors.columns import category_counts, numeric_values
from detectors.profile import NumericProfile, ReferenceProfile
from detectors.report import DriftReport, FeatureDrift
from detectors.report_html.distributions import (
    TOP_CATEGORIES,
    category_bars,
    numeric_histogram,
)
from detectors.report_html.labels import format_number, is_drifted, status_label
from detectors.report_html.run_sections import run_sections
from detectors.report_html.style import CSS
from detectors.report_html.svg import bars_svg, histogram_svg

# Drifted features beyond this many start collapsed too (the page stays light to open).
OPEN_LIMIT = 50
_LISTED_DRIFTED = 30
_OTHER_RULES = (" The decision also applies other rules (a multiple-testing correction or a "
                "minimum effect size).")
_SECTIONS = (("drifted", "Drifted"), ("not-tested", "Not tested"), ("not-drifted", "Not drifted"))


def _excess(feature: FeatureDrift) -> float:
    """How far past its threshold a feature is, as log10 of a ratio (positive: past it).

    p-value tests: threshold / p-value; distances: statistic / threshold. Both are
    unit-free, so features tested by different methods sort on one scale.
    """
    with np.errstate(all="ignore"):
        if feature.p_value is not None and feature.threshold > 0:
            return math.log10(feature.threshold / max(feature.p_value, 1e-300))
        if feature.statistic is not None and feature.threshold > 0:
            return math.log10(max(feature.statistic, 1e-300) / feature.threshold)
    return -math.inf


def _rank(feature: FeatureDrift) -> int:
    status = str(feature.status)
    if status == "type_mismatch":
        return 0
    if status == "missing":
        return 1
    if is_drifted(feature):
        return 2
    return 4 if status == "ok" else 3


def order_features(report: DriftReport) -> list[str]:
    """Feature names in page order.

    Drifted first (type mismatches, then missing columns, then the tested features by how
    far past the threshold), then the features not tested, then the rest, closest to their
    threshold first; names break ties.
    """
    return sorted(report.features, key=lambda name: (
        _rank(report.features[name]), -_excess(report.features[name]), name))


def _section(feature: FeatureDrift) -> str:
    rank = _rank(feature)
    return _SECTIONS[0][0] if rank <= 2 else _SECTIONS[1][0] if rank == 3 else _SECTIONS[2][0]


def _count(value: int) -> str:
    return f"{value:,}"


def _badge(feature: FeatureDrift) -> str:
    status = str(feature.status)
    if status in ("type_mismatch", "missing"):
        css = "bad"
    elif status != "ok":
        css = "drift" if feature.drifted else "warn"
    else:
        css = "drift" if feature.drifted else "ok"
    text = status_label(feature) or ("drift" if feature.drifted else "no drift")
    return f'<span class="badge {css}">{html.escape(text)}</span>'


def _decision(feature: FeatureDrift) -> str:
    status = str(feature.status)
    kind = html.escape(feature.kind)
    if status == "type_mismatch":
        return (f"Type mismatch: the window's values in this column are not {kind} (for "
                "example strings in a numeric column), so no test ran. Counted as drifted; "
                "only the reference is drawn.")
    if status == "missing":
        return ("Missing: the window has no such column, so no test ran. Counted as drifted; "
                "only the reference is drawn.")
    if status == "insufficient_data":
        return (f"Not tested: too few values ({_count(feature.n_reference)} in the reference, "
                f"{_count(feature.n_current)} in the window), or the method could not run on "
                "them.")
    if status != "ok":
        return f"Not tested (status {html.escape(status)})."
    threshold = format_number(feature.threshold)
    verdict = "drift" if feature.drifted else "no drift"
    if feature.p_value is not None:
        below = feature.p_value < feature.threshold
        text = (f"p-value {format_number(feature.p_value)} {'&lt;' if below else '&ge;'} "
                f"threshold {threshold}: {verdict}.")
        return text + (_OTHER_RULES if below != feature.drifted else "")
    if feature.statistic is not None:
        past = feature.statistic >= feature.threshold
        text = (f"Distance {format_number(feature.statistic)} {'&ge;' if past else '&lt;'} "
                f"threshold {threshold}: {verdict}.")
        return text + (_OTHER_RULES if past != feature.drifted else "")
    return f"No statistic: {verdict}."


def _stats_table(reference: np.ndarray[Any, Any], current: np.ndarray[Any, Any] | None) -> str:
    stats = (("mean", np.mean), ("sd", np.std), ("median", np.median), ("min", np.min),
             ("max", np.max))
    sides = [("reference", reference)] + ([("current", current)] if current is not None else [])
    rows = []
    for label, values in sides:
        with np.errstate(all="ignore"):
            cells = "".join(f"<td>{format_number(float(f(values)))}</td>" for _, f in stats)
        rows.append(f"<tr><th>{label}</th>{cells}</tr>")
    head = "".join(f"<th>{name}</th>" for name, _ in stats)
    return f'<table class="stats"><tr><th></th>{head}</tr>{"".join(rows)}</table>'


def _legend(n_reference: int, n_current: int | None) -> str:
    text = f'<i class="sw ref"></i>reference ({_count(n_reference)} values)'
    if n_current is not None:
        text += f'<i class="sw cur"></i>current ({_count(n_current)} values)'
    return f'<p class="legend">{text}</p>'


def _plot(name: str, feature: FeatureDrift, profile: ReferenceProfile,
          column: pd.Series | None) -> tuple[str, list[str]]:
    """The plot (legend and SVG), and the HTML paragraphs and tables beside it."""
    if name not in profile.kinds:
        return "", ["<p>The reference profile has no such column.</p>"]
    notes: list[str] = []
    drawn = column is not None and str(feature.status) not in ("type_mismatch", "missing")
    reference = profile.column(name)
    if isinstance(reference, NumericProfile):
        current = numeric_values(column) if drawn else None
        if current is not None and current.size == 0:
            notes.append("<p>The window has no usable values in this column.</p>")
            current = None
        histogram = numeric_histogram(reference.values, current)
        if histogram is None:
            return "", [*notes, "<p>No finite values to draw (or a range beyond a float's).</p>"]
        if any(histogram.clipped):
            notes.append(
                "<p>Outliers: the x axis is cut at the 0.5th and 99.5th percentiles; "
                f"{_count(histogram.clipped[0])} reference and {_count(histogram.clipped[1])} "
                "current values beyond it are counted in the end bins.</p>")
        chart = histogram_svg(histogram, name)
        side = _stats_table(reference.values, current) if reference.n else ""
        n_current = None if current is None else int(current.size)
        return _legend(reference.n, n_current) + chart, [side, *notes]
    counted = category_counts(column) if drawn else None
    if counted is not None and int(counted[1].sum()) == 0:
        notes.append("The window has no usable values in this column.")
        counted = None
    bars = category_bars((reference.categories, reference.counts), counted)
    if bars.n_categories == 0:
        return "", [*notes, "<p>No values to draw.</p>"]
    if bars.n_other:
        notes.append(
            f"<p>The {len(bars.labels)} most frequent of {_count(bars.n_categories)} categories "
            f"are drawn (ranked by the larger share of the two sides); the other "
            f"{_count(bars.n_other)} are summed in the last bar, &ldquo;other&rdquo;.</p>")
    if any(bars.new):
        notes.append("<p>(new): a category the reference does not have.</p>")
    n_current = None if counted is None else int(counted[1].sum())
    return _legend(reference.n, n_current) + bars_svg(bars), notes


def _feature(index: int, name: str, feature: FeatureDrift, profile: ReferenceProfile,
             column: pd.Series | None, is_open: bool) -> str:
    plot, notes = _plot(name, feature, profile, column)
    facts = (f"{_count(feature.n_reference)} reference and {_count(feature.n_current)} "
             "current values")
    if feature.effect_size is not None:
        facts = f"effect size {format_number(feature.effect_size)} &middot; {facts}"
    paragraphs = "".join(notes)
    escaped = html.escape(name)
    cells = "".join(f'<span class="num">{format_number(v)}</span>' for v in (
        feature.statistic, feature.p_value, feature.threshold))
    status = html.escape(str(feature.status))
    return (
        f'<details class="feature" id="f{index}" data-feature="{escaped}" '
        f'data-drifted="{int(is_drifted(feature))}" data-status="{status}"'
        f'{" open" if is_open else ""}><summary class="row">'
        f'<span class="name" title="{escaped}">{escaped}</span><span>{html.escape(feature.kind)}'
        f"</span><span>{html.escape(feature.method)}</span>{cells}{_badge(feature)}</summary>"
        f'<div class="body"><div class="chart">{plot}</div><div class="notes">'
        f"<p><b>{_decision(feature)}</b></p><p>{facts}</p>{paragraphs}</div></div></details>"
    )


def _summary(report: DriftReport, ordered: Sequence[str]) -> str:
    features = report.features
    if report.status != "ok":
        verdict, css = "Not enough data to decide", "warn"
    elif report.dataset_drifted:
        verdict, css = "Dataset drift detected", "drift"
    else:
        verdict, css = "No dataset drift", "ok"
    drifted = [name for name in ordered if is_drifted(features[name])]
    facts = (("share drifted", f"{report.share_drifted:.0%}"),
             ("dataset drift at", f"&ge; {report.drift_share:.0%}"),
             ("features", _count(len(features))), ("drifted", _count(len(drifted))),
             ("reference rows", _count(report.n_reference)),
             ("current rows", _count(report.n_current)))
    fact_html = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in facts)
    first: dict[str, int] = {}
    counts: dict[str, int] = {}
    for index, name in enumerate(ordered):
        f = features[name]
        label = status_label(f) or ("drift" if f.drifted else "no drift")
        first.setdefault(label, index)
        counts[label] = counts.get(label, 0) + 1
    known = ["drift", "type mismatch", "missing", "insufficient data", "no drift"]
    rows = []
    for label in known + sorted(set(counts) - set(known)):
        n = counts.get(label, 0)
        cell = (f'<a href="#f{first[label]}">{html.escape(label)}</a>' if n
                else html.escape(label))
        rows.append(f'<tr{"" if n else " class=zero"}><td>{cell}</td><td>{_count(n)}</td></tr>')
    position = {name: index for index, name in enumerate(ordered)}
    links = ", ".join(f'<a href="#f{position[name]}">{html.escape(name)}</a>'
                      for name in drifted[:_LISTED_DRIFTED])
    if len(drifted) > _LISTED_DRIFTED:
        links += f" and {_count(len(drifted) - _LISTED_DRIFTED)} more"
    return (
        f'<header><h1>Drift report</h1><p class="verdict {css}">{verdict}</p>'
        f'<dl class="facts">{fact_html}</dl><div class="toc"><table class="counts">'
        f'<tr><th>status</th><th>features</th></tr>{"".join(rows)}</table>'
        f'<p>{"Drifted: " + links if drifted else "No feature drifted."}</p></div>'
        f'<p class="legend"><i class="sw ref"></i>reference<i class="sw cur"></i>current '
        "&mdash; each side as the share of its own non-missing values: numeric features on "
        f"shared bins, categorical features as the top {TOP_CATEGORIES} categories with the "
        "rest summed in an &ldquo;other&rdquo; bar. Click a row to open or close it.</p>"
        "</header>"
    )


def _rows(blocks: Iterable[str]) -> str:
    head = ('<div class="row head"><span>feature</span><span>kind</span><span>method</span>'
            '<span class="num">statistic</span><span class="num">p-value</span>'
            '<span class="num">threshold</span><span>status</span></div>')
    return head + "".join(blocks)


def render_html(report: DriftReport, profile: ReferenceProfile, current: pd.DataFrame, *,
                extras: Mapping[str, Any] | None = None) -> str:
    """A self-contained HTML page: the summary, then every feature with its plot.

    Args:
        report: The drift report to show.
        profile: The reference profile the report was computed against.
        current: The window the report was computed on (its columns are drawn).
        extras: A run's other results as their JSON objects, drawn between the summary
            and the features when present: `performance`, `reference_performance`,
            `estimated_performance`, `data_quality` and `segments` (a list), as
            `driftline analyze --format json` prints them.

    Returns:
        The page, starting with `<!doctype html>`; no script, no external resource.
    """
    ordered = order_features(report)
    by_name = {str(c): c for c in current.columns}
    sections: dict[str, list[str]] = {key: [] for key, _ in _SECTIONS}
    opened = 0
    for index, name in enumerate(ordered):
        feature = report.features[name]
        is_open = is_drifted(feature) and opened < OPEN_LIMIT
        opened += is_open
        column = current[by_name[name]] if name in by_name else None
        sections[_section(feature)].append(
            _feature(index, name, feature, profile, column, is_open))
    body = "".join(
        f'<section id="{key}"><h2>{title} ({_count(len(sections[key]))})</h2>'
        f"{_rows(sections[key])}</section>"
        for key, title in _SECTIONS if sections[key])
    if opened < sum(is_drifted(f) for f in report.features.values()):
        body = (f'<p class="note">The first {OPEN_LIMIT} drifted features are open; open the '
                "others by clicking their row.</p>") + body
    title = "drift" if report.dataset_drifted else "no drift"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>driftline drift report: {title}</title><style>{CSS}</style></head><body>"
        f"{_summary(report, ordered)}{run_sections(extras or {})}<main>{body}</main>"
        "</body></html>\n"
    )
