"""check-config on alert rules and channels (issue 11): one line per problem, exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collector.cli import main

BASE = """
api: {{token_env: DL_TEST_TOKEN}}
channels:
  oncall: {{type: slack, url_env: DL_TEST_SLACK}}
  hook: {{type: webhook, url: "http://127.0.0.1:9/hook", secret_env: DL_TEST_HOOK}}
  mail: {{type: email, host: 127.0.0.1, sender: a@b.c, recipients: [x@y.z]}}
  am: {{type: alertmanager, url: "http://127.0.0.1:9093"}}
models:
  - name: fraud
    features: {{amount: numeric, country: categorical}}
    reference: {{path: ref.csv}}
    alerts:
{rules}
"""
GOOD_RULES = """      - {name: drift, kind: dataset_drift, for_runs: 3,
         channels: [oncall, hook, mail, am], summary: "{model}: {share_drifted:.0%} drifted"}
      - {name: acc, kind: performance, metric: accuracy, below: 0.9, for_runs: 2,
         channels: [oncall]}
      - {name: dq, kind: data_quality, check: missing_share, threshold: 0.2, channels: [mail]}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(1)
    pd.DataFrame({"amount": rng.normal(size=50),
                  "country": rng.choice(["DE", "FR"], 50)}).to_csv(tmp_path / "ref.csv",
                                                                  index=False)
    for name in ("DL_TEST_TOKEN", "DL_TEST_SLACK", "DL_TEST_HOOK"):
        monkeypatch.setenv(name, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    return tmp_path


def _check(folder: Path, rules: str, *flags: str) -> int:
    (folder / "driftline.yaml").write_text(BASE.format(rules=rules))
    return main(["check-config", "--config", str(folder / "driftline.yaml"), *flags])


def test_good_rules_and_channels_pass(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _check(folder, GOOD_RULES) == 0
    assert "valid, 1 model(s): fraud" in capsys.readouterr().out


@pytest.mark.parametrize(("rules", "message"), [
    ("      - {name: r, kind: dataset_drift, channels: [pager]}\n",
     "unknown channels ['pager']"),
    ("      - {name: r, kind: performance, metric: acuracy, below: 0.9}\n",
     "metric must be one of"),
    ("      - {name: r, kind: performance, metric: accuracy, below: 1.9}\n", "out of range"),
    ("      - {name: r, kind: data_quality, check: missing_share, threshold: 1.5}\n",
     "threshold must be a share"),
    ("      - {name: r, kind: dataset_drift, summary: '{accuracy} fell'}\n",
     "summary names unknown fields ['accuracy']"),
    ("      - {name: r, kind: feature_drift, features: [age]}\n", "features ['age'] are not"),
    ("      - {name: r, kind: dataset_drift, retrain: true}\n", "retrain needs"),
    ("      - {name: r, kind: dataset_drift}\n      - {name: r, kind: run_failed}\n",
     "rule names must be unique"),
    ("      - {name: r, kind: dataset_drift, for_runs: 0}\n", "greater than or equal to 1"),
])
def test_bad_rules_exit_2_with_one_line(folder: Path, capsys: pytest.CaptureFixture[str],
                                        rules: str, message: str) -> None:
    assert _check(folder, rules) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert message in err[0]


def test_an_unset_channel_secret_warns_and_strict_refuses(
        folder: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DL_TEST_SLACK")
    assert _check(folder, GOOD_RULES) == 0
    assert "DL_TEST_SLACK is not set" in capsys.readouterr().err
    assert _check(folder, GOOD_RULES, "--strict") == 2
    assert "error: channels.oncall" in capsys.readouterr().err


def test_a_channel_missing_what_it_needs_is_refused(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "driftline.yaml").write_text(BASE.format(rules=GOOD_RULES).replace(
        "secret_env: DL_TEST_HOOK", "timeout_seconds: 3"))
    assert main(["check-config", "--config", str(folder / "driftline.yaml")]) == 2
    assert "a webhook channel needs secret_env" in capsys.readouterr().err
