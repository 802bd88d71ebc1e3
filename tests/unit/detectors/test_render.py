"""The HTML drift report (and the status column of the text table): pure, no browser."""

from __future__ import annotations

import dataclasses
import html
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from detectors import DriftOptions, ReferenceProfile, detect_drift, render_html, report_to_text
from detectors.report import DriftReport
from detectors.report_html import order_features
from detectors.report_html.distributions import category_bars, numeric_histogram
from detectors.report_html.page import OPEN_LIMIT
from detectors.report_html.svg import nice_ticks, tick_text


class _Page(HTMLParser):
    """The page's feature blocks in document order, and every SVG's text by class."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.features: list[dict[str, str | bool]] = []
        self.texts: dict[str, list[str]] = {}
        self._text_class: str | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "details":
            self.features.append({"name": found["data-feature"] or "",
                                  "drifted": found["data-drifted"] == "1",
                                  "status": found["data-status"] or "", "open": "open" in found})
        elif tag == "text":
            self._text_class = found.get("class") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "text":
            self._text_class = None

    def handle_data(self, data: str) -> None:
        if self._text_class is not None:
            self.texts.setdefault(self._text_class, []).append(data)


def _blocks(page: str) -> dict[str, str]:
    """Each feature's `<details>` block, by (unescaped) feature name."""
    parts = re.split(r'(?=<details class="feature")', page)[1:]
    return {html.unescape(re.search(r'data-feature="([^"]*)"', part)[1]): part  # type: ignore[index]
            for part in parts}


@pytest.fixture
def frames(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_ref, n_cur = 3000, 1000
    many = np.array([f"k{i:02d}" for i in range(25)])
    reference = pd.DataFrame({
        "strong": rng.normal(0, 1, n_ref), "mild": rng.normal(0, 1, n_ref),
        "calm": rng.normal(0, 1, n_ref), "colour": rng.choice(["red", "green", "blue"], n_ref),
        "many": rng.choice(many, n_ref), "gone": rng.normal(0, 1, n_ref),
        "typed": rng.normal(0, 1, n_ref), "few": rng.normal(0, 1, n_ref)})
    few = np.full(n_cur, np.nan)
    few[:5] = 0.0
    current = pd.DataFrame({
        "strong": rng.normal(1.5, 1, n_cur), "mild": rng.normal(0.3, 1, n_cur),
        "calm": rng.normal(0, 1, n_cur),
        "colour": rng.choice(["red", "green", "blue"], n_cur, p=[0.6, 0.2, 0.2]),
        "many": rng.choice(many, n_cur), "typed": rng.choice(["x", "y"], n_cur), "few": few})
    return reference, current


@pytest.fixture
def rendered(frames: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[DriftReport, str]:
    reference, current = frames
    profile = ReferenceProfile.fit(reference)
    report = detect_drift(profile, current, DriftOptions(numeric_method="ks",
                                                         categorical_method="chisquare"))
    # The statuses a window that cannot be compared gets (counted as drifted).
    features = dict(report.features)
    features["gone"] = dataclasses.replace(features["gone"], status="missing", drifted=True)
    features["typed"] = dataclasses.replace(features["typed"], status="type_mismatch",
                                            drifted=True)
    report = dataclasses.replace(report, features=features)
    return report, render_html(report, profile, current)


def test_summary_states_verdict_share_counts_and_sizes(
        rendered: tuple[DriftReport, str]) -> None:
    report, page = rendered
    assert page.startswith("<!doctype html>")
    summary = page[:page.index("<main>")]
    verdict = "Dataset drift detected" if report.dataset_drifted else "No dataset drift"
    assert f'">{verdict}</p>' in summary
    facts = dict(re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", summary))
    assert facts["reference rows"] == "3,000"
    assert facts["current rows"] == "1,000"
    assert facts["features"] == "8"
    assert facts["share drifted"] == f"{report.share_drifted:.0%}"
    assert facts["dataset drift at"] == "&ge; 50%"
    counts = {html.unescape(re.sub("<[^>]+>", "", label)): int(n) for label, n in
              re.findall(r"<tr[^>]*><td>(.*?)</td><td>([\d,]+)</td></tr>", summary)}
    assert counts == {"drift": 3, "type mismatch": 1, "missing": 1, "insufficient data": 1,
                      "no drift": 2}


def test_drifted_features_come_first_worst_first(rendered: tuple[DriftReport, str]) -> None:
    report, page = rendered
    order = [str(f["name"]) for f in _Page(page).features]
    assert order == order_features(report)
    assert sorted(order) == sorted(report.features)
    assert order[:2] == ["typed", "gone"]
    # The tested drifted features by how far past the threshold: strong (p ~ 0) before mild.
    drifted = order[2:5]
    assert set(drifted) == {"strong", "mild", "colour"}
    assert drifted.index("strong") < drifted.index("mild")
    assert order[5] == "few"  # not tested, before the features that passed
    assert set(order[6:]) == {"calm", "many"}
    flags = [bool(f["drifted"]) for f in _Page(page).features]
    assert flags == [True] * 5 + [False] * 3
    assert [bool(f["open"]) for f in _Page(page).features] == flags


def test_categorical_plot_keeps_top_categories_and_names_the_other_bar(
        rendered: tuple[DriftReport, str]) -> None:
    _report, page = rendered
    block = _blocks(page)["many"]
    labels = re.findall(r'<text class="yt[^"]*"[^>]*>([^<]+)</text>', block)
    assert len(labels) == 11
    assert all(re.fullmatch(r"k\d\d", label) for label in labels[:10])
    assert labels[10] == "other (15 categories)"
    assert "The 10 most frequent of 25 categories are drawn" in block
    colour = _blocks(page)["colour"]
    assert "other (" not in colour
    colours = re.findall(r'<text class="yt[^"]*"[^>]*>([^<]+)</text>', colour)
    assert colours[0] == "red"  # 60% of the window: the largest share on either side
    assert sorted(colours) == ["blue", "green", "red"]
    assert colour.count('<rect class="ref"') == colour.count('<rect class="cur"') == 3


def test_category_bars_other_bucket_sums_the_rest() -> None:
    reference = (("a", "b", "c", "d"), np.array([50, 30, 15, 5]))
    current = (("a", "e"), np.array([1, 3]))
    bars = category_bars(reference, current, top=2)
    # Ranked by the larger of the two shares: e (75% of the window) before a (50%, 25%).
    assert bars.labels == ("e", "a")
    assert bars.new == (True, False)
    assert bars.n_other == 3
    assert bars.reference.tolist() == pytest.approx([0.0, 0.5, 0.5])
    assert bars.current.tolist() == pytest.approx([0.75, 0.25, 0.0])  # type: ignore[union-attr]
    # One category left over is drawn, not hidden in an "other" bar of one.
    assert category_bars(reference, None, top=3).n_other == 0


def test_every_plot_has_labelled_axes_and_ticks(rendered: tuple[DriftReport, str]) -> None:
    _report, page = rendered
    for name, block in _blocks(page).items():
        parsed = _Page(block)
        assert block.count("<svg") == 1, name
        assert len(parsed.texts.get("xt", [])) >= 2, name
        assert parsed.texts.get("xl"), name
        if name in ("colour", "many"):
            assert parsed.texts["xl"] == ["share of values"]
            assert parsed.texts["yh"] == ["category"]
            assert all(t.endswith("%") for t in parsed.texts["xt"])
        else:
            assert parsed.texts["xl"] == [name]
            assert parsed.texts["yl"] == ["share of values"]
            assert all(t.endswith("%") for t in parsed.texts["yt"])
            assert len(parsed.texts["yt"]) >= 3
            float(parsed.texts["xt"][0])


def test_histograms_share_bins_and_show_shares() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 5000), rng.normal(3, 1, 200)
    hist = numeric_histogram(reference, current)
    assert hist is not None
    assert hist.current is not None
    assert hist.edges[0] <= min(reference.min(), current.min())
    assert hist.edges[-1] >= max(reference.max(), current.max())
    # Shares, not counts: both sides sum to one although their sizes differ 25-fold.
    assert hist.reference.sum() == pytest.approx(1.0)
    assert hist.current.sum() == pytest.approx(1.0)
    assert hist.clipped == (0, 0)
    spiked = numeric_histogram(np.append(reference, 1e9), current)
    assert spiked is not None
    assert spiked.clipped[0] >= 1
    assert spiked.edges[-1] < 10


def test_overlaid_paths_span_the_same_x_range(rendered: tuple[DriftReport, str]) -> None:
    _report, page = rendered
    block = _blocks(page)["strong"]
    ref = re.search(r'<path class="ref" d="M([\d.]+) [\d.]+(.*?)"', block)
    cur = re.search(r'<path class="cur" d="M([\d.]+) [\d.]+(.*?)"', block)
    assert ref
    assert cur
    assert ref[1] == cur[1]
    assert re.findall(r"H([\d.]+)", ref[2]) == re.findall(r"H([\d.]+)", cur[2])


def test_unmatchable_columns_draw_only_the_reference_and_say_why(
        rendered: tuple[DriftReport, str]) -> None:
    _report, page = rendered
    blocks = _blocks(page)
    for name, badge in (("gone", "missing"), ("typed", "type mismatch")):
        block = blocks[name]
        assert f'<span class="badge bad">{badge}</span>' in block
        assert '<path class="ref"' in block
        assert '<path class="cur"' not in block
        assert "only the reference is drawn" in block
    assert "the window has no such column" in blocks["gone"]
    assert "strings in a numeric column" in blocks["typed"]
    assert '<span class="badge warn">insufficient data</span>' in blocks["few"]
    assert "Not tested: too few values" in blocks["few"]
    assert '<span class="badge drift">drift</span>' in blocks["strong"]
    assert '<span class="badge ok">no drift</span>' in blocks["calm"]


def test_page_is_self_contained(rendered: tuple[DriftReport, str]) -> None:
    _report, page = rendered
    assert "http://" not in page
    assert "https://" not in page
    assert not re.search(r"<script|<link|<img|<iframe|\bsrc=|url\(|@import", page)
    assert "default-src 'none'" in page  # the browser would block any request anyway
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs
    assert all(re.fullmatch(r"#f\d+", href) for href in hrefs)


def test_hostile_names_and_categories_are_escaped(rng: np.random.Generator) -> None:
    name = '<script>alert("x")</script>'
    image = "<img src=x onerror=alert(1)>"
    reference = pd.DataFrame({name: rng.normal(0, 1, 300),
                              "c&<u>": rng.choice([image, "ok"], 300)})
    current = pd.DataFrame({name: rng.normal(2, 1, 300),
                            "c&<u>": rng.choice([image, "<marquee>"], 300)})
    profile = ReferenceProfile.fit(reference)
    page = render_html(detect_drift(profile, current), profile, current)
    assert "<script" not in page
    assert "<img" not in page
    assert "<u>" not in page
    assert "<marquee" not in page
    assert "&lt;script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    # The parser unescapes the attribute back to the exact name.
    assert {f["name"] for f in _Page(page).features} == {name, "c&<u>"}


def test_text_table_names_the_status_of_untested_features(
        rendered: tuple[DriftReport, str]) -> None:
    report, _page = rendered
    text = report_to_text(report)
    lines = {line.split()[0]: line for line in text.splitlines()[3:]}
    assert len(lines) == len(report.features)
    assert lines["typed"].endswith("DRIFT       type mismatch")
    assert lines["gone"].endswith("DRIFT       missing")
    assert lines["few"].endswith("not tested  insufficient data")
    assert lines["strong"].endswith("DRIFT")
    assert lines["calm"].endswith("ok")
    assert text.splitlines()[2].endswith("verdict     status")


def test_ticks_are_round_and_cover_the_axis() -> None:
    for lo, hi in ((0.0, 1.0), (-3.7, 12.2), (1e6, 1e6 + 0.5), (-5e-5, 3e-5), (0.0, 37.0)):
        ticks, step = nice_ticks(lo, hi)
        assert 2 <= len(ticks) <= 12
        assert lo - 1e-12 <= ticks[0] < lo + step
        assert hi - step < ticks[-1] <= hi + abs(hi) * 1e-12
        labels = [tick_text(t, step) for t in ticks]
        assert len(set(labels)) == len(labels), labels
    assert nice_ticks(0.0, 3.0, integer=True)[1] == 1.0


def test_a_1000_feature_report_stays_small_and_scannable() -> None:
    rng = np.random.default_rng(7)
    n = 2000
    columns: dict[str, np.ndarray] = {}
    shifted: dict[str, np.ndarray] = {}
    for i in range(800):
        columns[f"num_{i:03d}"] = rng.normal(0, 1, n)
        shifted[f"num_{i:03d}"] = rng.normal(0.5 if i % 4 == 0 else 0, 1, n)
    levels = np.array([f"level_{j}" for j in range(40)])
    for i in range(200):
        columns[f"cat_{i:03d}"] = rng.choice(levels, n)
        shifted[f"cat_{i:03d}"] = rng.choice(levels[: 40 - i % 25], n)
    reference, current = pd.DataFrame(columns), pd.DataFrame(shifted)
    profile = ReferenceProfile.fit(reference)
    report = detect_drift(profile, current)
    page = render_html(report, profile, current)
    assert len(page.encode()) < 5_000_000
    features = _Page(page).features
    assert len(features) == 1000
    assert page.count("<svg") == 1000
    n_drifted = sum(bool(f["drifted"]) for f in features)
    assert n_drifted > OPEN_LIMIT
    assert [bool(f["drifted"]) for f in features] == [True] * n_drifted + [False] * (
        1000 - n_drifted)
    assert sum(bool(f["open"]) for f in features) == OPEN_LIMIT
    assert f"The first {OPEN_LIMIT} drifted features are open" in page


def test_rendering_is_deterministic(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    reference, current = frames
    profile = ReferenceProfile.fit(reference)
    report = detect_drift(profile, current)
    assert render_html(report, profile, current) == render_html(report, profile, current)
