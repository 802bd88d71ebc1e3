"""A model server's side of the sidecar, run by the test in a venv holding only driftline-sidecar.

    python sidecar_client.py BOOTSTRAP PREDICTIONS_TOPIC LABELS_TOPIC COUNT

Logs COUNT predictions and COUNT labels, then prints one JSON line: the event ids, the logger's
counts, where the package was imported from, and which of the service's heavy dependencies (or
driftline's own packages) are importable or were imported. Only the standard library and
driftline_sidecar here: this file runs outside the project's venv.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import driftline_sidecar
from driftline_sidecar import PredictionLogger

HEAVY = ("numpy", "pandas", "scipy", "sqlalchemy", "evidently", "fastapi", "prometheus_client",
         "collector", "detectors", "alerts")


def main(bootstrap: str, predictions: str, labels: str, count: int) -> dict[str, object]:
    ids: list[str | None] = []
    with PredictionLogger(bootstrap, model="fraud", model_version="7",
                          predictions_topic=predictions, labels_topic=labels,
                          max_unsent_seconds=60) as logger:
        for i in range(count):
            ids.append(logger.log(features={"amount": 10.0 + i, "country": "DE"},
                                  prediction=(i % 10) / 10, request_id=f"r-{i}",
                                  tags={"region": "eu"}, latency_ms=1.5))
        for i in range(count):
            ids.append(logger.log_label(request_id=f"r-{i}", label=i % 2))
        flushed = logger.flush(timeout_seconds=60)
    stats = logger.stats
    return {
        "ids": ids,
        "flushed": flushed,
        "sent": stats.sent,
        "dropped": dict(stats.dropped),
        "package_file": driftline_sidecar.__file__,
        "importable": [name for name in HEAVY if importlib.util.find_spec(name) is not None],
        "imported": [name for name in HEAVY if name in sys.modules],
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
