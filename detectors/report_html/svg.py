"""Inline SVG plots for the HTML report: axes, ticks and labels drawn in Python, no script.

Shapes carry CSS classes (`ref`, `cur`, `grid`, `axis`, ...) that the page styles, so
each plot is a few kilobytes and a 1,000-feature page stays a few megabytes.
"""

from __future__ import annotations

import html
import math

from detectors.report_html.distributions import CategoryBars, Histogram

WIDTH = 520
_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 16, 12, 40
_LABEL_WIDTH = 150  # room for category names left of the bars
_ROW = 22
_BAR = 8
_MAX_LABEL = 24


def _n(value: float) -> str:
    """A coordinate, to a tenth of a pixel."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_ticks(lo: float, hi: float, target: int = 5, *,
               integer: bool = False) -> tuple[list[float], float]:
    """Round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of ten).

    Args:
        lo: Start of the axis.
        hi: End of the axis.
        target: About how many ticks.
        integer: Integer steps only (for counts and integer-valued columns).

    Returns:
        The ticks and the step between them.

    Examples:
        >>> nice_ticks(0.0, 1.0)
        ([0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0], 0.2)
        >>> nice_ticks(-0.5, 3.5, integer=True)[0]
        [0.0, 1.0, 2.0, 3.0]
    """
    span = hi - lo
    if not (span > 0 and math.isfinite(span)):
        return [lo], 1.0
    raw = span / target
    if integer:
        raw = max(raw, 1.0)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    multipliers = (1.0, 2.0, 5.0, 10.0) if integer else (1.0, 2.0, 2.5, 5.0, 10.0)
    step = next(m * magnitude for m in multipliers if m * magnitude >= raw * (1 - 1e-9))
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    return [k * step for k in range(first, last + 1)], step


def tick_text(value: float, step: float) -> str:
    """A tick label with as many digits as the step needs, and no more.

    Examples:
        >>> [tick_text(v, 0.25) for v in (0.0, 0.25, 1.5)]
        ['0', '0.25', '1.50']
        >>> tick_text(2_500_000.0, 500_000.0)
        '2.5e+06'
    """
    if abs(value) < step * 1e-9:
        return "0"
    if step >= 1e-4 and abs(value) < 1e6:
        decimals = next((d for d in range(8) if abs(round(step, d) - step) <= step * 1e-6), 8)
        return f"{value:.{decimals}f}"
    digits = max(2, math.ceil(math.log10(abs(value) / step)) + 1)
    return f"{value:.{min(digits, 15)}g}"


def _percent_axis(top_share: float, target: int) -> tuple[list[float], float, float]:
    """Ticks (as shares), their step and the axis maximum for shares up to `top_share`."""
    ticks, step = nice_ticks(0.0, max(top_share, 1e-9) * 100, target)
    if ticks[-1] < top_share * 100 * (1 - 1e-9):
        ticks.append(ticks[-1] + step)
    return [t / 100 for t in ticks], step, ticks[-1] / 100


def _pct(share: float, step_percent: float) -> str:
    return tick_text(share * 100, step_percent) + "%"


def _svg_open(width: int, height: int, label: str) -> str:
    return (f'<svg class="plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{html.escape(label)}">')


def _step_path(xs: list[float], ys: list[float], base: float) -> str:
    """A closed outline of bars of heights `ys` between consecutive `xs`."""
    parts = [f"M{_n(xs[0])} {_n(base)}"]
    for i, y in enumerate(ys):
        parts.append(f"V{_n(y)}H{_n(xs[i + 1])}")
    parts.append(f"V{_n(base)}Z")
    return "".join(parts)


def histogram_svg(histogram: Histogram, x_label: str) -> str:
    """Reference and current histograms overlaid on one x scale, y the share of values.

    Args:
        histogram: Shared bin edges and both sides' shares per bin.
        x_label: The x axis title (the feature's name; escaped here).

    Returns:
        One `<svg>` element.
    """
    height = 190
    plot_w, base = WIDTH - _LEFT - _RIGHT, height - _BOTTOM
    plot_h = base - _TOP
    edges = [float(e) for e in histogram.edges]
    lo, hi = edges[0], edges[-1]
    top_share = float(histogram.reference.max(initial=0.0))
    if histogram.current is not None:
        top_share = max(top_share, float(histogram.current.max(initial=0.0)))
    y_ticks, y_step, y_max = _percent_axis(top_share, 4)

    def x_of(value: float) -> float:
        return _LEFT + (value - lo) / (hi - lo) * plot_w

    def y_of(share: float) -> float:
        return base - share / y_max * plot_h

    xs = [x_of(e) for e in edges]
    parts = [_svg_open(WIDTH, height, f"Histogram of {x_label}: reference and current")]
    parts.append('<path class="grid" d="' + "".join(
        f"M{_LEFT} {_n(y_of(t))}H{WIDTH - _RIGHT}" for t in y_ticks[1:]) + '"/>')
    series = [("ref", histogram.reference)]
    if histogram.current is not None:
        series.append(("cur", histogram.current))
    for css, shares in series:
        ys = [y_of(float(s)) for s in shares]
        parts.append(f'<path class="{css}" d="{_step_path(xs, ys, base)}"/>')
    x_ticks, x_step = nice_ticks(lo, hi, 5, integer=histogram.unit_bins)
    marks = "".join(f"M{_n(x_of(t))} {base}v4" for t in x_ticks)
    marks += "".join(f"M{_LEFT} {_n(y_of(t))}h-4" for t in y_ticks)
    parts.append(f'<path class="axis" d="M{_LEFT} {_TOP}V{base}H{WIDTH - _RIGHT}{marks}"/>')
    parts.extend(f'<text class="xt" x="{_n(x_of(t))}" y="{base + 15}">{tick_text(t, x_step)}'
                 "</text>" for t in x_ticks)
    parts.extend(f'<text class="yt" x="{_LEFT - 6}" y="{_n(y_of(t) + 4)}">{_pct(t, y_step)}'
                 "</text>" for t in y_ticks)
    parts.append(f'<text class="xl" x="{_LEFT + plot_w // 2}" y="{height - 4}">'
                 f"{html.escape(_short(x_label, 70))}</text>")
    parts.append(f'<text class="yl" transform="translate(12 {_TOP + plot_h // 2}) rotate(-90)">'
                 "share of values</text>")
    parts.append("</svg>")
    return "".join(parts)


def _short(name: str, limit: int = _MAX_LABEL) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def bars_svg(bars: CategoryBars) -> str:
    """Side-by-side horizontal bars per category, x the share of values.

    Args:
        bars: The categories shown and both sides' shares (the last bar is "other" when
            `bars.n_other` is positive).

    Returns:
        One `<svg>` element.
    """
    left = _LABEL_WIDTH + 8
    labels = list(bars.labels)
    rows = len(labels) + (1 if bars.n_other else 0)
    top = _TOP + 14  # room for the "category" header
    base = top + rows * _ROW
    height = base + _BOTTOM
    plot_w = WIDTH - left - _RIGHT
    top_share = float(bars.reference.max(initial=0.0))
    if bars.current is not None:
        top_share = max(top_share, float(bars.current.max(initial=0.0)))
    x_ticks, x_step, x_max = _percent_axis(top_share, 5)

    def x_of(share: float) -> float:
        return left + share / x_max * plot_w

    parts = [_svg_open(WIDTH, height, "Category shares: reference and current")]
    parts.append('<path class="grid" d="' + "".join(
        f"M{_n(x_of(t))} {top}V{base}" for t in x_ticks[1:]) + '"/>')
    parts.append(f'<text class="yh" x="{left - 8}" y="{top - 6}">category</text>')
    for i in range(rows):
        y = top + i * _ROW + (_ROW - 2 * _BAR - 1) / 2
        ref = float(bars.reference[i])
        cur = None if bars.current is None else float(bars.current[i])
        if i < len(labels):
            name = labels[i]
            shown = html.escape(_short(name))
            if bars.new[i]:
                shown += '<tspan class="new"> (new)</tspan>'
            label = f'<text class="yt" x="{left - 8}" y="{_n(y + _BAR + 4)}">{shown}</text>'
        else:
            name = f"other ({bars.n_other} categories)"
            label = (f'<text class="yt other" x="{left - 8}" y="{_n(y + _BAR + 4)}">'
                     f"{name}</text>")
        tip = f"{name}: reference {ref:.1%}" + ("" if cur is None else f", current {cur:.1%}")
        rects = f'<rect class="ref" x="{left}" y="{_n(y)}" width="{_n(x_of(ref) - left)}" ' \
                f'height="{_BAR}"/>'
        if cur is not None:
            rects += (f'<rect class="cur" x="{left}" y="{_n(y + _BAR + 1)}" '
                      f'width="{_n(x_of(cur) - left)}" height="{_BAR}"/>')
        parts.append(f"<g><title>{html.escape(tip)}</title>{label}{rects}</g>")
    marks = "".join(f"M{_n(x_of(t))} {base}v4" for t in x_ticks)
    parts.append(f'<path class="axis" d="M{left} {top}V{base}H{WIDTH - _RIGHT}{marks}"/>')
    parts.extend(f'<text class="xt" x="{_n(x_of(t))}" y="{base + 15}">{_pct(t, x_step)}</text>'
                 for t in x_ticks)
    parts.append(f'<text class="xl" x="{left + plot_w // 2}" y="{height - 4}">'
                 "share of values</text>")
    parts.append("</svg>")
    return "".join(parts)
