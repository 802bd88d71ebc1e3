"""The screenshot of the HTML drift report in docs/: 50 features, 10 of them drifted.

    .venv/bin/python examples/report_screenshot.py [--output docs/report-screenshot.png]

Seeded data (36 numeric and 14 categorical features; 7 numeric and 3 categorical
drift), `detect_drift` with the default options, `render_html`, then Debian's headless
`chromium --screenshot` of the page. The same data and screenshot serve the browser test
(tests/integration/test_report_browser.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from detectors import ReferenceProfile, detect_drift, render_html

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261129
N_REFERENCE, N_CURRENT = 5000, 2000
NUMERIC = ["amount", "account_age_days", "session_seconds", "basket_items", "income",
           "credit_score", "latency_ms", "page_views", "discount_rate", "age"] + [
    f"sensor_{i:02d}" for i in range(26)]
CATEGORICAL = ["country", "device", "channel", "payment_method", "browser", "plan",
               "merchant_category", "language", "os", "referrer", "currency", "region",
               "weekday", "card_brand"]
# Drifted features and how strongly (numeric: a shift of about that many standard
# deviations; categorical: the share of the window moved to other categories).
DRIFTED_NUMERIC = {"latency_ms": 1.0, "amount": 1.0, "basket_items": 0.6, "credit_score": 0.4,
                   "sensor_03": 0.3, "sensor_11": 0.25, "sensor_20": 0.2}
DRIFTED_CATEGORICAL = {"country": 0.8, "device": 0.4, "payment_method": 0.3}


def _numeric(name: str, rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    if name == "amount":
        return rng.lognormal(3.0 + 0.6 * shift, 0.8, n)
    if name in ("basket_items", "page_views"):
        return rng.poisson(3 + 2 * shift, n).astype(float)
    if name == "latency_ms":
        return rng.gamma(2.0 + 2 * shift, 40.0, n)
    if name == "credit_score":
        return np.clip(rng.normal(680 - 45 * shift, 50, n), 300, 850)
    if name == "discount_rate":
        return rng.beta(2, 8, n)
    return rng.normal(10 * shift, 10, n) + (50 if name.startswith("sensor") else 0)


def _categorical(name: str, rng: np.random.Generator, n: int, moved: float) -> np.ndarray:
    levels = [f"{name}_{i}" for i in range(4 + len(name) % 9)]
    if name == "country":
        levels = ["DE", "FR", "US", "GB", "ES", "IT", "NL", "PL", "SE", "AT", "BE", "CH", "PT"]
    if name == "merchant_category":
        levels = [f"mcc_{5000 + 11 * i}" for i in range(40)]  # more than the plot's top 10
    weights = np.linspace(1.0, 0.2, len(levels))
    weights /= weights.sum()
    if moved:
        # Part of the window moves to the rarer half of the categories and to a new one.
        target = np.append(np.where(np.arange(len(levels)) >= len(levels) // 2, 1.0, 0.0), 3.0)
        weights = (1 - moved) * np.append(weights, 0.0) + moved * target / target.sum()
        levels = [*levels, "BR" if name == "country" else f"{name}_new"]
    return rng.choice(levels, n, p=weights / weights.sum())


def make_frames(seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and current frames: 50 features, 10 of them drifted."""
    rng = np.random.default_rng(seed)
    frames = []
    for n, current in ((N_REFERENCE, False), (N_CURRENT, True)):
        columns: dict[str, np.ndarray] = {}
        for name in NUMERIC:
            columns[name] = _numeric(name, rng, n, DRIFTED_NUMERIC.get(name, 0.0) * current)
        for name in CATEGORICAL:
            columns[name] = _categorical(name, rng, n,
                                         DRIFTED_CATEGORICAL.get(name, 0.0) * current)
        frames.append(pd.DataFrame(columns))
    return frames[0], frames[1]


def screenshot(chromium: str, url: str, png: Path, *, width: int, height: int) -> None:
    """`chromium --screenshot` of `url` in a window of width x height CSS pixels."""
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--no-first-run", f"--user-data-dir={profile}", f"--screenshot={png}",
             f"--window-size={width},{height}", url],
            capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium --screenshot exited {done.returncode}: "
                           f"{done.stderr[-2000:]}")


def main() -> int:
    """Write the report's HTML (optionally kept) and its screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "report-screenshot.png")
    parser.add_argument("--html", type=Path, help="also keep the page here")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1800)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("report_screenshot: chromium is missing; apt-get install chromium", file=sys.stderr)
        return 1
    reference, current = make_frames()
    profile = ReferenceProfile.fit(reference)
    report = detect_drift(profile, current)
    page = render_html(report, profile, current)
    with tempfile.TemporaryDirectory() as tmp:
        page_path = args.html or Path(tmp) / "report.html"
        page_path.write_text(page, encoding="utf-8")
        screenshot(chromium, page_path.resolve().as_uri(), args.output,
                   width=args.width, height=args.height)
    print(f"{args.output}: {args.output.stat().st_size} bytes; "
          f"{len(report.drifted_features)} of {len(report.features)} features drifted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
