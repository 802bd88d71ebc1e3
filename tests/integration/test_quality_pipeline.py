"""Issue 10, must-show: 1,000 events carrying seven kinds of data-quality problem, each counted.

Through the real broker, on SQLite and PostgreSQL. The seven kinds a valid event can carry:
a feature absent from the event, an explicit null, a value of the other kind (text or a
boolean in a numeric feature, a number in a categorical one), a numeric value outside the
reference range, a new category, an unknown extra field, and a configured feature that
never appears. Text that reads as infinity is a valid event too, counted as non-finite. A
non-finite JSON number (NaN, Infinity, 1e999, a 400-digit integer) makes the event itself
invalid: it is dead-lettered, never stored, and so counted by the dead-letter counter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from collector.app import Service
from collector.events import PredictionEvent, encode_event
from tests.integration.pipeline import (
    get_json,
    new_topics,
    one_model_settings,
    start_without_scheduler,
    wait_stored,
)
from tests.integration.spine import produce, scrape, wait_for

pytestmark = pytest.mark.integration

SEED = 20261130
MODEL = "shop"
N = 1000
FEATURES = {"amount": "numeric", "age": "numeric", "zip": "numeric",
            "country": "categorical", "device": "categorical", "ghost": "numeric"}
# Rows of each injected problem (disjoint, drawn from one permutation of the 1,000 rows).
SIZES = {
    "amount_null": 40, "amount_text": 25, "amount_bool": 5, "amount_inf_text": 4,
    "amount_number_text": 6, "amount_above": 10, "amount_below": 10, "age_absent": 35,
    "country_new": 60, "country_number": 6, "device_null": 15, "device_absent": 8,
    "debug": 17, "session_id": 50,
}
N_ZIP_TEXT = 600  # more than half of zip's values are text: the feature changed kind
NON_FINITE_NUMBERS = [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999",
                      b"1" + b"0" * 400]

ZERO = {"n_absent": 0, "n_null": 0, "n_type_mismatch": 0, "n_non_finite": 0,
        "n_out_of_range": 0, "n_new_category": 0}
EXPECTED_COUNTS = {
    "amount": {**ZERO, "n_null": 40, "n_type_mismatch": 25 + 5, "n_non_finite": 4,
               "n_out_of_range": 10 + 10},
    "age": {**ZERO, "n_absent": 35},
    "zip": {**ZERO, "n_type_mismatch": N_ZIP_TEXT},
    "country": {**ZERO, "n_type_mismatch": 6, "n_new_category": 60},
    "device": {**ZERO, "n_null": 15, "n_absent": 8},
    "ghost": {**ZERO, "n_absent": N},
}


def _reference(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "amount": np.round(rng.normal(50, 10, n), 2),
        "age": rng.integers(18, 91, n),
        "zip": rng.integers(10_000, 100_000, n),
        "country": rng.choice(["DE", "FR", "IT", "ES"], n),
        "device": rng.choice(["ios", "android", "web"], n),
        "ghost": rng.normal(0, 1, n),
    })


def _inside(rng: np.random.Generator, column: pd.Series, n: int) -> list[Any]:
    """Reference values strictly inside its range (never out of range, whatever the parser)."""
    interior = column[(column > column.min()) & (column < column.max())].to_numpy()
    return [v.item() for v in rng.choice(interior, n)]


def _features(rng: np.random.Generator, reference: pd.DataFrame) -> list[dict[str, Any]]:
    """Valid feature values for every row, then the injected problems at known rows."""
    rows: list[dict[str, Any]] = [
        {"amount": a, "age": g, "zip": z, "country": c, "device": d}
        for a, g, z, c, d in zip(
            _inside(rng, reference.amount, N), _inside(rng, reference.age, N),
            _inside(rng, reference.zip, N), rng.choice(["DE", "FR", "IT", "ES"], N).tolist(),
            rng.choice(["ios", "android", "web"], N).tolist(), strict=True)
    ]
    order = rng.permutation(N)
    groups: dict[str, npt.NDArray[np.int64]] = {}
    start = 0
    for name, size in SIZES.items():
        groups[name] = order[start:start + size]
        start += size
    low, high = float(reference.amount.min()), float(reference.amount.max())
    texts = ["twelve", "", "12,5", "$40", "unknown"]
    for i in groups["amount_null"]:
        rows[i]["amount"] = None
    for k, i in enumerate(groups["amount_text"]):
        rows[i]["amount"] = texts[k % len(texts)]
    for k, i in enumerate(groups["amount_bool"]):
        rows[i]["amount"] = k % 2 == 0
    for k, i in enumerate(groups["amount_inf_text"]):
        rows[i]["amount"] = "inf" if k % 2 else "-inf"
    for i in groups["amount_number_text"]:  # a number written as text is a number: valid
        rows[i]["amount"] = "52.5"
    for k, i in enumerate(groups["amount_above"]):
        rows[i]["amount"] = high + 0.5 + k
    for k, i in enumerate(groups["amount_below"]):
        rows[i]["amount"] = low - 0.5 - k
    for i in groups["age_absent"]:
        del rows[i]["age"]
    for k, i in enumerate(groups["country_new"]):
        rows[i]["country"] = "XX" if k % 3 else "BR"
    for i in groups["country_number"]:
        rows[i]["country"] = 49
    for i in groups["device_null"]:
        rows[i]["device"] = None
    for i in groups["device_absent"]:
        del rows[i]["device"]
    for k, i in enumerate(groups["debug"]):
        rows[i]["debug"] = k % 2 == 0
    for k, i in enumerate(groups["session_id"]):
        rows[i]["session_id"] = f"s-{k}"
    for i in rng.choice(N, N_ZIP_TEXT, replace=False):
        rows[i]["zip"] = "SW1A 1AA"
    return rows


def _non_finite(valid: bytes) -> list[bytes]:
    """Copies of a valid event whose `amount` is a JSON number no double holds finitely."""
    body = json.loads(valid)
    letters = []
    for k, number in enumerate(NON_FINITE_NUMBERS):
        body.update(event_id=f"bad-{k}", features={**body["features"], "amount": "@"})
        letters.append(json.dumps(body).encode().replace(b'"@"', number))
    return letters


def _deadletters(service: Service) -> dict[str, float]:
    assert service.http_port is not None
    return {dict(labels)["reason"]: value for (name, labels), value in
            scrape(service.http_port).items() if name == "driftline_ingest_deadletters_total"}


def test_seven_kinds_of_quality_problem_are_each_counted_exactly(
    tmp_path: Path, kafka_bootstrap: str, database_url: str,
    topic_factory: Callable[[str], str],
) -> None:
    rng = np.random.default_rng(SEED)
    reference = _reference(rng, 2000)
    rows = _features(rng, reference)
    start = datetime.now(UTC) - timedelta(seconds=N)
    valid = [encode_event(PredictionEvent(
        event_id=f"p-{i}", model=MODEL, timestamp=start + timedelta(seconds=i),
        features=features, prediction=float(rng.uniform()), request_id=f"r-{i}",
        model_version="1")) for i, features in enumerate(rows)]
    invalid = _non_finite(valid[0])
    payloads = list(valid)
    for k, letter in enumerate(invalid):  # spread among the valid events
        payloads.insert(150 * k + 7, letter)

    topics = new_topics(topic_factory)
    settings = one_model_settings(
        tmp_path, database_url=database_url, bootstrap=kafka_bootstrap, topics=topics,
        reference=reference, model={"name": MODEL, "features": FEATURES,
                                    "window": {"last_events": 5000}})
    service = start_without_scheduler(settings)
    try:
        produce(kafka_bootstrap, topics["predictions_topic"], payloads, key=MODEL.encode())
        wait_stored(service, MODEL, predictions=N, labels=0)
        wait_for(lambda: _deadletters(service)["non_finite"] == len(invalid), timeout=30,
                 interval=0.1, message="the non-finite events dead-lettered")
        assert {r: v for r, v in _deadletters(service).items() if v} == {
            "non_finite": len(NON_FINITE_NUMBERS)}

        summary = service.monitors[MODEL].run()
        assert summary is not None
        assert summary.status == "ok", summary.error
        run = get_json(service, f"/v1/models/{MODEL}/runs")["runs"][0]
        assert run["id"] == summary.run_id
        result = run["result"]
        quality = result["data_quality"]

        assert result["window"]["n_events"] == N
        assert quality["n_rows"] == N
        counts = {name: {key: feature[key] for key in ZERO}
                  for name, feature in quality["features"].items()}
        assert counts == EXPECTED_COUNTS
        assert quality["unknown_column_counts"] == {"debug": SIZES["debug"],
                                                    "session_id": SIZES["session_id"]}
        assert quality["unknown_columns"] == ["debug", "session_id"]
        assert quality["missing_columns"] == ["ghost"]
        assert quality["type_mismatch_columns"] == ["zip"]
        for name, feature in quality["features"].items():
            assert feature["n_missing"] == feature["n_absent"] + feature["n_null"], name
            assert feature["missing_share"] == pytest.approx(feature["n_missing"] / N), name
        assert [(b["feature"], b["check"]) for b in quality["breaches"]] == [
            ("amount", "type_mismatch_share"), ("amount", "non_finite_share"),
            ("zip", "type_mismatch_share"), ("country", "type_mismatch_share"),
            ("country", "new_category_share"), ("ghost", "missing_share")]

        # Drift agrees: zip changed kind (more than half text), ghost never came; a
        # minority of odd values leaves the other features tested as usual.
        statuses = {name: quality["features"][name]["status"] for name in FEATURES}
        assert statuses == {**dict.fromkeys(FEATURES, "ok"), "zip": "type_mismatch",
                            "ghost": "missing"}
        drift = {name: result["features"][name]["status"] for name in FEATURES}
        stored = {name: run["features"][name]["status"] for name in FEATURES}
        assert drift == stored == statuses
        assert result["features"]["ghost"]["n_current"] == 0
    finally:
        service.stop()
