"""The report's run sections: performance, its estimate, data quality, segments.

They draw the JSON objects of a run (`performance`, `reference_performance`,
`estimated_performance`, `data_quality`, `segments`, as `driftline analyze --format json`
prints them), so this package takes plain dicts and never the collector's types. A section
is drawn only when its object is present; metrics that are undefined show "-" with the
reason as a tooltip.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from detectors.report_html.labels import format_number

RUN_KEYS = ("performance", "reference_performance", "estimated_performance",
            "data_quality", "segments")
# Larger confusion matrices are summarised, and quality rows beyond this are counted only.
MAX_MATRIX_CLASSES = 20
MAX_QUALITY_ROWS = 100
_SHARES = (("missing_share", "missing"), ("type_mismatch_share", "type mismatch"),
           ("non_finite_share", "non-finite"), ("out_of_range_share", "out of range"),
           ("new_category_share", "new category"))
_BAND_WIDTH, _BAND_HEIGHT = 160, 14


def _e(value: Any) -> str:
    return html.escape(str(value))


def _num(value: Any, status: str | None = None) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(float(value))
    if status:
        return f'<span title="{_e(status.replace("_", " "))}">-</span>'
    return "-"


def _table(css: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    header = "".join(f"<th>{cell}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f'<table class="{css}"><tr>{header}</tr>{body}</table>'


def _band(estimate: Mapping[str, Any], realized: Any) -> str:
    """An SVG scale over [0, 1]: the band lower..upper, the estimate, the realized value."""
    ends = [v for key in ("lower", "upper", "value")
            if isinstance(v := estimate.get(key), int | float)]
    if len(ends) != 3:
        return ""
    lower, upper, value = (float(v) for v in ends)

    def x(v: float) -> str:
        return f"{min(max(v, 0.0), 1.0) * (_BAND_WIDTH - 2) + 1:.1f}"

    mid = _BAND_HEIGHT / 2
    parts = [f'<line class="track" x1="1" x2="{_BAND_WIDTH - 1}" y1="{mid}" y2="{mid}"/>',
             f'<rect class="range" x="{x(lower)}" y="2" height="{_BAND_HEIGHT - 4}" '
             f'width="{float(x(upper)) - float(x(lower)):.1f}"/>',
             f'<line class="est" x1="{x(value)}" x2="{x(value)}" y1="1" '
             f'y2="{_BAND_HEIGHT - 1}"/>']
    title = f"estimate {format_number(value)}, band [{format_number(lower)}, " \
            f"{format_number(upper)}]"
    if isinstance(realized, int | float):
        parts.append(f'<circle class="cur" cx="{x(realized)}" cy="{mid}" r="3"/>')
        title += f", realized {format_number(realized)}"
    return (f'<svg class="band" width="{_BAND_WIDTH}" height="{_BAND_HEIGHT}" '
            f'viewBox="0 0 {_BAND_WIDTH} {_BAND_HEIGHT}" role="img"><title>{_e(title)}'
            f"</title>{''.join(parts)}</svg>")


def _matrix(title: str, matrix: Mapping[str, Any] | None) -> str:
    if not matrix:
        return ""
    labels = [_e(label) for label in matrix["labels"]]
    if len(labels) > MAX_MATRIX_CLASSES:
        return f"<p>{title}: {len(labels)} classes, too many to draw (see the JSON).</p>"
    rows = [[f"<b>{label}</b>", *(f"{count:,}" for count in row)]
            for label, row in zip(labels, matrix["matrix"], strict=True)]
    return (f'<div class="cm"><p>{title} (rows: true class, columns: predicted)</p>'
            f'{_table("cm", ["", *labels], rows)}</div>')


def _performance(extras: Mapping[str, Any]) -> str:
    current, reference = extras.get("performance"), extras.get("reference_performance")
    estimated = extras.get("estimated_performance")
    sides = [(name, part) for name, part in (("reference", reference), ("current", current))
             if part]
    if not sides and not estimated:
        return ""
    names: list[str] = []
    for _, part in sides:
        names += [n for n in part["metrics"] if n not in names]
    estimates = (estimated or {}).get("metrics", {})
    names += [n for n in estimates if n not in names]
    head = ["metric", *(name for name, _ in sides)]
    if estimated:
        head += ["estimated (CBPE)", "band (&plusmn;3 sampling errors)"]
    rows = []
    for metric in names:
        row = [_e(metric)]
        row += [_num(part["metrics"].get(metric), part.get("metric_status", {}).get(metric))
                for _, part in sides]
        if estimated:
            guess = estimates.get(metric)
            realized = current["metrics"].get(metric) if current else None
            row += ["-", ""] if guess is None else [
                f"{_num(guess['value'])} [{_num(guess['lower'])}, {_num(guess['upper'])}]",
                _band(guess, realized)]
        rows.append(row)
    facts = []
    for name, part in sides:
        coverage = part.get("label_coverage")
        facts.append(f"{name}: {part['n_labelled']:,} labelled of {part['n_total']:,} rows"
                     + (f" ({coverage:.0%})" if isinstance(coverage, int | float) else ""))
    if not current:
        facts.append("current: no labels, so no realized performance")
    if estimated:
        facts.append(f"estimate on {estimated['n']:,} rows"
                     + (", scores calibrated" if estimated.get("calibrated") else ""))
    legend = ('<p class="legend">Band: the estimate&rsquo;s range (shaded), the estimate '
              "(bar) and the realized value (dot) on a 0&ndash;1 scale.</p>" if estimated
              else "")
    matrices = "".join(_matrix(f"{name.capitalize()} confusion matrix",
                               part.get("confusion_matrix")) for name, part in sides)
    return (f'<section id="performance" class="run"><h2>Performance</h2>'
            f'<p>{"; ".join(facts)}.</p>{_table("metrics", head, rows)}{legend}'
            f'<div class="cms">{matrices}</div></section>')


def _quality(quality: Mapping[str, Any] | None) -> str:
    if not quality:
        return ""
    thresholds = quality.get("thresholds", {})
    features = quality["features"]
    flagged = [(name, f) for name, f in features.items()
               if f["status"] != "ok" or any(f[key] for key, _ in _SHARES)]
    rows = []
    for name, feature in flagged[:MAX_QUALITY_ROWS]:
        row = [f"<b>{_e(name)}</b>", _e(feature["kind"]), _e(feature["status"])]
        for key, _ in _SHARES:
            limit, share = thresholds.get(key), feature[key]
            bad = limit is not None and share > limit
            row.append(f'<span class="bad">{_num(share)}</span>' if bad else _num(share))
        rows.append(row)
    breaches = quality.get("breaches", [])
    facts = [f"{quality['n_rows']:,} rows, {len(features):,} features",
             f"{len(breaches)} breach{'es' if len(breaches) != 1 else ''}"]
    lists = "".join(
        f"<p>{label}: {', '.join(_e(c) for c in quality[key])}</p>"
        for key, label in (("missing_columns", "Missing columns"),
                           ("type_mismatch_columns", "Type mismatch"),
                           ("unknown_columns", "Unknown columns (not in the reference)"))
        if quality.get(key))
    items = "".join(f"<li>{_e(b['feature'])}: {_e(b['check'].replace('_', ' '))} "
                    f"{_num(b['value'])} &gt; {_num(b['threshold'])}</li>"
                    for b in breaches[:MAX_QUALITY_ROWS])
    table = _table("quality", ["feature", "kind", "status", *(t for _, t in _SHARES)], rows)
    rest = len(features) - len(rows)
    note = (f"<p>{rest:,} other feature{'s' if rest != 1 else ''}: every share 0.</p>"
            if rest and len(flagged) <= MAX_QUALITY_ROWS else
            f"<p>{len(flagged) - len(rows):,} more features with a nonzero share "
            "(see the JSON).</p>" if rest else "")
    return (f'<section id="quality" class="run"><h2>Data quality</h2>'
            f'<p>{"; ".join(facts)}.</p>{lists}'
            f'{"<ul>" + items + "</ul>" if items else ""}{table if rows else ""}{note}'
            "</section>")


def _segment(segment: Mapping[str, Any]) -> str:
    groups = segment["groups"]
    metrics: list[str] = []
    for group in groups.values():
        metrics += [m for m in group["metrics"] if m not in metrics]
    rows = [[f"<b>{_e(name)}</b>", f"{group['n']:,}",
             *(_num(group["metrics"].get(m)) for m in metrics)]
            for name, group in groups.items()]
    spread = segment["disparity"]
    gaps = [[_e(m), _num(d["difference"]), _num(d["ratio"])]
            for m, d in spread.items() if isinstance(d, Mapping)]
    fairness = [f"{label} {_num(spread.get(key))}" for key, label in (
        ("demographic_parity_difference", "demographic parity difference"),
        ("equalized_odds_difference", "equalized odds difference"))
        if spread.get(key) is not None]
    notes = []
    if segment.get("n_groups_dropped"):
        notes.append(f"{segment['n_groups_dropped']:,} smaller groups "
                     f"({segment['n_rows_dropped']:,} rows) left out")
    for key, label in (("groups_without_positives", "without actual positives"),
                       ("groups_without_negatives", "without actual negatives")):
        if segment.get(key):
            notes.append(f"{label}: {', '.join(_e(g) for g in segment[key])}")
    text = "; ".join(fairness + notes)
    return (f'<h3>By {_e(segment["by"])}</h3>'
            f'{_table("metrics groups", ["group", "n", *map(_e, metrics)], rows)}'
            + (f'<p>Disparity between groups (max &minus; min, min / max):</p>'
               f'{_table("metrics", ["metric", "difference", "ratio"], gaps)}' if gaps else "")
            + (f"<p>{text}.</p>" if text else ""))


def run_sections(extras: Mapping[str, Any]) -> str:
    """The HTML of the run sections present in `extras` (keys: `RUN_KEYS`).

    Examples:
        >>> page = run_sections({"data_quality": {"n_rows": 3, "features": {}, "breaches": [],
        ...                                       "unknown_columns": ["debug"]}})
        >>> 'id="quality"' in page, "debug" in page, 'id="performance"' in page
        (True, True, False)
    """
    segments = extras.get("segments") or []
    body = "".join(_segment(segment) for segment in segments)
    return (_performance(extras) + _quality(extras.get("data_quality"))
            + (f'<section id="segments" class="run"><h2>Segments</h2>{body}</section>'
               if body else ""))
