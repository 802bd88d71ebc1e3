from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from collector.config import load_settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.integration  # needs the installed tool (scripts/test-services install)
def test_docker_compose_config_accepts_the_file() -> None:
    tool = shutil.which("docker-compose")
    assert tool is not None, "docker-compose is installed by scripts/test-services install"
    done = subprocess.run([tool, "config", "-q"], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr


def test_compose_services_wait_for_their_dependencies() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "driftline", "model-server", "prometheus", "alertmanager",
            "grafana"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service or name in {"model-server", "driftline"}, name
    mounts = " ".join(services["grafana"]["volumes"])
    assert "deploy/grafana/provisioning" in mounts
    assert "deploy/grafana/dashboards" in mounts
    depends = services["driftline"]["depends_on"]
    assert depends == {"kafka": {"condition": "service_healthy"},
                       "postgres": {"condition": "service_healthy"}}
    for name in ("kafka", "postgres"):
        assert "healthcheck" in services[name]


def test_the_compose_config_and_the_example_config_are_valid() -> None:
    for path in (ROOT / "deploy" / "driftline.compose.yaml", ROOT / "examples" / "driftline.yaml"):
        settings = load_settings(path, environ={})
        for model in settings.models:
            assert Path(model.reference.path).exists(), model.reference.path
