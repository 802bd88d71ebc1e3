from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from collector.cli import main


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"amount": rng.normal(0, 1, 800), "country": rng.choice(["DE", "FR"], 800)})
    cur = pd.DataFrame({"amount": rng.normal(1, 1, 300), "country": rng.choice(["DE", "FR"], 300)})
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_parquet(tmp_path / "cur.parquet")
    return tmp_path / "ref.csv", tmp_path / "cur.parquet"


def test_json_report_shape_and_values(files: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = files
    assert main(["analyze", "--reference", str(ref), "--current", str(cur), "--format", "json",
                 "--numeric-method", "ks"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == "driftline.drift-report/v1"
    assert set(report) >= {"schema", "status", "n_reference", "n_current", "drift_share",
                           "share_drifted", "dataset_drifted", "features"}
    assert report["status"] == "ok"
    assert (report["n_reference"], report["n_current"]) == (800, 300)
    amount = report["features"]["amount"]
    assert set(amount) == {"kind", "method", "status", "statistic", "p_value", "threshold",
                           "drifted", "effect_size", "n_reference", "n_current"}
    assert (amount["status"], amount["n_reference"], amount["n_current"]) == ("ok", 800, 300)
    expected = stats.ks_2samp(pd.read_csv(ref)["amount"], pd.read_parquet(cur)["amount"])
    assert amount["statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert amount["drifted"] is True


def test_fail_on_drift_and_formats(files: tuple[Path, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = files
    args = ["analyze", "--reference", str(ref), "--current", str(cur)]
    assert main([*args, "--fail-on-drift", "--numeric-method", "ks", "--drift-share", "0.5"]) == 1
    assert "amount" in capsys.readouterr().out
    out = tmp_path / "report.html"
    assert main([*args, "--format", "html", "--output", str(out)]) == 0
    assert out.read_text().startswith("<!doctype html>")
    assert main([*args, "--fail-on-drift", "--columns", "country"]) == 0


@pytest.mark.parametrize(("extra", "message"), [
    (["--numeric-method", "nope"], "unknown drift method 'nope'"),
    (["--threshold", "-1"], "both methods are auto"),
    (["--columns", "zzz"], "not in the reference"),
    (["--drift-share", "2"], "--drift-share"),
])
def test_bad_input_exits_2_with_one_line(files: tuple[Path, Path], extra: list[str],
                                         message: str, capsys: pytest.CaptureFixture[str]) -> None:
    ref, cur = files
    assert main(["analyze", "--reference", str(ref), "--current", str(cur), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_missing_and_unreadable_files(tmp_path: Path, files: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    ref, _ = files
    assert main(["analyze", "--reference", str(ref), "--current", str(tmp_path / "no.csv")]) == 2
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    assert main(["analyze", "--reference", str(ref), "--current", str(bad)]) == 2
    other = tmp_path / "other.csv"
    pd.DataFrame({"zzz": [1, 2]}).to_csv(other, index=False)
    assert main(["analyze", "--reference", str(ref), "--current", str(other)]) == 2
    assert "share no columns" in capsys.readouterr().err
