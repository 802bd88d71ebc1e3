"""bench/service.py runs end to end in a tiny configuration, so that it cannot rot unseen.

Every part on the real broker and PostgreSQL, with a few hundred events: the figures mean
nothing at this size, only that each is measured and consistent (every event stored once,
the stored run's drift the same as in memory, the latency's steps inside its whole).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
EVENTS, WINDOW = 400, 300


def test_bench_service_measures_every_part(kafka_bootstrap: str, postgres_url: str,
                                           tmp_path: Path) -> None:
    saved = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "service.py"), "--bootstrap", kafka_bootstrap,
         "--postgres-url", postgres_url, "--stores", "postgresql", "--processes", "2",
         "--events", str(EVENTS), "--partitions", "2", "--window-sizes", str(WINDOW),
         "--repeats", "1", "--probes", "1", "--every", "1", "--latency-window", "200",
         "--reference-rows", "2000", "--json"],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    saved.write_text(done.stdout, encoding="utf-8")
    results = json.loads(done.stdout)
    assert "errors" not in results, results.get("errors")

    ingest = results["ingest"]
    assert len(ingest["baseline"]) == 2
    assert all(b["events"] == EVENTS and b["events_per_second"] > 0 for b in ingest["baseline"])
    [collector] = ingest["collector"]
    assert (collector["store"], collector["processes"]) == ("postgresql", 2)
    assert (collector["stored"], collector["duplicates"]) == (EVENTS, 0)
    assert collector["ratio"] > 0
    assert collector["bytes_on_disk"] > EVENTS * 100  # 50 features an event take room

    store = results["window"]["stores"]["postgresql"]
    window = store["windows"][str(WINDOW)]
    assert window["same_drift"], "the stored window's drift differs from the frame's"
    assert len(window["service_seconds"]) == len(window["memory_seconds"]) == 1
    for path in ("service_peak", "memory_peak"):
        assert window[path]["peak_mb"] >= window[path]["rss_before_mb"] > 0

    [latency] = results["latency"]
    [probe] = latency["probes"]
    assert probe["end_to_end"] >= probe["without_wait"] >= probe["stored"] > 0
    assert probe["run"] > 0

    table = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "service.py"), "--from-json", str(saved)],
        capture_output=True, text=True, timeout=60, check=True, cwd=ROOT).stdout
    assert "PostgreSQL, 2 processes" in table
    assert "FAILED" not in table
