"""Real Prometheus and Alertmanager processes for the observability tests."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "driftline.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready within 60 s: {log.read_text()[-3000:]}")


class Processes:
    """Started processes, stopped together."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        binary = shutil.which(args[0])
        if binary is None:
            raise RuntimeError(f"{args[0]} is not installed (scripts/observability-local install)")
        with log.open("ab") as output:
            process = subprocess.Popen([binary, *args[1:]], stdout=output,
                                       stderr=subprocess.STDOUT)
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in self.started:
            process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def start_alertmanager(procs: Processes, tmp: Path, receiver_url: str) -> str:
    """Our alertmanager.yml with the receiver pointed at the test and short group timings."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = receiver_url
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        route.update(group_wait="1s", group_interval="2s")
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp / "alertmanager.log"
    process = procs.start(["prometheus-alertmanager", f"--config.file={path}",
                           f"--storage.path={tmp / 'am-data'}",
                           f"--web.listen-address=127.0.0.1:{port}",
                           "--cluster.listen-address="], log)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(f"{url}/-/ready", process, log)
    return url


def start_prometheus(procs: Processes, tmp: Path, target: str, alertmanager: str | None,
                     job: str = "driftline") -> str:
    """Prometheus scraping `target` every second and evaluating our rules every second."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]}],
    }
    if alertmanager is not None:
        config["alerting"] = {"alertmanagers": [{"static_configs": [
            {"targets": [alertmanager.removeprefix("http://")]}]}]}
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    log = tmp / "prometheus.log"
    process = procs.start(["prometheus", f"--config.file={path}",
                           f"--storage.tsdb.path={tmp / 'prom-data'}",
                           f"--web.listen-address=127.0.0.1:{port}"], log)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(f"{url}/-/ready", process, log)
    return url


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """Instant query; the result vector."""
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"query failed: {expr}: {body}")
    return list(body["data"]["result"])


def series(prometheus: str, selector: str) -> list[dict[str, str]]:
    """Series matching a selector."""
    response = httpx.get(f"{prometheus}/api/v1/series", params={"match[]": selector},
                         timeout=10)
    return list(response.json()["data"])


def substitute(expr: str, model: str) -> str:
    """Fill Grafana's template variables the way Grafana would for one model, all versions."""
    expr = expr.replace('model=~"$model"', f'model=~"{re.escape(model)}"')
    expr = expr.replace("$model", model)
    expr = expr.replace('model_version=~"$version"', 'model_version=~".*"')
    expr = expr.replace('group=~"$version"', 'group=~".*"')  # the model_version segment
    return expr.replace("$__rate_interval", "1m")


def dashboard_queries() -> Iterator[tuple[str, str, str]]:
    """(dashboard file, panel title, expression) of every panel target."""
    import json

    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield path.name, panel["title"], target["expr"]


def rule_expressions() -> Iterator[tuple[str, str]]:
    """(rule name, expression) of every recording and alerting rule."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for group in groups:
        for rule in group["rules"]:
            yield rule.get("alert") or rule.get("record"), rule["expr"]


def selectors(expr: str) -> list[str]:
    """Every vector selector inside a PromQL expression, as selector text."""
    found: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(str(node))

    promql_parser.walk(promql_parser.parse(expr), pre_visit=visit)
    return found
