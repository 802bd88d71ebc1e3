"""The service's run with labels (issue 10), on SQLite: joined labels, realized and estimated
performance, buckets recomputed when late labels land, the HTTP API serving all of it.

Numbers are checked against scikit-learn on the joined subset (1e-9).
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from collector.api import ApiContext, create_app
from collector.config import load_settings
from collector.events import LabelEvent, PredictionEvent
from collector.metrics import Metrics
from collector.monitor import ModelMonitor
from collector.store import make_engine, make_session_factory, upgrade
from collector.store.queries import insert_labels, insert_predictions

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _scored(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    amount = rng.normal(shift, 1, n)
    score = 1 / (1 + np.exp(-(1.5 * amount + rng.normal(0, 1, n))))
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-1.5 * amount))).astype(int)
    return pd.DataFrame({"amount": amount, "country": rng.choice(["DE", "FR"], n),
                         "prediction": score, "label": label})


@pytest.fixture
def service(tmp_path: Path, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    _scored(rng, 3000, 0.0).to_csv(tmp_path / "ref.csv", index=False)
    config = tmp_path / "driftline.yaml"
    config.write_text(f"""
database_url: sqlite+pysqlite:///{tmp_path / 'dl.db'}
models:
  - name: fraud
    features: {{amount: numeric, country: categorical}}
    prediction: numeric
    reference: {{path: ref.csv}}
    window: {{last_events: 5000}}
    performance: {{bucket: 1h}}
    segments: {{by: [country, tags.region]}}
""")
    settings = load_settings(config, environ={})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    clock = {"now": T0 + timedelta(hours=6)}
    monitor = ModelMonitor(settings.model("fraud"), sessions, Metrics.create(),
                           clock=lambda: clock["now"])
    yield sessions, monitor, clock
    engine.dispose()


def test_labels_join_whatever_their_order_and_buckets_follow_late_labels(
        service, rng: np.random.Generator) -> None:  # type: ignore[no-untyped-def]
    sessions, monitor, clock = service
    n = 2000
    data = _scored(rng, n, 0.4)
    times = [T0 + timedelta(seconds=9 * i) for i in range(n)]  # five hourly buckets
    fate = rng.choice(["before", "first", "late", "never"], n, p=[0.2, 0.4, 0.3, 0.1])
    delay = rng.uniform(60, 7200, n)
    preds = [PredictionEvent(event_id=f"p{i}", model="fraud", timestamp=times[i],
                             features={"amount": float(data.amount[i]),
                                       "country": data.country[i]},
                             prediction=float(data.prediction[i]), request_id=f"r{i}",
                             model_version="1" if i % 3 else "2",
                             tags={"region": "eu" if i % 2 else "us"}) for i in range(n)]

    def label(i: int) -> LabelEvent:
        return LabelEvent(event_id=f"l{i}", model="fraud", request_id=f"r{i}",
                          timestamp=times[i] + timedelta(seconds=float(delay[i])),
                          label=int(data.label[i]))

    with sessions.begin() as session:
        insert_labels(session, [label(i) for i in np.flatnonzero(fate == "before")], T0)
    with sessions.begin() as session:
        insert_predictions(session, preds, T0)
        insert_labels(session, [label(i) for i in np.flatnonzero(fate == "first")], T0)

    first = monitor.run()
    assert first is not None
    assert first.status == "ok"
    result = first.result
    joined = np.isin(fate, ["before", "first"])
    _equal_to_sklearn(result.performance.metrics, data[joined])
    assert result.window.n_labelled == int(joined.sum())
    assert result.window.label_coverage == pytest.approx(joined.mean(), abs=1e-12)
    assert result.window.label_delay_median_seconds == pytest.approx(
        float(np.median(delay[joined])), rel=1e-9)
    assert result.window.label_delay_p95_seconds == pytest.approx(
        float(np.percentile(delay[joined], 95)), rel=1e-9)
    estimated = result.estimated_performance
    assert estimated is not None
    assert {"roc_auc", "f1", "precision", "recall", "accuracy"} <= set(estimated.metrics)
    assert result.versions is not None
    assert set(result.versions.groups) == {"1", "2"}
    assert [s.by for s in result.segments] == ["country", "tags.region"]
    assert set(result.segments[1].groups) == {"eu", "us"}

    with warnings.catch_warnings():  # starlette would rather have httpx2 than httpx
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    client = TestClient(create_app(ApiContext(
        registry=Metrics.create().registry, session_factory=sessions,
        readiness=dict, model_names=frozenset({"fraud"}),
        performance_history=lambda _name, bucket, limit: monitor.performance_history(
            bucket, limit))))
    before = {b["start"]: b for b in client.get("/v1/models/fraud/performance").json()["buckets"]}
    assert len(before) == 5

    # 30% of the labels land after the first run: the buckets they fall in are recomputed.
    clock["now"] += timedelta(minutes=5)
    with sessions.begin() as session:
        insert_labels(session, [label(i) for i in np.flatnonzero(fate == "late")],
                      clock["now"])
    second = monitor.run()
    assert second is not None
    everything = fate != "never"
    _equal_to_sklearn(second.result.performance.metrics, data[everything])
    body = client.get("/v1/models/fraud/performance", params={"bucket": "1h"}).json()
    assert body["bucket"] == "1h"
    hours = pd.DatetimeIndex(times).floor("1h")
    for bucket in body["buckets"]:
        start = pd.Timestamp(bucket["start"])
        in_bucket = np.asarray(hours == start)
        subset = data[in_bucket & everything]
        assert bucket["n_predictions"] == int(in_bucket.sum())
        assert bucket["n_labelled"] == len(subset)
        assert bucket["label_coverage"] == pytest.approx(len(subset) / in_bucket.sum())
        _equal_to_sklearn(bucket["metrics"], subset)
        assert bucket["n_labelled"] > before[bucket["start"]]["n_labelled"]
    daily = client.get("/v1/models/fraud/performance", params={"bucket": "1D"}).json()
    assert len(daily["buckets"]) == 1
    assert daily["buckets"][0]["n_labelled"] == int(everything.sum())
    assert client.get("/v1/models/fraud/performance",
                      params={"bucket": "soon"}).status_code == 422
    runs = client.get("/v1/models/fraud/runs").json()["runs"]
    assert runs[0]["result"]["performance"]["n_labelled"] == int(everything.sum())
    assert runs[0]["label_coverage"] == pytest.approx(everything.mean())
    assert runs[0]["result"]["estimated_performance"]["method"] == "cbpe"


def _equal_to_sklearn(metrics: dict[str, float | None], rows: pd.DataFrame) -> None:
    y, p = rows.label.to_numpy(), rows.prediction.to_numpy()
    hard = (p >= 0.5).astype(int)
    expected = {
        "accuracy": skm.accuracy_score(y, hard), "precision": skm.precision_score(y, hard),
        "recall": skm.recall_score(y, hard), "f1": skm.f1_score(y, hard),
        "roc_auc": skm.roc_auc_score(y, p), "average_precision": skm.average_precision_score(y, p),
        "log_loss": skm.log_loss(y, p), "brier": skm.brier_score_loss(y, p),
    }
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_coverage_after_counts_predictions_old_enough(rng: np.random.Generator) -> None:
    from collector.run import RunInput, _coverage_after

    times = pd.DatetimeIndex([T0 - timedelta(hours=h) for h in (0.1, 0.5, 2, 3, 5)])
    labelled = np.array([False, False, True, False, True])
    data = RunInput(features=pd.DataFrame(index=range(5)), predictions=[0.5] * 5,
                    prediction_at=times, at=T0, label_ages_seconds=(3600.0, 0.0))
    assert _coverage_after(data, labelled) == {
        "3600": {"n": 3, "n_labelled": 2, "label_coverage": 2 / 3},
        "0": {"n": 5, "n_labelled": 2, "label_coverage": 0.4}}
