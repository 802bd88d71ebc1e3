"""Issue 10, must-show: realized performance on the real broker, with labels out of order.

5,000 scored predictions over six hourly buckets go through Kafka with their labels: 20% of
the labels are produced (and stored) before their predictions, 40% after them but before the
first run, 30% after the first run, 10% never. Coverage, delay and every metric equal
scikit-learn's on the joined subset (1e-9); the run after the late labels recomputes exactly
the buckets they fall in; on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from collector.app import Service
from collector.events import LabelEvent, PredictionEvent, encode_event
from tests.integration.pipeline import (
    get_json,
    new_topics,
    one_model_settings,
    start_without_scheduler,
    wait_stored,
)
from tests.integration.spine import produce

pytestmark = pytest.mark.integration

SEED = 20261129
MODEL = "credit"
N = 5000
STEP_MS = 4320  # 5,000 predictions 4.32 s apart: six hourly buckets of 833 or 834
HOUR = pd.Timedelta(hours=1)
LATE_BUCKETS = (1, 3, 4)  # the late labels all belong to predictions of these hours
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "log_loss",
           "brier")


def _features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame({"income": rng.normal(0, 1, n), "debt": rng.normal(0, 1, n),
                         "channel": rng.choice(["web", "app", "branch"], n, p=[0.5, 0.3, 0.2])})


def _design(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    return np.column_stack([frame.income, frame.debt, frame.channel == "app",
                            frame.channel == "branch"]).astype(np.float64)


def _outcomes(rng: np.random.Generator, frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    app = (frame.channel == "app").to_numpy(np.float64)
    logit: npt.NDArray[np.float64] = (1.3 * frame.income.to_numpy(np.float64)
                                      - 0.9 * frame.debt.to_numpy(np.float64) + 0.6 * app - 0.3)
    return (rng.uniform(size=len(frame)) < 1 / (1 + np.exp(-logit))).astype(np.int64)


def _scored(rng: np.random.Generator, model: LogisticRegression, n: int) -> pd.DataFrame:
    frame = _features(rng, n)
    frame["prediction"] = model.predict_proba(_design(frame))[:, 1]
    frame["label"] = _outcomes(rng, frame)
    return frame


def _fates(rng: np.random.Generator, hours: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    """Exact counts: 1,500 late (from LATE_BUCKETS only), 500 never, 1,000 before, 2,000 first."""
    fate = np.full(N, "", dtype="<6U")
    late_pool = np.flatnonzero(np.isin(hours, LATE_BUCKETS))
    fate[rng.choice(late_pool, 1500, replace=False)] = "late"
    rest = rng.permutation(np.flatnonzero(fate == ""))
    fate[rest[:500]], fate[rest[500:1500]], fate[rest[1500:]] = "never", "before", "first"
    return fate


def _expected(rows: pd.DataFrame) -> dict[str, float]:
    y, p = rows.label.to_numpy(), rows.prediction.to_numpy()
    hard = (p >= 0.5).astype(int)
    return {
        "accuracy": skm.accuracy_score(y, hard), "precision": skm.precision_score(y, hard),
        "recall": skm.recall_score(y, hard), "f1": skm.f1_score(y, hard),
        "roc_auc": skm.roc_auc_score(y, p), "average_precision": skm.average_precision_score(y, p),
        "log_loss": skm.log_loss(y, p), "brier": skm.brier_score_loss(y, p),
    }


def _assert_sklearn(metrics: Mapping[str, Any], rows: pd.DataFrame) -> None:
    expected = _expected(rows)
    for name in METRICS:
        assert metrics[name] == pytest.approx(expected[name], rel=1e-9, abs=1e-12), name


def _assert_window(result: Mapping[str, Any], current: pd.DataFrame,
                   joined: npt.NDArray[np.bool_], delay_ms: npt.NDArray[np.int64]) -> None:
    window = result["window"]
    assert window["n_events"] == N
    assert window["n_labelled"] == int(joined.sum())
    assert window["label_coverage"] == pytest.approx(joined.sum() / N, rel=1e-12)
    delays = delay_ms[joined] / 1000.0
    assert window["label_delay_median_seconds"] == pytest.approx(float(np.median(delays)),
                                                                 rel=1e-9)
    assert window["label_delay_p95_seconds"] == pytest.approx(
        float(np.percentile(delays, 95)), rel=1e-9)
    performance = result["performance"]
    assert performance["n_labelled"] == int(joined.sum())
    assert performance["n_total"] == N
    _assert_sklearn(performance["metrics"], current[joined])
    estimated = result["estimated_performance"]
    assert estimated is not None
    assert estimated["method"] == "cbpe"
    assert estimated["n"] == N
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        metric = estimated["metrics"][name]
        assert metric["n"] == N, name
        assert metric["lower"] <= metric["value"] <= metric["upper"], name
    # The scores are calibrated (a logistic regression of a logistic truth), so the estimate
    # from scores alone lands near the realized value; 0.05 is several sampling errors.
    for name in ("accuracy", "roc_auc"):
        assert estimated["metrics"][name]["value"] == pytest.approx(
            performance["metrics"][name], abs=0.05), name


def _assert_buckets(buckets: list[dict[str, Any]], current: pd.DataFrame,
                    hours: npt.NDArray[np.int64], joined: npt.NDArray[np.bool_],
                    t0: datetime) -> dict[int, dict[str, Any]]:
    """Every stored bucket equals sklearn on its joined rows; returns them by hour."""
    by_hour = {}
    for bucket in buckets:
        offset = (pd.Timestamp(bucket["start"]) - pd.Timestamp(t0)) / HOUR
        assert float(offset).is_integer(), bucket["start"]
        hour = int(offset)
        in_hour = hours == hour
        rows = current[in_hour & joined]
        assert bucket["n_predictions"] == int(in_hour.sum())
        assert bucket["n_labelled"] == len(rows)
        assert bucket["label_coverage"] == pytest.approx(len(rows) / in_hour.sum(), rel=1e-12)
        assert bucket["status"] == "ok"
        _assert_sklearn(bucket["metrics"], rows)
        by_hour[hour] = bucket
    assert sorted(by_hour) == list(range(6))
    return by_hour


def _run(service: Service) -> dict[str, Any]:
    summary = service.monitors[MODEL].run()
    assert summary is not None
    assert summary.status == "ok", summary.error
    runs = get_json(service, f"/v1/models/{MODEL}/runs")["runs"]
    assert runs[0]["id"] == summary.run_id
    assert runs[0]["status"] == "ok"
    result: dict[str, Any] = runs[0]["result"]
    assert runs[0]["n_labelled"] == result["window"]["n_labelled"]
    return result


def test_labels_out_of_order_give_sklearn_metrics_and_late_labels_update_their_buckets(
    tmp_path: Path, kafka_bootstrap: str, database_url: str,
    topic_factory: Callable[[str], str],
) -> None:
    rng = np.random.default_rng(SEED)
    training = _features(rng, 4000)
    classifier = LogisticRegression().fit(_design(training), _outcomes(rng, training))
    reference = _scored(rng, classifier, 3000)
    current = _scored(rng, classifier, N)

    # Whole hours, ending at least an hour before now: label times stay in the past.
    t0 = (datetime.now(UTC) - timedelta(hours=8)).replace(minute=0, second=0, microsecond=0)
    offsets_ms = np.arange(N, dtype=np.int64) * STEP_MS
    hours = offsets_ms // 3_600_000
    delay_ms = rng.integers(1_000, 3_600_000, N)
    fate = _fates(rng, hours)
    assert [int((fate == f).sum()) for f in ("before", "first", "late", "never")] == [
        1000, 2000, 1500, 500]

    def at(ms: int) -> datetime:
        return t0 + timedelta(milliseconds=ms)

    predictions = [encode_event(PredictionEvent(
        event_id=f"p-{i}", model=MODEL, timestamp=at(int(offsets_ms[i])),
        features={"income": float(row.income), "debt": float(row.debt),
                  "channel": str(row.channel)},
        prediction=float(row.prediction), model_version="3", request_id=f"req-{i}",
    )) for i, row in enumerate(current.itertuples())]

    def labels(which: str) -> list[bytes]:
        return [encode_event(LabelEvent(
            event_id=f"l-{i}", model=MODEL, request_id=f"req-{i}",
            timestamp=at(int(offsets_ms[i] + delay_ms[i])), label=int(current.label[i]),
        )) for i in np.flatnonzero(fate == which)]

    topics = new_topics(topic_factory)
    settings = one_model_settings(
        tmp_path, database_url=database_url, bootstrap=kafka_bootstrap, topics=topics,
        reference=reference, model={
            "name": MODEL, "task": "classification",
            "features": {"income": "numeric", "debt": "numeric", "channel": "categorical"},
            "prediction": "numeric", "window": {"last_events": 10_000},
            "performance": {"bucket": "1h"},
        })
    key = MODEL.encode()
    service = start_without_scheduler(settings)
    try:
        # Labels whose predictions are not in the store yet, then the predictions.
        produce(kafka_bootstrap, topics["labels_topic"], labels("before"), key=key)
        wait_stored(service, MODEL, predictions=0, labels=1000)
        produce(kafka_bootstrap, topics["predictions_topic"], predictions, key=key)
        wait_stored(service, MODEL, predictions=N, labels=1000)
        produce(kafka_bootstrap, topics["labels_topic"], labels("first"), key=key)
        wait_stored(service, MODEL, predictions=N, labels=3000)

        joined = np.isin(fate, ["before", "first"])
        first = _run(service)
        _assert_window(first, current, joined, delay_ms)
        path = f"/v1/models/{MODEL}/performance"
        before = get_json(service, path)
        assert before["bucket"] == "1h"
        before_by_hour = _assert_buckets(before["buckets"], current, hours, joined, t0)

        # The late 30%: the next run recomputes their buckets, and only theirs.
        produce(kafka_bootstrap, topics["labels_topic"], labels("late"), key=key)
        wait_stored(service, MODEL, predictions=N, labels=4500)
        joined = fate != "never"
        second = _run(service)
        _assert_window(second, current, joined, delay_ms)
        after_by_hour = _assert_buckets(get_json(service, path)["buckets"], current, hours,
                                        joined, t0)
        late = fate == "late"
        for hour, bucket in after_by_hour.items():
            old = before_by_hour[hour]
            if hour in LATE_BUCKETS:
                assert bucket["n_labelled"] == old["n_labelled"] + int((late & (hours == hour))
                                                                       .sum())
                assert pd.Timestamp(bucket["updated_at"]) > pd.Timestamp(old["updated_at"])
                assert bucket["metrics"] != old["metrics"]
            else:
                assert bucket == old, f"bucket {hour} has no late label but changed"

        # The never-labelled 10% stay out at any width, here whole days computed on demand.
        daily = get_json(service, path, bucket="1D")["buckets"]
        days = pd.DatetimeIndex([at(int(ms)) for ms in offsets_ms]).floor("1D")
        assert sum(b["n_labelled"] for b in daily) == N - 500
        for bucket in daily:
            in_day = np.asarray(days == pd.Timestamp(bucket["start"]))
            assert bucket["n_predictions"] == int(in_day.sum())
            _assert_sklearn(bucket["metrics"], current[in_day & joined])
    finally:
        service.stop()
