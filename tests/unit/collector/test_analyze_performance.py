"""`driftline analyze` with labels, predictions and scores: the service's numbers, offline.

Fitted scikit-learn models on its bundled datasets; every metric is checked against
scikit-learn, the estimate against `CBPE` called directly, segment disparities against
fairlearn, and `--config` against `compute_run` called directly.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
)
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from collector.cli import main
from detectors import CBPE

TOL = 1e-9


def _split(frame: pd.DataFrame, target: pd.Series, seed: int) -> tuple[Any, ...]:
    """Train, reference and current thirds, stratified for classes."""
    stratify = target if target.dtype.kind in "iO" else None
    x_train, x_rest, y_train, y_rest = train_test_split(
        frame, target, test_size=0.6, random_state=seed, stratify=stratify)
    x_ref, x_cur, y_ref, y_cur = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=seed,
        stratify=y_rest if stratify is not None else None)
    return x_train, y_train, (x_ref, y_ref), (x_cur, y_cur)


def _analyze(capsys: pytest.CaptureFixture[str], ref: Path, cur: Path, *flags: str,
             fmt: str = "json") -> Any:
    assert main(["analyze", "--reference", str(ref), "--current", str(cur), "--format", fmt,
                 *flags]) == 0
    out = capsys.readouterr().out
    if fmt != "json":
        return out
    report = json.loads(out)
    json.dumps(report, allow_nan=False)
    return report


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Breast cancer: a logistic regression's score, class and a three-way region."""
    folder = tmp_path_factory.mktemp("binary")
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    x_train, y_train, *parts = _split(features, target, 0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    out: dict[str, Any] = {}
    for name, (x, y) in zip(("ref", "cur"), parts, strict=True):
        frame = x.copy()
        frame["target"] = y.to_numpy()
        frame["score"] = model.predict_proba(x)[:, 1]
        frame["predicted"] = (frame["score"] >= 0.5).astype(int)
        frame["region"] = pd.cut(x["mean texture"], [0, 17, 21, 100],
                                 labels=["eu", "us", "apac"]).astype(str)
        frame.to_csv(folder / f"{name}.csv", index=False)
        out[name], out[f"{name}_frame"] = folder / f"{name}.csv", frame
    return out


def _binary_metrics(y: Any, score: Any) -> dict[str, float]:
    hard = (score >= 0.5).astype(int)
    return {"accuracy": skm.accuracy_score(y, hard), "precision": skm.precision_score(y, hard),
            "recall": skm.recall_score(y, hard), "f1": skm.f1_score(y, hard),
            "roc_auc": skm.roc_auc_score(y, score),
            "average_precision": skm.average_precision_score(y, score),
            "log_loss": skm.log_loss(y, score), "brier": skm.brier_score_loss(y, score)}


def _assert_metrics(got: dict[str, Any], expected: dict[str, float]) -> None:
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=TOL, rel=TOL), name


def test_binary_score_gives_sklearns_metrics_and_the_cbpe_estimate(
        binary: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    report = _analyze(capsys, binary["ref"], binary["cur"], "--target", "target",
                      "--score", "score")
    assert report["schema"] == "driftline.drift-report/v1"
    assert "score" not in report["features"]
    assert "target" not in report["features"]
    assert report["features"]["prediction"]["kind"] == "numeric"  # the score's drift
    ref, cur = binary["ref_frame"], binary["cur_frame"]
    performance = report["performance"]
    assert (performance["task"], performance["n_labelled"], performance["label_coverage"]) == (
        "classification", len(cur), 1.0)
    _assert_metrics(performance["metrics"], _binary_metrics(cur["target"], cur["score"]))
    hard = (cur["score"] >= 0.5).astype(int)
    assert performance["confusion_matrix"] == {
        "labels": [0, 1], "matrix": skm.confusion_matrix(cur["target"], hard).tolist()}
    _assert_metrics(report["reference_performance"]["metrics"],
                    _binary_metrics(ref["target"], ref["score"]))
    cbpe = CBPE.fit(ref["target"].to_numpy(), ref["score"].to_numpy(),
                    (ref["score"] >= 0.5).astype(int).to_numpy())
    direct = cbpe.estimate(cur["score"].to_numpy(), hard.to_numpy().astype(float)).to_dict()
    estimated = report["estimated_performance"]
    assert estimated == direct
    assert estimated["method"] == "cbpe"
    for name in ("roc_auc", "f1", "precision", "recall", "accuracy"):
        band = estimated["metrics"][name]
        assert band["lower"] <= band["value"] <= band["upper"], name
    quality = report["data_quality"]
    assert set(quality["features"]) == set(ref.columns) - {"target", "score"}
    assert (quality["unknown_columns"], quality["missing_columns"]) == ([], [])


def test_binary_class_prediction_and_a_positive_label(
        binary: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    report = _analyze(capsys, binary["ref"], binary["cur"], "--target", "target",
                      "--prediction", "predicted", "--positive-label", "0")
    cur, ref = binary["cur_frame"], binary["ref_frame"]
    for got, frame in ((report["performance"], cur), (report["reference_performance"], ref)):
        y, hard = frame["target"], frame["predicted"]
        _assert_metrics(got["metrics"], {
            "accuracy": skm.accuracy_score(y, hard),
            "precision": skm.precision_score(y, hard, pos_label=0),
            "recall": skm.recall_score(y, hard, pos_label=0),
            "f1": skm.f1_score(y, hard, pos_label=0)})
        assert got["metrics"]["roc_auc"] is None
        assert got["metric_status"]["roc_auc"] == "no_scores"
    assert report["estimated_performance"] is None
    assert report["features"]["prediction"]["kind"] == "categorical"


def test_no_labels_in_the_current_file_leaves_performance_null(
        binary: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unlabelled = tmp_path / "unlabelled.csv"
    binary["cur_frame"].drop(columns=["target"]).to_csv(unlabelled, index=False)
    report = _analyze(capsys, binary["ref"], unlabelled, "--target", "target",
                      "--score", "score")
    assert report["performance"] is None
    assert report["reference_performance"]["n_labelled"] == len(binary["ref_frame"])
    assert report["estimated_performance"]["metrics"]["roc_auc"]["value"] is not None
    text = _analyze(capsys, binary["ref"], unlabelled, "--target", "target",
                    "--score", "score", fmt="text")
    assert "estimated (CBPE)" in text
    assert "data quality: " in text


def test_segments_equal_fairlearns(binary: dict[str, Any],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    report = _analyze(capsys, binary["ref"], binary["cur"], "--target", "target",
                      "--score", "score", "--segment", "region")
    [segment] = report["segments"]
    cur = binary["cur_frame"]
    y, region = cur["target"], cur["region"]
    hard = (cur["score"] >= 0.5).astype(int)
    assert segment["by"] == "region"
    assert {g: v["n"] for g, v in segment["groups"].items()} == region.value_counts().to_dict()
    counts = {"accuracy": skm.accuracy_score,
              "precision": partial(skm.precision_score, zero_division=0),
              "recall": partial(skm.recall_score, zero_division=0),
              "f1": partial(skm.f1_score, zero_division=0)}
    frames = [MetricFrame(metrics=counts, y_true=y, y_pred=hard, sensitive_features=region),
              MetricFrame(metrics={"roc_auc": skm.roc_auc_score}, y_true=y,
                          y_pred=cur["score"], sensitive_features=region)]
    disparity = segment["disparity"]
    for frame in frames:
        difference, ratio = frame.difference(), frame.ratio()
        for name in difference.index:
            assert disparity[name]["difference"] == pytest.approx(difference[name], abs=TOL)
            assert disparity[name]["ratio"] == pytest.approx(ratio[name], abs=TOL)
        for group, row in frame.by_group.iterrows():
            for name, value in row.items():
                assert segment["groups"][group]["metrics"][name] == pytest.approx(value, abs=TOL)
    assert disparity["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(y, hard, sensitive_features=region), abs=TOL)
    assert disparity["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(y, hard, sensitive_features=region), abs=TOL)


def test_multiclass_scores_on_wine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = load_wine(as_frame=True)
    names = np.asarray(data.target_names)
    # Two features only, so that the model errs and every metric is informative.
    features = data.data[["alcohol", "malic_acid"]]
    x_train, y_train, *parts = _split(features, pd.Series(names[data.target]), 3)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    classes = list(model.classes_)
    frames = []
    for name, (x, y) in zip(("ref", "cur"), parts, strict=True):
        frame = x.copy()
        frame["cultivar"] = y.to_numpy()
        for i, label in enumerate(classes):
            frame[f"p_{label}"] = model.predict_proba(x)[:, i]
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        frames.append(frame)
    scores = ",".join(f"{c}=p_{c}" for c in reversed(classes))  # any order: by class name
    report = _analyze(capsys, tmp_path / "ref.csv", tmp_path / "cur.csv", "--target",
                      "cultivar", "--scores", scores)
    assert set(report["features"]) == {"alcohol", "malic_acid"}
    for got, frame in ((report["performance"], frames[1]),
                       (report["reference_performance"], frames[0])):
        y, proba = frame["cultivar"], frame[[f"p_{c}" for c in classes]].to_numpy()
        hard = np.asarray(classes)[proba.argmax(axis=1)]
        expected = {"accuracy": skm.accuracy_score(y, hard),
                    "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes),
                    "log_loss": skm.log_loss(y, proba, labels=classes),
                    "brier": skm.brier_score_loss(y, proba, labels=classes)}
        for name in ("precision", "recall", "f1"):
            function = getattr(skm, f"{name}_score")
            expected[name] = function(y, hard, average="macro", zero_division=0)
            expected[f"{name}_weighted"] = function(y, hard, average="weighted",
                                                    zero_division=0)
        _assert_metrics(got["metrics"], expected)
        assert got["confusion_matrix"]["labels"] == classes
    ref, cur = frames
    columns = [f"p_{c}" for c in classes]
    cbpe = CBPE.fit(ref["cultivar"].to_numpy(dtype=object), ref[columns].to_numpy(),
                    np.asarray(classes, dtype=object)[ref[columns].to_numpy().argmax(axis=1)],
                    classes=classes)
    direct = cbpe.estimate(cur[columns].to_numpy(), np.asarray(classes, dtype=object)[
        cur[columns].to_numpy().argmax(axis=1)])
    assert report["estimated_performance"] == direct.to_dict()


def test_regression_on_diabetes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    features, target = load_diabetes(return_X_y=True, as_frame=True)
    x_train, y_train, *parts = _split(features, target, 5)
    model = LinearRegression().fit(x_train, y_train)
    frames = []
    for name, (x, y) in zip(("ref", "cur"), parts, strict=True):
        frame = x.assign(progression=y.to_numpy(), predicted=model.predict(x))
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        frames.append(frame)
    report = _analyze(capsys, tmp_path / "ref.csv", tmp_path / "cur.csv", "--task",
                      "regression", "--target", "progression", "--prediction", "predicted")
    for got, frame in ((report["performance"], frames[1]),
                       (report["reference_performance"], frames[0])):
        y, predicted = frame["progression"], frame["predicted"]
        assert got["task"] == "regression"
        _assert_metrics(got["metrics"], {
            "mae": skm.mean_absolute_error(y, predicted),
            "mse": skm.mean_squared_error(y, predicted),
            "rmse": skm.root_mean_squared_error(y, predicted),
            "mape": skm.mean_absolute_percentage_error(y, predicted),
            "msle": skm.mean_squared_log_error(y, predicted),
            "median_ae": skm.median_absolute_error(y, predicted),
            "r2": skm.r2_score(y, predicted), "mean_error": float(np.mean(predicted - y))})
    assert report["estimated_performance"] is None


def test_config_gives_the_json_of_compute_run(
        binary: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from collector.config import load_settings
    from collector.reference import ModelReference, read_table
    from collector.run import RunInput, compute_run

    columns = {"mean radius": "numeric", "mean texture": "numeric", "region": "categorical"}
    for name in ("ref", "cur"):
        frame = binary[f"{name}_frame"].rename(columns={"target": "label",
                                                        "score": "prediction"})
        if name == "cur":
            frame.loc[frame.index[::4], "label"] = np.nan  # a quarter not labelled yet
        frame[[*columns, "prediction", "label"]].to_csv(tmp_path / f"{name}.csv", index=False)
    config = tmp_path / "driftline.yaml"
    config.write_text(f"""
models:
  - name: cancer
    features: {json.dumps(columns)}
    prediction: numeric
    reference: {{path: ref.csv}}
    performance: {{prediction_type: score, threshold: 0.4, positive_label: 1}}
    quality: {{out_of_range_share: 0.0}}
    segments: {{by: [region]}}
""")
    assert main(["analyze", "--config", str(config), "--current", str(tmp_path / "cur.csv"),
                 "--format", "json"]) == 0
    offline = json.loads(capsys.readouterr().out)
    model = load_settings(config, environ={}).model("cancer")
    current = read_table(tmp_path / "cur.csv")
    reference = ModelReference.fit(model, read_table(model.reference.path),
                                   str(model.reference.path))
    labels = [None if np.isnan(v) else v for v in current["label"]]
    data = RunInput(features=current[list(columns)], predictions=current["prediction"].tolist(),
                    labels=labels, segment_values={"region": current["region"].tolist()})
    direct = compute_run(model, reference, data).to_dict()
    assert offline == json.loads(json.dumps(direct, allow_nan=False))
    assert offline["performance"]["n_labelled"] == len(current) - len(current[::4])
    assert offline["estimated_performance"] is not None
    assert offline["segments"][0]["by"] == "region"


@pytest.mark.parametrize(("flags", "message"), [
    (["--target", "nope"], "--target: column 'nope' is in neither file"),
    (["--score", "nope"], "--score: column 'nope' is not in the current file"),
    (["--segment", "nope"], "--segment: column 'nope' is not in the current file"),
    (["--scores", "0=score"], "--scores needs a column for each of at least two classes"),
    (["--scores", "bogus"], "is not CLASS=COLUMN"),
    (["--target", "target", "--scores", "0=score,7=score"],
     "--scores: the classes ['7'] are not among the classes ['0', '1']"),
    (["--target", "target", "--scores", "0=score,0=score"], "names the class '0' twice"),
    (["--task", "regression", "--score", "score"], "--score and --scores are for classif"),
    (["--target", "target", "--score", "score", "--positive-label", "7"],
     "--positive-label '7' is not one of the labels ['0', '1']"),
    (["--task", "banana"], "invalid choice: 'banana'"),
    (["--prediction", "predicted", "--score", "score"], "not allowed with argument"),
    (["--target", "region", "--score", "score"], "1-D scores are binary, but there are 3"),
])
def test_bad_input_exits_2_with_one_line(binary: dict[str, Any], flags: list[str],
                                         message: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "--reference", str(binary["ref"]), "--current",
                 str(binary["cur"]), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert message in err[0]
    assert "Traceback" not in err[0]
