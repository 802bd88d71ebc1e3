"""Issue 9: every promise of the CLI, the config check and the offline report, one by one.

Each bad-input case gets its exact exit code and one line on stderr.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collector.cli import build_parser, main


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def same(tmp_path: Path, rng: np.random.Generator) -> tuple[Path, Path]:
    """Two samples of one distribution, 5,000 rows each."""
    def draw() -> pd.DataFrame:
        return pd.DataFrame({"amount": rng.normal(0, 1, 5000),
                             "country": rng.choice(["DE", "FR", "US"], 5000, p=[.5, .3, .2])})
    draw().to_csv(tmp_path / "ref.csv", index=False)
    draw().to_csv(tmp_path / "cur.csv", index=False)
    return tmp_path / "ref.csv", tmp_path / "cur.csv"


def _analyze(ref: Path, cur: Path, *extra: str) -> list[str]:
    return ["analyze", "--reference", str(ref), "--current", str(cur), *extra]


# -- 1. thresholds that mean one thing ------------------------------------------------------------
def test_a_p_value_threshold_leaves_the_categorical_distance_alone(
        same: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_analyze(*same, "--numeric-method", "ks", "--threshold", "0.01",
                         "--format", "json", "--fail-on-drift")) == 0
    report = json.loads(capsys.readouterr().out)
    country = report["features"]["country"]
    assert (country["method"], country["threshold"], country["drifted"]) == (
        "jensenshannon", 0.1, False)
    assert report["features"]["amount"]["threshold"] == 0.01


@pytest.mark.parametrize(("flags", "message"), [
    (["--numeric-method", "ks", "--threshold", "5"],
     "threshold must be a p-value threshold in (0, 1), got 5.0"),
    (["--numeric-method", "ks", "--threshold", "inf"], "got inf"),
    (["--numeric-method", "ks", "--threshold", "nan"], "got nan"),
    (["--p-value-threshold", "1"], "--p-value-threshold must be a p-value threshold in (0, 1)"),
    (["--p-value-threshold", "0"], "--p-value-threshold must be"),
    (["--distance-threshold", "-0.2"], "--distance-threshold must be a positive finite"),
    (["--threshold", "0.05"], "both methods are auto"),
    (["--drift-share", "0"], "--drift-share must be in (0, 1]"),
    (["--min-samples", "0"], "--min-samples must be an integer of at least 1"),
    (["--numeric-method", "chisquare"], "cannot be used for numeric columns"),
    (["--numeric-method", "kolmogorov"], "unknown drift method 'kolmogorov'"),
    (["--categorical-method", "ks"], "cannot be used for categorical columns"),
    (["--threshold", "x"], "invalid float value: 'x'"),
])
def test_out_of_range_options_exit_2_with_one_line(
        same: tuple[Path, Path], capsys: pytest.CaptureFixture[str], flags: list[str],
        message: str) -> None:
    assert main(_analyze(*same, *flags)) == 2
    assert message in _one_line(capsys)


def test_chisquare_on_a_continuous_column_is_refused_with_the_reason(
        same: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_analyze(*same, "--numeric-method", "chisquare")) == 2
    line = _one_line(capsys)
    assert "every value is a category of its own" in line
    assert "ks" in line


# -- 2. honest statuses ---------------------------------------------------------------------------
def test_a_numeric_column_that_became_text_fails_the_gate(
        tmp_path: Path, same: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = same
    broken = pd.read_csv(cur).assign(amount=lambda f: "v" + f["amount"].round(2).astype(str))
    broken.to_csv(tmp_path / "broken.csv", index=False)
    assert main(_analyze(ref, tmp_path / "broken.csv", "--format", "json",
                         "--fail-on-drift")) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["features"]["amount"]["status"] == "type_mismatch"
    assert report["features"]["amount"]["drifted"] is True
    assert report["dataset_drifted"] is True


def test_a_column_missing_from_the_current_file_fails_the_gate(
        tmp_path: Path, same: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = same
    pd.read_csv(cur)[["country"]].to_csv(tmp_path / "fewer.csv", index=False)
    assert main(_analyze(ref, tmp_path / "fewer.csv", "--format", "json",
                         "--fail-on-drift")) == 1
    amount = json.loads(capsys.readouterr().out)["features"]["amount"]
    assert (amount["status"], amount["n_current"], amount["drifted"]) == ("missing", 0, True)


@pytest.mark.parametrize("role", ["reference", "current"])
def test_a_file_with_a_header_and_no_rows_is_bad_input(
        tmp_path: Path, same: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
        role: str) -> None:
    ref, cur = same
    empty = tmp_path / "empty.csv"
    empty.write_text("amount,country\n")
    args = _analyze(empty, cur) if role == "reference" else _analyze(ref, empty)
    assert main(args) == 2
    line = _one_line(capsys)
    assert f"--{role}:" in line
    assert "has a header but no rows" in line


def test_min_samples_lets_a_small_window_be_tested(
        tmp_path: Path, same: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = same
    pd.read_csv(cur).head(12).to_csv(tmp_path / "small.csv", index=False)
    assert main(_analyze(ref, tmp_path / "small.csv", "--format", "json")) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "insufficient_data"
    assert main(_analyze(ref, tmp_path / "small.csv", "--format", "json",
                         "--min-samples", "5")) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "ok"
    assert report["features"]["amount"]["n_current"] == 12
    assert report["features"]["amount"]["statistic"] is not None


# -- 3. exit codes and errors ---------------------------------------------------------------------
def test_output_into_a_missing_directory_is_exit_2(
        tmp_path: Path, same: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_analyze(*same, "--output", str(tmp_path / "nope" / "r.json"))) == 2
    assert "--output: cannot write" in _one_line(capsys)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from collector import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"driftline {__version__}"


def test_every_option_of_every_command_has_help() -> None:
    import argparse

    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        bare = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    bare += walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                bare.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
        return bare

    assert walk(build_parser(), "driftline") == []


def test_analyze_help_lists_the_valid_values(capsys: pytest.CaptureFixture[str]) -> None:
    from detectors import methods_for

    assert main(["analyze", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "one of " + ", ".join(methods_for("numeric")) in text
    assert "one of " + ", ".join(methods_for("categorical")) in text
    assert "P in (0, 1)" in text
    assert "in (0, 1]" in text


@pytest.mark.parametrize("command", [["serve"], ["check-config"], ["db", "upgrade"],
                                     ["analyze", "--current", "c.csv"]])
def test_a_missing_config_file_is_exit_2_for_every_command(
        tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--config", "tpyo.yaml"]) == 2
    assert "tpyo.yaml" in _one_line(capsys)
    assert not (tmp_path / ".driftline").exists()  # db upgrade migrated nothing


def test_a_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze"]) == 2
    assert "the following arguments are required: --current" in _one_line(capsys)
    assert main(["nonsense"]) == 2
    assert "invalid choice" in _one_line(capsys)


# -- 4. check-config ------------------------------------------------------------------------------
GOOD = """
models:
  - name: fraud
    features: {amount: numeric, country: categorical}
    reference: {path: ref.csv}
"""


def _check(tmp_path: Path, text: str, *flags: str) -> int:
    config = tmp_path / "driftline.yaml"
    config.write_text(text)
    return main(["check-config", "--config", str(config), *flags])


@pytest.fixture
def good_dir(tmp_path: Path, same: tuple[Path, Path]) -> Path:
    del same  # writes ref.csv into tmp_path
    return tmp_path


def test_check_config_accepts_a_good_file(good_dir: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(good_dir, GOOD) == 0
    assert "valid, 1 model(s): fraud" in capsys.readouterr().out


@pytest.mark.parametrize(("edit", "message"), [
    (("path: ref.csv", "path: nowhere.csv"), "nowhere.csv does not exist"),
    (("country: categorical}", "country: categorical, age: numeric}"),
     "lacks the feature 'age'"),
    (("amount: numeric,", "amount: numeric, country2: numeric,"), "lacks the feature"),
    (("reference:", "drift: {methods: {country: ks}}\n    reference:"),
     "drift.methods.country: country is categorical; drift method 'ks' cannot be used for "
     "categorical columns"),
    (("reference:", "drift: {methods: {amount: kolmogorov}}\n    reference:"),
     "unknown drift method 'kolmogorov'"),
    (("reference:", "drift: {numeric_method: ks, threshold: 7}\n    reference:"),
     "threshold must be a p-value threshold in (0, 1), got 7"),
    (("reference:", "drift: {threshold: 0.05}\n    reference:"), "both methods are auto"),
    (("reference:", "drift: {p_value_threshold: .inf}\n    reference:"), "p_value_threshold"),
    (("reference:", "drift: {distance_threshold: -1}\n    reference:"), "distance_threshold"),
    (("reference:", "drift: {methods: {amount: ks}, thresholds: {amount: 3}}\n    reference:"),
     "threshold for 'amount' must be a p-value threshold"),
    (("models:", "database_url: not a url at all\nmodels:"), "is not a database URL"),
    (("models:", "database_url: 'mysql+nodriver://x/y'\nmodels:"), "database_url"),
    (("models:", "kafka: {bootstrap_servers: ''}\nmodels:"), "host:port pairs"),
    (("models:", "kafka: {bootstrap_servers: 'localhost'}\nmodels:"), "not a host:port pair"),
    (("reference:", "retraining_webhook: {url: 'http://'}\n    reference:"),
     "absolute http:// or https:// URL with a host"),
    (("reference:", "retraining_webhook: {url: 'ftp://x/y'}\n    reference:"), "URL"),
])
def test_check_config_refuses_what_it_can_know(
        good_dir: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str],
        message: str) -> None:
    old, new = edit
    assert old in GOOD
    assert _check(good_dir, GOOD.replace(old, new)) == 2
    assert message in _one_line(capsys)


def test_check_config_refuses_no_models(good_dir: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(good_dir, "models: []\n") == 2
    assert "at least one model" in _one_line(capsys)


def test_check_config_refuses_text_in_a_numeric_reference_column(
        good_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pd.DataFrame({"amount": ["a", "b"], "country": ["DE", "FR"]}).to_csv(
        good_dir / "ref.csv", index=False)
    assert _check(good_dir, GOOD) == 2
    assert "'amount' is declared numeric but its column" in _one_line(capsys)


def test_several_problems_are_one_line_each(good_dir: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD.replace("models:", "database_url: nope\nkafka: {bootstrap_servers: ''}\nmodels:")
    assert _check(good_dir, text) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert "database_url" in lines[0]
    assert "kafka.bootstrap_servers" in lines[1]


def test_an_unset_secret_warns_and_strict_refuses(
        good_dir: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DL_TEST_SECRET", raising=False)
    text = GOOD + ("    retraining_webhook: {url: 'http://127.0.0.1:9/h', "
                   "secret_env: DL_TEST_SECRET}\n")
    assert _check(good_dir, text) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err
    assert "DL_TEST_SECRET is not set" in captured.err
    assert "(1 warning)" in captured.out
    assert _check(good_dir, text, "--strict") == 2
    assert "error:" in _one_line(capsys)
    # serve treats it as an error, before touching the database or the broker.
    monkeypatch.chdir(good_dir)
    assert main(["serve", "--config", str(good_dir / "driftline.yaml")]) == 2
    assert "DL_TEST_SECRET is not set" in _one_line(capsys)
    assert not (good_dir / ".driftline").exists()


# -- 5. one verdict -------------------------------------------------------------------------------
def test_analyze_with_the_config_gives_the_services_verdict(
        tmp_path: Path, rng: np.random.Generator, capsys: pytest.CaptureFixture[str]) -> None:
    from collector.config import load_settings
    from collector.events import PredictionEvent
    from collector.metrics import Metrics
    from collector.monitor import ModelMonitor
    from collector.store import make_engine, make_session_factory, upgrade
    from collector.store.models import Run
    from collector.store.queries import insert_predictions

    n = 600
    reference = pd.DataFrame({"amount": rng.normal(0, 1, 2000),
                              "country": rng.choice(["DE", "FR", "US"], 2000),
                              "prediction": rng.uniform(size=2000)})
    reference.to_csv(tmp_path / "ref.csv", index=False)
    # The prediction moves, one feature of two moves a little: the prediction must not
    # count in the dataset share (it would make 2 of 3 drifted, over drift_share 0.5).
    current = pd.DataFrame({"amount": rng.normal(0.5, 1, n),
                            "country": rng.choice(["DE", "FR", "US"], n),
                            "prediction": rng.uniform(0.5, 1.0, n)})
    current.to_csv(tmp_path / "cur.csv", index=False)
    config = tmp_path / "driftline.yaml"
    config.write_text(f"""
database_url: sqlite+pysqlite:///{tmp_path / 'dl.db'}
models:
  - name: fraud
    features: {{amount: numeric, country: categorical}}
    prediction: numeric
    reference: {{path: ref.csv}}
    window: {{last_events: {n}}}
    drift: {{numeric_method: ks, p_value_threshold: 0.01, drift_share: 0.6}}
""")
    settings = load_settings(config, environ={})
    engine = make_engine(settings.database_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    start = datetime(2026, 11, 29, tzinfo=UTC)
    events = [PredictionEvent(event_id=f"e{i}", model="fraud",
                              timestamp=start + timedelta(seconds=i),
                              features={"amount": float(row.amount), "country": row.country},
                              prediction=float(row.prediction))
              for i, row in enumerate(current.itertuples())]
    with sessions.begin() as session:
        insert_predictions(session, events, start)
    summary = ModelMonitor(settings.model("fraud"), sessions, Metrics.create()).run()
    assert summary is not None
    with sessions() as session:
        stored = session.get(Run, summary.run_id)
        assert stored is not None
        service_report = stored.report
        service_result = stored.result
    engine.dispose()

    assert main(["analyze", "--config", str(config), "--model", "fraud",
                 "--current", str(tmp_path / "cur.csv"), "--format", "json"]) == 0
    offline = json.loads(capsys.readouterr().out)
    # The drift report's keys; the run's others (window times, data quality, ...) beside them.
    drift_keys = {"schema", "status", "n_reference", "n_current", "drift_share",
                  "share_drifted", "dataset_drifted", "features"}
    assert {k: offline[k] for k in drift_keys} == {k: service_report[k] for k in drift_keys}
    # The whole run result is the same too, but for what a file cannot have: event times
    # (window span, label delay) and model versions.
    assert service_result is not None
    same = {k: v for k, v in offline.items() if k not in ("window", "versions")}
    assert same == {k: v for k, v in service_result.items() if k not in ("window", "versions")}
    assert offline["window"]["n_events"] == service_result["window"]["n_events"]
    assert offline["features"]["prediction"]["drifted"] is True
    assert offline["features"]["amount"]["drifted"] is True
    assert offline["share_drifted"] == 0.5  # amount of the two features, not the prediction
    assert offline["dataset_drifted"] is False


# -- 6. one list of methods -----------------------------------------------------------------------
def test_config_cli_and_docs_take_one_list_of_methods() -> None:
    import re

    from detectors import METHODS, methods_for

    docs = (Path(__file__).parents[3] / "docs" / "drift-methods.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", docs, flags=re.MULTILINE)
    documented = {name: kinds.strip() for name, kinds in rows if name in METHODS}
    assert set(documented) == set(METHODS)
    for kind in ("numeric", "categorical"):
        in_docs = sorted(n for n, k in documented.items() if k in (kind, "both"))
        assert in_docs == methods_for(kind), kind
    for family, p_value in (("p-value tests", True), ("distances", False)):
        row = next(line for line in docs.splitlines() if line.startswith(f"| {family} |"))
        listed = set(re.findall(r"`(\w+)`", row.split("|")[2]))
        assert listed == {m for m, spec in METHODS.items() if spec.p_value is p_value}, family
    from collector.config import DriftSettings

    for name in methods_for("numeric"):
        DriftSettings(numeric_method=name)
    for name in methods_for("categorical"):
        DriftSettings(categorical_method=name)
    with pytest.raises(ValueError, match="cannot be used for numeric"):
        DriftSettings(numeric_method="chisquare")


def test_check_config_reads_the_performance_columns(
        good_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = GOOD + "    label: categorical\n"
    assert _check(good_dir, text) == 0
    assert "no label column 'label' in the reference" in capsys.readouterr().err
    text = GOOD + "    performance: {reference_score: p_fraud}\n"
    assert _check(good_dir, text) == 2
    assert "names the score column 'p_fraud'" in capsys.readouterr().err
    assert _check(good_dir, GOOD + "    segments: {by: [region]}\n") == 2
    assert "neither a feature nor tags.<name>" in _one_line(capsys)
