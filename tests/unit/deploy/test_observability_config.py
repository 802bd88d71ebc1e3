from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
DATASOURCE_UID = yaml.safe_load(
    (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
)["datasources"][0]["uid"]


def _tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(name)
    assert binary is not None, f"{name} is installed by scripts/test-services install"
    return subprocess.run([binary, *args], cwd=ROOT, capture_output=True, text=True, check=False)


@pytest.mark.integration  # needs the installed tool (scripts/test-services install)
@pytest.mark.parametrize("args", [
    ("promtool", "check", "config", "deploy/prometheus/prometheus.yml"),
    ("promtool", "check", "rules", "deploy/prometheus/rules/driftline.yml"),
    ("promtool", "test", "rules", "deploy/prometheus/tests/driftline_test.yml"),
    ("amtool", "check-config", "deploy/alertmanager/alertmanager.yml"),
])
def test_tools_accept_the_configs(args: tuple[str, ...]) -> None:
    done = _tool(*args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_severity_annotations_a_runbook_and_a_promtool_test() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "driftline.yml").read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    tests = (DEPLOY / "prometheus" / "tests" / "driftline_test.yml").read_text()
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    assert len(alerts) >= 9
    for alert in alerts:
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        assert {"summary", "description", "runbook_url"} <= set(alert["annotations"]), name
        anchor = alert["annotations"]["runbook_url"].split("#")[1]
        assert f"## {name}" in runbooks, name
        assert anchor == name.lower(), name
        assert f"alertname: {name}" in tests, f"no promtool test for {name}"


def test_dashboards_are_valid_and_use_the_provisioned_datasource() -> None:
    assert len(DASHBOARDS) >= 3
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        variables = {v["name"] for v in board["templating"]["list"]}
        used: set[str] = set()
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == DATASOURCE_UID, (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == DATASOURCE_UID
                used |= set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval"}
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24
        assert used <= variables, (path.name, used - variables)
        # every variable is used by a panel, or by another variable's query (version <- model)
        queries = " ".join(v["definition"] for v in board["templating"]["list"])
        unused = {v for v in variables - used if f"${v}" not in queries}
        assert unused == set(), (path.name, unused)
    assert len(uids) == len(DASHBOARDS)


def test_committed_dashboards_match_the_generator(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", DEPLOY / "grafana" / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for board in (module.OVERVIEW, module.MODEL, module.PIPELINE):
        committed = json.loads((DEPLOY / "grafana" / "dashboards" / f"{board['uid']}.json")
                               .read_text())
        assert committed == json.loads(json.dumps(board)), board["uid"]
