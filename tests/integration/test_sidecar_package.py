"""Issue 13, item 1: a model server installs the sidecar alone and logs to the real broker.

A fresh venv gets only ``pip install ./sidecar`` (pip takes kafka-python from the package
index, as bench/drift.py does for its peers); `pip list` then shows the sidecar and
kafka-python and none of the service's heavy dependencies, and a script in that venv logs 100
predictions and 100 labels that the collector's own decoder reads back from Kafka. Everything
(the venv, pip's cache, the build) lives under the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer

from collector.events import LabelEvent, PredictionEvent, decode_event

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("sidecar_client.py")
COUNT = 100
HEAVY = {"numpy", "pandas", "scipy", "sqlalchemy", "evidently", "fastapi"}


def _run(command: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, f"{command[2:4]} failed:\n{done.stdout[-2000:]}\n" \
                                 f"{done.stderr[-3000:]}"
    return done.stdout


def _consume(bootstrap: str, topics: list[str], expected: int) -> list[Any]:
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, enable_auto_commit=False)
    records: list[Any] = []
    try:
        for _ in range(60):  # up to about a minute; stops once everything is in
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
            if len(records) >= expected:
                for batch in consumer.poll(timeout_ms=500).values():  # and nothing beyond
                    records.extend(batch)
                break
    finally:
        consumer.close()
    return records


@pytest.mark.timeout(300)
def test_sidecar_alone_installs_light_and_logs_to_the_broker(
        tmp_path: Path, kafka_bootstrap: str, topic_factory: Callable[[str], str]) -> None:
    # A copy of the source, so that pip's build leaves nothing (build/, egg-info) in the repo.
    source = tmp_path / "sidecar"
    shutil.copytree(ROOT / "sidecar", source,
                    ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    shutil.copy(CLIENT, tmp_path / CLIENT.name)
    env = {key: value for key, value in os.environ.items()
           if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"}}
    env["PIP_CACHE_DIR"] = str(tmp_path / "pip-cache")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # The base interpreter, not this venv's: the new venv sees none of our packages.
    base = Path(sys.base_prefix) / "bin" / "python3"
    venv = tmp_path / "venv"
    _run([str(base), "-m", "venv", str(venv)], env, tmp_path)
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "-q", str(source)], env, tmp_path)

    listed = json.loads(_run([python, "-m", "pip", "list", "--format=json"], env, tmp_path))
    installed = {item["name"].lower().replace("_", "-") for item in listed}
    assert not installed & HEAVY
    assert installed - {"pip", "setuptools", "wheel"} == {"driftline-sidecar", "kafka-python"}

    predictions, labels = topic_factory("sidecar.package.p"), topic_factory("sidecar.package.l")
    out = _run([python, CLIENT.name, kafka_bootstrap, predictions, labels, str(COUNT)], env,
               tmp_path)
    report = json.loads(out.strip().splitlines()[-1])
    assert Path(report["package_file"]).is_relative_to(venv)  # the installed copy, not ours
    assert report["importable"] == []  # nor prometheus_client, nor driftline's own packages
    assert report["imported"] == []
    assert report["flushed"]
    assert report["sent"] == 2 * COUNT
    assert sum(report["dropped"].values()) == 0
    ids = report["ids"]
    assert None not in ids
    assert len(set(ids)) == 2 * COUNT

    records = _consume(kafka_bootstrap, [predictions, labels], 2 * COUNT)
    events = [decode_event(record.value) for record in records]  # every one valid for ingest
    assert sorted(event.event_id for event in events) == sorted(ids)
    by_kind = {kind: [e for e in events if isinstance(e, kind)]
               for kind in (PredictionEvent, LabelEvent)}
    assert {kind: len(found) for kind, found in by_kind.items()} == {PredictionEvent: COUNT,
                                                                     LabelEvent: COUNT}
    assert all(record.key == b"fraud" for record in records)
    first = next(e for e in by_kind[PredictionEvent] if e.request_id == "r-1")
    assert isinstance(first, PredictionEvent)
    assert (first.model, first.model_version, first.features, first.prediction,
            dict(first.tags), first.latency_ms) == (
        "fraud", "7", {"amount": 11.0, "country": "DE"}, 0.1, {"region": "eu"}, 1.5)
    assert {e.request_id for e in by_kind[LabelEvent]} == {f"r-{i}" for i in range(COUNT)}
