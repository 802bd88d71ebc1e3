"""Validate deploy/k8s's manifests: Kubernetes' own kinds against the API's schemas, custom
resources against their CustomResourceDefinitions' openAPIV3Schema.

    python deploy/k8s/validate.py [--kubernetes-version 1.37] [--crd CRD.yaml ...] [MANIFEST ...]

Built-in kinds (Namespace, ConfigMap, Deployment, Service, ...) are checked with
kubernetes-validate (`pip install kubernetes-validate`; it ships the API's JSON schemas), in
strict mode: an unknown field is an error, as `kubectl apply --validate=strict` makes it.
Custom resources (ServiceMonitor, InferenceService, SeldonDeployment) are checked against the
CRDs given with --crd, for instance those of a cluster
(`kubectl get crd inferenceservices.serving.kserve.io -o yaml > isvc.yaml`) or of the projects'
releases; the same strictness applies wherever the CRD's schema lists its properties and does
not ask to preserve unknown fields. A custom resource whose CRD is not given is an error.

Prints one line per object, and exits 1 if any is invalid, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DEFAULT_KUBERNETES_VERSION = "1.37"
MANIFESTS = sorted(Path(__file__).resolve().parent.glob("*.yaml"))


def load_documents(paths: Iterable[Path]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every non-empty YAML document of `paths`, with its file."""
    for path in paths:
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if document:
                yield path, document


def json_schema(openapi: Mapping[str, Any]) -> dict[str, Any]:
    """An openAPIV3Schema of a CRD as a JSON Schema, strict about unknown fields.

    Kubernetes' extensions: ``x-kubernetes-int-or-string`` is an integer or a string,
    ``x-kubernetes-preserve-unknown-fields`` keeps an object open, ``nullable`` admits null.
    An object whose properties are listed, with no ``additionalProperties`` of its own, admits
    no other field: the API server drops such fields, and strict field validation refuses them.
    """
    schema = copy.deepcopy(dict(openapi))
    _convert(schema)
    return schema


def _convert(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _convert(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _convert(value)
    if node.pop("x-kubernetes-int-or-string", False) and "anyOf" not in node:
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        node.pop("type", None)
    preserve = node.pop("x-kubernetes-preserve-unknown-fields", False)
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    if ("properties" in node and "additionalProperties" not in node and not preserve
            and not node.get("x-kubernetes-embedded-resource")):
        node["additionalProperties"] = False


class CrdIndex:
    """The served versions of some CRDs, as JSON Schemas by (apiVersion, kind)."""

    def __init__(self, crds: Iterable[Mapping[str, Any]]) -> None:
        self.schemas: dict[tuple[str, str], dict[str, Any]] = {}
        for crd in crds:
            if crd.get("kind") != "CustomResourceDefinition":
                raise ValueError(f"not a CustomResourceDefinition: {crd.get('kind')!r}")
            spec = crd["spec"]
            for version in spec["versions"]:
                if not version.get("served", True):
                    continue
                openapi = version.get("schema", {}).get("openAPIV3Schema")
                if openapi is None:
                    raise ValueError(f"{spec['names']['kind']} {version['name']}: no schema")
                api_version = f"{spec['group']}/{version['name']}"
                self.schemas[(api_version, spec["names"]["kind"])] = json_schema(openapi)

    def errors(self, document: Mapping[str, Any]) -> list[str]:
        """What is wrong with `document` against its CRD (no CRD: that is the error)."""
        key = (document.get("apiVersion", ""), document.get("kind", ""))
        schema = self.schemas.get(key)
        if schema is None:
            return [f"no CRD given for {key[1]} {key[0]}"]
        validator = jsonschema.Draft202012Validator(schema)
        return [f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
                for error in sorted(validator.iter_errors(document), key=str)]


def builtin_errors(document: Mapping[str, Any], kubernetes_version: str) -> list[str] | None:
    """What is wrong with a built-in object (strict), or None when it is not a built-in kind."""
    import kubernetes_validate.utils as kv

    try:
        kv.validate(dict(document), kubernetes_version, strict=True)
    except kv.SchemaNotFoundError:
        return None
    except kv.ValidationError as error:
        where = ".".join(str(p) for p in error.absolute_path) or "(root)"
        return [f"{where}: {error.message}"]
    return []


def check(documents: Iterable[tuple[Path, Mapping[str, Any]]], crds: CrdIndex,
          kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> dict[str, list[str]]:
    """Errors by object ("file: Kind/name"), an empty list for a valid one."""
    results: dict[str, list[str]] = {}
    for path, document in documents:
        name = f"{path.name}: {document.get('kind')}/{document.get('metadata', {}).get('name')}"
        errors = builtin_errors(document, kubernetes_version)
        results[name] = crds.errors(document) if errors is None else errors
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifests", nargs="*", type=Path, default=MANIFESTS)
    parser.add_argument("--crd", action="append", type=Path, default=[],
                        help="a file of CustomResourceDefinitions (repeatable)")
    parser.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    args = parser.parse_args(argv)
    try:
        crds = CrdIndex(document for _, document in load_documents(args.crd))
    except (OSError, ValueError, KeyError, yaml.YAMLError) as exc:
        print(f"validate.py: cannot read the CRDs: {exc}", file=sys.stderr)
        return 2
    results = check(load_documents(args.manifests), crds, args.kubernetes_version)
    for name, errors in results.items():
        print(f"{name}: {'valid' if not errors else 'INVALID'}")
        for error in errors:
            print(f"    {error}")
    return 1 if any(results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
