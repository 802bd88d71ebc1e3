from __future__ import annotations

from pathlib import Path

import pytest

from collector.cli import main
from collector.config import load_settings, parse_settings
from collector.errors import ConfigError

GOOD = """
models:
  - name: fraud
    features: {amount: numeric, country: categorical}
    reference: {path: ref.csv}
    window: {last_seconds: 3600}
    drift: {methods: {amount: psi}, drift_share: 0.3}
    retraining_webhook: {url: "http://127.0.0.1:9/hook", cooldown_seconds: 60}
"""


def test_valid_file_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    config = tmp_path / "driftline.yaml"
    config.write_text(GOOD)
    settings = load_settings(config, environ={})
    model = settings.model("fraud")
    assert model.reference.path == (tmp_path / "ref.csv").resolve()
    assert model.window.last_seconds == 3600
    assert model.drift.methods == {"amount": "psi"}
    assert settings.kafka.group_id == "driftline-collector"
    assert settings.database_url.startswith("sqlite")


def test_environment_overrides_broker_and_database(tmp_path: Path) -> None:
    config = tmp_path / "driftline.yaml"
    config.write_text(GOOD)
    settings = load_settings(config, environ={
        "KAFKA_BOOTSTRAP_SERVERS": "k:1", "DRIFTLINE_DATABASE_URL": "postgresql+psycopg://x/y"})
    assert settings.kafka.bootstrap_servers == "k:1"
    assert settings.database_url == "postgresql+psycopg://x/y"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models:\n  - name: m\n    features: {a: numbr}\n    reference: {path: r.csv}\n",
         r"models\[0\] \(m\)\.features\.a: Input should be 'numeric' or 'categorical'"),
        ("models:\n  - name: m\n    features: {a: numeric}\n", r"models\[0\] \(m\)\.reference"),
        ("models:\n  - name: m\n    features: {a: numeric}\n    reference: {path: r.csv}\n"
         "    window: {last_events: 5, last_seconds: 3}\n", "exactly one of last_events"),
        ("kafka: {max_event_bytes: -1}\n", r"kafka\.max_event_bytes: Input should be greater"),
        ("models: [\n", "not valid YAML at line"),
        ("surprise: 1\n", "surprise: Extra inputs are not permitted"),
        ("models:\n  - name: m\n    features: {a: numeric}\n    reference: {path: r.csv}\n"
         "    drift: {methods: {zz: ks}}\n", "unknown features"),
    ],
)
def test_bad_files_name_the_key_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "driftline.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_cli_exits_2_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "driftline.yaml"
    config.write_text("models:\n  - name: m\n    features: {a: numbr}\n    reference: {path: r}\n")
    assert main(["check-config", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "models[0] (m).features.a" in err[0]


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_duplicate_model_names_rejected() -> None:
    model = {"name": "m", "features": {"a": "numeric"}, "reference": {"path": "r.csv"}}
    with pytest.raises(ConfigError, match="unique"):
        parse_settings({"models": [model, model]}, environ={})


def test_webhook_secret_comes_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    model = {"name": "m", "features": {"a": "numeric"}, "reference": {"path": "r.csv"},
             "retraining_webhook": {"url": "https://x/h", "secret_env": "MY_SECRET"}}
    hook = parse_settings({"models": [model]}, environ={}).models[0].retraining_webhook
    assert hook is not None
    monkeypatch.delenv("MY_SECRET", raising=False)
    with pytest.raises(ConfigError, match="MY_SECRET is not set"):
        hook.secret()
    monkeypatch.setenv("MY_SECRET", "whsec_abc")
    assert hook.secret() == "whsec_abc"
