"""The HTML report's run sections (performance, estimate, data quality, segments): no browser."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest

from detectors import (
    CBPE,
    PerformanceOptions,
    QualityThresholds,
    ReferenceProfile,
    assess_quality,
    compute_performance,
    compute_segments,
    detect_drift,
    render_html,
)
from detectors.report_html.labels import format_number


class _Tags(HTMLParser):
    """Checks that every element closes, and collects ids and the texts of cells."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.cells: list[str] = []
        self._in_cell = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if tag == "td":
            self._in_cell = True
            self.cells.append("")
        if tag not in ("meta", "line", "rect", "circle", "path"):
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if dict(attrs).get("id"):
            self.ids.append(str(dict(attrs)["id"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("line", "rect", "circle", "path"):
            return
        assert self.stack[-1:] == [tag], (self.stack[-3:], tag)
        self.stack.pop()
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.cells[-1] += data


@pytest.fixture
def run(rng: np.random.Generator) -> dict[str, Any]:
    n_ref, n_cur = 2000, 600
    reference = pd.DataFrame({"amount": rng.normal(0, 1, n_ref),
                              "country": rng.choice(["DE", "FR"], n_ref)})
    current = pd.DataFrame({"amount": rng.normal(0.2, 1, n_cur),
                            "country": rng.choice(["DE", "FR", "<US>"], n_cur, p=[.45, .45, .1]),
                            "debug": 1})
    profile = ReferenceProfile.fit(reference)
    p_ref, p_cur = rng.uniform(size=n_ref), rng.uniform(size=n_cur)
    y_ref = (rng.uniform(size=n_ref) < p_ref).astype(int)
    y_cur = (rng.uniform(size=n_cur) < p_cur).astype(int)
    options = PerformanceOptions("classification")
    estimated = CBPE.fit(y_ref, p_ref, (p_ref >= 0.5).astype(int)).estimate(
        p_cur, (p_cur >= 0.5).astype(int))
    quality = assess_quality(profile, current, thresholds=QualityThresholds(
        new_category_share=0.05))
    segments = compute_segments(current["country"], y_cur, scores=p_cur, options=options,
                                by="country")
    extras = {"performance": compute_performance(y_cur, scores=p_cur, options=options).to_dict(),
              "reference_performance": compute_performance(y_ref, scores=p_ref,
                                                           options=options).to_dict(),
              "estimated_performance": estimated.to_dict(), "data_quality": quality.to_dict(),
              "segments": [segments.to_dict()]}
    report = detect_drift(profile, current[["amount", "country"]])
    return {"report": report, "profile": profile, "current": current, "extras": extras}


def test_run_sections_come_between_the_summary_and_the_features(run: dict[str, Any]) -> None:
    page = render_html(run["report"], run["profile"], run["current"], extras=run["extras"])
    tags = _Tags(page)
    assert tags.stack == []  # every element closed
    order = [i for i in tags.ids if i in ("performance", "quality", "segments", "f0")]
    assert order == ["performance", "quality", "segments", "f0"]
    assert page.index("<header>") < page.index('id="performance"') < page.index("<main>")
    # Self-contained: no script, no request of any kind.
    assert "<script" not in page
    assert re.findall(r'(?:src|href)="(?!#)', page) == []
    assert "http://" not in page
    assert "https://" not in page


def test_performance_shows_both_sides_the_matrix_and_the_band(run: dict[str, Any]) -> None:
    extras = run["extras"]
    page = render_html(run["report"], run["profile"], run["current"], extras=extras)
    cells = _Tags(page).cells
    current, reference = extras["performance"], extras["reference_performance"]
    section = page[page.index('id="performance"'):page.index('id="quality"')]
    row = re.search(r"<tr><td>accuracy</td>(.*?)</tr>", section)
    assert row is not None
    assert format_number(reference["metrics"]["accuracy"]) in row[1]
    assert format_number(current["metrics"]["accuracy"]) in row[1]
    estimate = extras["estimated_performance"]["metrics"]["accuracy"]
    assert (f"{format_number(estimate['value'])} [{format_number(estimate['lower'])}, "
            f"{format_number(estimate['upper'])}]") in cells
    assert section.count('<svg class="band"') == len(extras["estimated_performance"]["metrics"])
    assert section.count('<circle class="cur"') == 5  # the realized value on each band
    for count in np.ravel(current["confusion_matrix"]["matrix"]):
        assert f"{count:,}" in cells
    assert "Current confusion matrix" in section
    assert "Reference confusion matrix" in section


def test_quality_and_segments_are_listed_and_escaped(run: dict[str, Any]) -> None:
    extras = run["extras"]
    page = render_html(run["report"], run["profile"], run["current"], extras=extras)
    quality = page[page.index('id="quality"'):page.index('id="segments"')]
    assert "Unknown columns (not in the reference): debug" in quality
    share = extras["data_quality"]["features"]["country"]["new_category_share"]
    assert f'<span class="bad">{format_number(share)}</span>' in quality
    assert "country: new category share" in quality  # the breach
    assert "<US>" not in page  # a category and a group named <US>, escaped
    segments = page[page.index('id="segments"'):page.index("<main>")]
    assert "By country" in segments
    assert "&lt;US&gt;" in segments
    disparity = extras["segments"][0]["disparity"]
    assert format_number(disparity["accuracy"]["difference"]) in segments
    assert format_number(disparity["equalized_odds_difference"]) in segments


def test_without_extras_the_page_is_the_drift_report(run: dict[str, Any]) -> None:
    plain = render_html(run["report"], run["profile"], run["current"])
    assert plain == render_html(run["report"], run["profile"], run["current"], extras={})
    assert 'id="performance"' not in plain
    assert 'class="run"' not in plain
    only = {"performance": None, "data_quality": run["extras"]["data_quality"], "segments": []}
    page = render_html(run["report"], run["profile"], run["current"], extras=only)
    assert 'id="quality"' in page
    assert 'id="performance"' not in page
    assert 'id="segments"' not in page
