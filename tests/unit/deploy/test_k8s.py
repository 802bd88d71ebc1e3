"""deploy/k8s: every manifest valid, and consistent with driftline and with each other.

Built-in kinds are checked with kubernetes-validate (the dev extra: it ships the Kubernetes API's
JSON schemas; missing, this module fails to import) in strict mode, against the oldest and the
newest Kubernetes it knows of that are still supported. The custom resources (ServiceMonitor,
InferenceService, SeldonDeployment) are checked against the CRD subsets in crds/ (see its
README: written from the upstream CRDs, which the manifests were also checked against whole with
deploy/k8s/validate.py). Mutated copies show each check fails on the mistakes it is for.

Beyond the schemas: the collector's driftline.yaml is a valid configuration with the sources the
loggers post to, every logger URL reaches the collector's Service and a configured source, the
ServiceMonitor selects that Service's port, selectors select their Pods, Services name container
ports that exist, and the proxy's and the collector's arguments parse with driftline's own CLI.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate.utils
import pytest
import yaml

from collector.config import load_settings

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
CRDS = sorted((Path(__file__).with_name("crds")).glob("*.yaml"))
KUBERNETES_VERSIONS = ("1.31", "1.37")

_spec = importlib.util.spec_from_file_location("k8s_validate", K8S / "validate.py")
assert _spec is not None
assert _spec.loader is not None
validate = importlib.util.module_from_spec(_spec)
sys.modules["k8s_validate"] = validate
_spec.loader.exec_module(validate)


def _documents() -> list[tuple[Path, dict[str, Any]]]:
    return list(validate.load_documents(sorted(K8S.glob("*.yaml"))))


DOCUMENTS = _documents()


def _crds() -> Any:
    return validate.CrdIndex(doc for _, doc in validate.load_documents(CRDS))


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [doc for _, doc in DOCUMENTS
             if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def test_the_manifests_hold_what_docs_integrations_md_lists() -> None:
    kinds = sorted((path.name, doc["kind"]) for path, doc in DOCUMENTS)
    assert kinds == [
        ("collector.yaml", "ConfigMap"), ("collector.yaml", "Deployment"),
        ("collector.yaml", "Namespace"), ("collector.yaml", "Service"),
        ("kserve-inferenceservice.yaml", "InferenceService"),
        ("model-with-proxy.yaml", "Deployment"), ("model-with-proxy.yaml", "Service"),
        ("seldon-deployment.yaml", "SeldonDeployment"),
        ("seldon-deployment.yaml", "SeldonDeployment"),
        ("servicemonitor.yaml", "ServiceMonitor"), ("servicemonitor.yaml", "ServiceMonitor")]
    docs = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
    for path in {path.name for path, _ in DOCUMENTS}:
        assert f"`{path}`" in docs


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid(version: str) -> None:
    # The schemas of this Kubernetes version are in the installed kubernetes-validate.
    known = kubernetes_validate.utils.all_versions()
    assert any(v.startswith(f"{version}.") for v in known)
    results = validate.check(DOCUMENTS, _crds(), version)
    assert len(results) == len(DOCUMENTS)
    assert {name: errors for name, errors in results.items() if errors} == {}


def _mutated(kind: str, name: str, change: Any) -> list[str]:
    document = copy.deepcopy(_one(kind, name))
    change(document)
    return validate.check([(Path("mutated.yaml"), document)], _crds())["mutated.yaml: " +
                                                                        f"{kind}/{name}"]


def _container(document: dict[str, Any], index: int = 0) -> dict[str, Any]:
    container: dict[str, Any] = document["spec"]["template"]["spec"]["containers"][index]
    return container


@pytest.mark.parametrize(("kind", "name", "change", "message"), [
    ("Deployment", "driftline-collector",
     lambda d: _container(d).update(imagePolicy="Always"), "'imagePolicy' was unexpected"),
    ("Deployment", "fraud-model",
     lambda d: _container(d, 1)["ports"][0].update(containerPort="8080"), "is not of type"),
    ("Service", "driftline-collector", lambda d: d["spec"].pop("ports")[0].pop("port") and
     d["spec"].update(ports=[{"name": "http"}]), "'port' is a required property"),
    ("InferenceService", "sklearn-iris",
     lambda d: d["spec"]["predictor"]["logger"].update(mode="everything"), "is not one of"),
    ("InferenceService", "sklearn-iris",
     lambda d: d["spec"]["predictor"].update(loger={}), "'loger' was unexpected"),
    ("InferenceService", "sklearn-iris", lambda d: d["spec"].pop("predictor"),
     "'predictor' is a required property"),
    ("SeldonDeployment", "iris",
     lambda d: d["spec"]["predictors"][0]["graph"].update(modelURI="x"),
     "'modelURI' was unexpected"),
    ("SeldonDeployment", "iris", lambda d: d["spec"]["predictors"][0].pop("name"),
     "'name' is a required property"),
    ("ServiceMonitor", "driftline-collector",
     lambda d: d["spec"]["endpoints"][0].update(interval="30 seconds"), "does not match"),
    ("ServiceMonitor", "driftline-collector", lambda d: d["spec"].pop("selector"),
     "'selector' is a required property"),
])
def test_the_checks_catch_mistakes(kind: str, name: str, change: Any, message: str) -> None:
    errors = _mutated(kind, name, change)
    assert any(message in error for error in errors), errors


def test_a_custom_resource_without_its_crd_is_an_error() -> None:
    results = validate.check([(Path("x.yaml"), _one("InferenceService", "sklearn-iris"))],
                             validate.CrdIndex([]))
    assert results == {"x.yaml: InferenceService/sklearn-iris": [
        "no CRD given for InferenceService serving.kserve.io/v1beta1"]}


def test_the_command_line_exits_1_on_an_invalid_manifest(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    crd_args = [arg for crd in CRDS for arg in ("--crd", str(crd))]
    assert validate.main(crd_args) == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text((K8S / "servicemonitor.yaml").read_text().replace("interval: 30s",
                                                                        "interval: 30 s"))
    assert validate.main([*crd_args, str(broken)]) == 1
    assert "broken.yaml: ServiceMonitor/driftline-collector: INVALID" in capsys.readouterr().out


# -- consistency with driftline and between the manifests -------------------------------------

def _collector_settings(tmp_path: Path) -> Any:
    config = _one("ConfigMap", "driftline-config")["data"]["driftline.yaml"]
    deployment = _one("Deployment", "driftline-collector")
    args = _container(deployment)["args"]
    mounts = {m["name"]: m["mountPath"] for m in _container(deployment)["volumeMounts"]}
    config_path = Path(args[args.index("--config") + 1])
    assert str(config_path.parent) == mounts["config"]
    # Laid out as in the Pod, so that relative reference paths resolve the same way.
    root = tmp_path / "pod"
    path = root / config_path.relative_to("/")
    path.parent.mkdir(parents=True)
    path.write_text(config, encoding="utf-8")
    return load_settings(path, environ={}), root, mounts  # the file alone, not our environment


def test_the_collectors_configuration_is_valid_and_names_the_mounted_references(
        tmp_path: Path) -> None:
    settings, root, mounts = _collector_settings(tmp_path)
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 8000)
    assert {model.name for model in settings.models} == {"iris", "fraud"}
    for model in settings.models:
        inside_pod = Path("/") / model.reference.path.relative_to(root)
        assert inside_pod.parent == Path(mounts["reference"]), inside_pod
    kinds = {source.name: source.kind for source in settings.sources}
    assert kinds == {"kserve": "cloudevents", "seldon": "cloudevents",
                     "seldon-kafka": "seldon_kafka_logger"}
    port = _container(_one("Deployment", "driftline-collector"))["ports"][0]
    assert port == {"name": "http", "containerPort": settings.http.port, "protocol": "TCP"}


def _service_url(service: dict[str, Any]) -> tuple[str, int]:
    meta = service["metadata"]
    return (f"{meta['name']}.{meta['namespace']}.svc.cluster.local",
            next(p["port"] for p in service["spec"]["ports"] if p["name"] == "http"))


def test_every_logger_posts_to_the_collector_and_a_configured_source(tmp_path: Path) -> None:
    settings, _, _ = _collector_settings(tmp_path)
    host, port = _service_url(_one("Service", "driftline-collector"))
    sources = {s.name: s for s in settings.sources}
    isvc = _one("InferenceService", "sklearn-iris")
    sdep = _one("SeldonDeployment", "iris")
    loggers = [(isvc["metadata"]["name"], isvc["spec"]["predictor"]["logger"]),
               (sdep["metadata"]["name"], sdep["spec"]["predictors"][0]["graph"]["logger"])]
    for server_name, logger in loggers:
        assert logger["mode"] == "all"  # requests and responses: both halves of a prediction
        url = urlsplit(logger["url"])
        assert (url.scheme, url.hostname, url.port) == ("http", host, port)
        prefix, source_name = url.path.rsplit("/", 1)
        assert prefix == "/v1/ingest/cloudevents"
        source = sources[source_name]
        assert source.kind == "cloudevents"
        # The logger's model name (the InferenceService's, the SeldonDeployment's) is mapped.
        assert source.models[server_name] in {m.name for m in settings.models}
    kafka = _one("SeldonDeployment", "iris-kafka")
    env = {e["name"]: e["value"] for e in kafka["spec"]["predictors"][0]["svcOrchSpec"]["env"]}
    assert env["LOGGER_KAFKA_BROKER"] == settings.kafka.bootstrap_servers
    kafka_source = sources["seldon-kafka"]
    assert kafka_source.topics == [env["LOGGER_KAFKA_TOPIC"]]
    # Two replicas: the unkeyed logger messages are re-keyed before pairing.
    assert kafka_source.pairing_topic == f"{env['LOGGER_KAFKA_TOPIC']}.paired"
    assert kafka_source.models["iris-kafka"] == "iris"


def test_the_servicemonitor_scrapes_the_collectors_metrics_port() -> None:
    monitor = _one("ServiceMonitor", "driftline-collector")
    service = _one("Service", "driftline-collector")
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [
        service["metadata"]["namespace"]]
    port_names = {p["name"] for p in service["spec"]["ports"]}
    assert [(e["port"], e["path"]) for e in monitor["spec"]["endpoints"]] == [("http",
                                                                               "/metrics")]
    assert monitor["spec"]["endpoints"][0]["port"] in port_names


def test_the_proxy_servicemonitor_scrapes_the_proxys_metrics_port() -> None:
    monitor = _one("ServiceMonitor", "driftline-proxy")
    service = _one("Service", "fraud-model")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"any": True}  # models live elsewhere
    endpoint = monitor["spec"]["endpoints"][0]
    port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    proxy = _one("Deployment", "fraud-model")["spec"]["template"]["spec"]["containers"][1]
    args = _parser().parse_args(proxy["args"])
    target = next(p for p in proxy["ports"] if p["name"] == port["targetPort"])
    assert args.metrics_listen.endswith(f":{target['containerPort']}")
    assert endpoint["path"] == "/metrics"


@pytest.mark.parametrize(("deployment", "service"), [("driftline-collector", "driftline-collector"),
                                                     ("fraud-model", "fraud-model")])
def test_services_select_their_pods_and_name_ports_that_exist(deployment: str,
                                                             service: str) -> None:
    workload, front = _one("Deployment", deployment), _one("Service", service)
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    assert workload["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert front["spec"]["selector"].items() <= pod_labels.items()
    container_ports = {port["name"]: port["containerPort"]
                       for container in workload["spec"]["template"]["spec"]["containers"]
                       for port in container.get("ports", [])}
    for port in front["spec"]["ports"]:
        assert port["targetPort"] in container_ports, port
    for container in workload["spec"]["template"]["spec"]["containers"]:
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            action = container.get(probe, {})
            named = (action.get("httpGet") or action.get("tcpSocket") or {}).get("port")
            assert named is None or named in container_ports, (container["name"], probe)


def _parser() -> argparse.ArgumentParser:
    from collector import cli

    parser: argparse.ArgumentParser = cli.build_parser()
    return parser


def test_the_proxy_sidecar_runs_driftline_proxy_in_front_of_the_model_server() -> None:
    from collector.proxy.cli import settings_from_args

    pod = _one("Deployment", "fraud-model")["spec"]["template"]["spec"]
    model, proxy = pod["containers"]
    args = _parser().parse_args(proxy["args"])
    env = {e["name"]: e["value"] for e in proxy["env"]}
    settings = settings_from_args(args, env)  # what `driftline proxy` itself would run with
    assert args.model == "fraud"
    model_ports = {p["name"]: p["containerPort"] for p in model["ports"]}
    upstream = urlsplit(args.upstream)
    assert (upstream.hostname, upstream.port) == ("127.0.0.1", model_ports["rest"])
    proxy_ports = {p["name"]: p["containerPort"] for p in proxy["ports"]}
    assert args.listen == f"0.0.0.0:{proxy_ports['http']}"
    assert args.metrics_listen == f"0.0.0.0:{proxy_ports['proxy-metrics']}"
    assert "--model_name=fraud" in model["args"]
    assert settings is not None


def test_the_collector_container_runs_driftline_serve() -> None:
    args = _parser().parse_args(_container(_one("Deployment", "driftline-collector"))["args"])
    assert args.command == "serve"


def test_the_collectors_and_proxys_fraud_features_agree(tmp_path: Path) -> None:
    settings, _, _ = _collector_settings(tmp_path)
    fraud = next(m for m in settings.models if m.name == "fraud")
    proxy = _one("Deployment", "fraud-model")["spec"]["template"]["spec"]["containers"][1]
    features = proxy["args"][proxy["args"].index("--features") + 1].split(",")
    assert features == list(fraud.features)


def test_the_yaml_has_no_duplicate_keys() -> None:
    class Strict(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        keys = [loader.construct_object(key) for key, _ in node.value]
        assert len(keys) == len(set(keys)), f"duplicate keys at line {node.start_mark.line + 1}"
        return dict(loader.construct_pairs(node))

    Strict.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    for path in sorted(K8S.glob("*.yaml")):
        assert list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=Strict))


def test_the_docs_kserve_logger_is_the_manifests() -> None:
    docs = (ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
    section = docs.split("\n## KServe\n", 1)[1].split("\n## ", 1)[0]
    snippet = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    manifest = _one("InferenceService", "sklearn-iris")
    assert snippet["spec"]["predictor"]["logger"] == manifest["spec"]["predictor"]["logger"]


def test_check_config_accepts_the_collectors_configuration_with_its_references(
        tmp_path: Path, rng: Any) -> None:
    settings, root, mounts = _collector_settings(tmp_path)
    import pandas as pd

    n = 200
    for model in settings.models:  # reference files with the columns the config names
        columns: dict[str, Any] = {name: rng.normal(size=n) for name in model.features}
        columns["prediction"] = rng.random(n) if model.prediction == "numeric" \
            else rng.integers(0, 3, n)
        columns["label"] = rng.integers(0, 2, n)
        model.reference.path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(columns).to_csv(model.reference.path, index=False)
    config = root / Path(mounts["config"]).relative_to("/") / "driftline.yaml"
    env = {k: v for k, v in os.environ.items()
           if k not in {"KAFKA_BOOTSTRAP_SERVERS", "DRIFTLINE_DATABASE_URL"}}
    done = subprocess.run([sys.executable, "-c", "import sys; from collector.cli import main; "
                           "sys.exit(main(sys.argv[1:]))", "check-config", "--config",
                           str(config)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid, 2 model(s): iris, fraud" in done.stdout
