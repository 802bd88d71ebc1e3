"""The HTML drift report in a real browser: Debian's headless Chromium.

`driftline analyze --format html` on 50 features (10 drifted), opened through the
DevTools protocol: no console error, no request beyond the file itself, drifted
features first and drawn; and `chromium --screenshot` of it (the same command that makes
docs/report-screenshot.png) gives a real picture, plots included. With labels, scores
and a segment the same page also shows performance, its estimate, data quality and
segments, drawn above the features.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from collector.cli import main
from examples.report_screenshot import DRIFTED_CATEGORICAL, DRIFTED_NUMERIC, make_frames
from tests.integration import browser

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DRIFTED = set(DRIFTED_NUMERIC) | set(DRIFTED_CATEGORICAL)
WIDTH, HEIGHT = 1280, 2000
# Plot fills as painted on white: #4c78a8 at 40% (reference), #f58518 at 33% (current).
REFERENCE_FILL, CURRENT_FILL = (183, 201, 220), (252, 214, 178)

_FEATURES_JS = """
Array.from(document.querySelectorAll("details.feature"), (d) => {
  const svg = d.querySelector("svg.plot");
  const box = svg.getBoundingClientRect();
  return {name: d.dataset.feature, drifted: d.dataset.drifted === "1", open: d.open,
          top: d.getBoundingClientRect().top + window.scrollY,
          height: d.getBoundingClientRect().height, shown: svg.checkVisibility(),
          plot: [Math.round(box.width), Math.round(box.height)]};
})
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    try:
        return browser.find_chromium()
    except browser.BrowserError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    reference, current = make_frames()
    reference.to_csv(folder / "reference.csv", index=False)
    current.to_csv(folder / "current.csv", index=False)
    page = folder / "report.html"
    assert main(["analyze", "--reference", str(folder / "reference.csv"), "--current",
                 str(folder / "current.csv"), "--format", "html", "--output", str(page)]) == 0
    return page


_SECTIONS_JS = """
["performance", "quality", "segments"].map((id) => {
  const section = document.getElementById(id);
  const box = section.getBoundingClientRect();
  return {id, shown: section.checkVisibility(), top: box.top + window.scrollY,
          height: box.height, bands: section.querySelectorAll("svg.band").length,
          rows: section.querySelectorAll("tr").length};
})
"""


def _open(chromium: str, url: str, expression: str = _FEATURES_JS
          ) -> tuple[Any, list[str], list[str]]:
    """What `expression` gives on the page, its console errors and the URLs it requested."""
    with browser.devtools_page(chromium, width=WIDTH, height=HEIGHT) as page:
        for domain in ("Runtime", "Log", "Network", "Page"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", url=url)
        page.wait_for("Page.loadEventFired")
        rows = page.call("Runtime.evaluate", expression=expression,
                         returnByValue=True)["result"]["value"]
        requested = [e["params"]["request"]["url"] for e in page.events
                     if e["method"] == "Network.requestWillBeSent"]
        return rows, browser.console_errors(page.events), requested


def _pixels_near(image: np.ndarray, colour: tuple[int, int, int]) -> int:
    distance = np.abs(image[:, :, :3].astype(int) - np.array(colour)).sum(axis=2)
    return int((distance <= 6).sum())


def test_report_opens_without_errors_or_requests_drifted_first(
        chromium: str, report_page: Path) -> None:
    rows, errors, requested = _open(chromium, report_page.as_uri())
    assert errors == []
    assert requested == [report_page.as_uri()]  # self-contained: nothing else is fetched
    assert len(rows) == 50
    assert {row["name"] for row in rows[:10]} == DRIFTED
    assert [row["drifted"] for row in rows] == [True] * 10 + [False] * 40
    tops = [row["top"] for row in rows]
    assert tops == sorted(tops)  # laid out in document order, one below the other
    for row in rows[:10]:
        assert row["open"], row["name"]
        assert row["shown"], row["name"]
        width, height = row["plot"]
        assert width == 520, row["name"]
        assert height >= 150, row["name"]
    # The others are one collapsed line each, their plot in the page but not drawn.
    for row in rows[10:]:
        assert not row["open"], row["name"]
        assert not row["shown"], row["name"]
        assert row["height"] < 40, row["name"]


def test_run_sections_open_without_errors_above_the_features(
        chromium: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    for name, frame in zip(("reference", "current"), make_frames(), strict=True):
        score = rng.uniform(size=len(frame))
        frame.assign(label=(rng.uniform(size=len(frame)) < score).astype(int),
                     score=score).to_csv(tmp_path / f"{name}.csv", index=False)
    page = tmp_path / "run.html"
    assert main(["analyze", "--reference", str(tmp_path / "reference.csv"), "--current",
                 str(tmp_path / "current.csv"), "--target", "label", "--score", "score",
                 "--segment", "region", "--format", "html", "--output", str(page)]) == 0
    sections, errors, requested = _open(chromium, page.as_uri(), _SECTIONS_JS)
    assert errors == []
    assert requested == [page.as_uri()]
    assert [s["id"] for s in sections] == ["performance", "quality", "segments"]
    assert all(s["shown"] and s["height"] > 40 for s in sections), sections
    tops = [s["top"] for s in sections]
    assert tops == sorted(tops)
    assert sections[0]["bands"] == 5  # roc_auc, f1, precision, recall, accuracy
    assert sections[2]["rows"] > 3  # groups and disparities
    rows, _, _ = _open(chromium, page.as_uri())
    assert len(rows) == 51  # the 50 features and the score's drift, below the sections
    assert rows[0]["top"] > tops[-1]


def test_the_error_check_sees_console_errors_and_failed_loads(
        chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><img src="missing.png">'
                    '<script>console.error("boom"); throw new Error("uncaught here")</script>')
    _rows, errors, _requested = _open(chromium, page.as_uri())
    assert any("boom" in e for e in errors), errors
    assert any("uncaught here" in e for e in errors), errors
    assert any("Failed to load resource" in e for e in errors), errors


def test_screenshot_shows_the_report_and_its_plots(tmp_path: Path, chromium: str) -> None:
    png = tmp_path / "report.png"
    html = tmp_path / "report.html"
    subprocess.run([sys.executable, str(ROOT / "examples" / "report_screenshot.py"),
                    "--output", str(png), "--html", str(html), "--width", str(WIDTH),
                    "--height", str(HEIGHT)], check=True, capture_output=True, timeout=300)
    image = browser.read_png(png)
    assert image.shape[:2] == (HEIGHT, WIDTH)
    colours = np.unique(image[:, :, :3].reshape(-1, 3), axis=0)
    assert len(colours) > 100
    assert _pixels_near(image, (255, 255, 255)) > WIDTH * HEIGHT // 2  # a page, mostly white
    # The overlaid histograms are painted, both sides (legend swatches are solid colours).
    assert _pixels_near(image, REFERENCE_FILL) > 5000
    assert _pixels_near(image, CURRENT_FILL) > 5000


def test_committed_screenshot_is_a_small_png_of_the_page() -> None:
    png = ROOT / "docs" / "report-screenshot.png"
    assert png.stat().st_size < 500_000
    image = browser.read_png(png)
    assert image.shape[1] == 1280
    assert _pixels_near(image, REFERENCE_FILL) > 5000
    assert _pixels_near(image, CURRENT_FILL) > 5000
