"""The driftline-sidecar distribution: kafka-python and the standard library only, one contract.

The installed check (a fresh venv with only the sidecar, against the real broker) is
tests/integration/test_sidecar_package.py; this one reads the source.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import driftline_sidecar
import driftline_sidecar.logger

SIDECAR = Path(__file__).resolve().parents[3] / "sidecar"
PACKAGE = SIDECAR / "driftline_sidecar"


def _top_level_imports(tree: ast.Module) -> set[str]:
    """Modules imported when the module loads: not inside functions or `if TYPE_CHECKING:`."""
    names: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(tree.body)
    return names


# Helpers for one kind of server may import that server's own packages, which the server has
# installed anyway; `import driftline_sidecar` never loads them.
HELPER_IMPORTS = {"mlflow.py": {"mlflow", "numpy", "pandas"}}


def test_it_imports_kafka_and_the_standard_library_only() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))  # subpackages (payloads/) too
    assert {path.name for path in modules} >= {"__init__.py", "codec.py", "logger.py"}
    for path in modules:
        imported = _top_level_imports(ast.parse(path.read_text(encoding="utf-8")))
        foreign = (imported - set(sys.stdlib_module_names) - HELPER_IMPORTS.get(path.name, set())
                   - {"__future__", "kafka", "driftline_sidecar"})
        assert not foreign, f"{path.name} imports {sorted(foreign)}"
    helpers = {f"driftline_sidecar.{name.removesuffix('.py')}" for name in HELPER_IMPORTS}
    init = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    assert not [node for node in ast.walk(init)
                if isinstance(node, ast.ImportFrom) and node.module in helpers]


def test_the_codec_is_pure_standard_library() -> None:
    tree = ast.parse((PACKAGE / "codec.py").read_text(encoding="utf-8"))
    imported = _top_level_imports(tree)
    assert imported - set(sys.stdlib_module_names) <= {"__future__", "driftline_sidecar"}


def test_the_distribution_depends_on_kafka_python_alone() -> None:
    project = tomllib.loads((SIDECAR / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "driftline-sidecar"
    assert project["license"] == "Apache-2.0"
    assert project["dependencies"] == ["kafka-python>=3.0.12,<4"]
    assert "optional-dependencies" not in project


def test_the_public_api_is_listed() -> None:
    public = {name for name in dir(driftline_sidecar) if not name.startswith("_")}
    # Submodules (imported by now or not, as the tests run) are not the package's API.
    modules = {name for name in public
               if isinstance(getattr(driftline_sidecar, name), ModuleType)}
    assert {"codec", "errors", "logger", "reach"} <= modules
    assert set(driftline_sidecar.__all__) == public - modules
    assert "PredictionLogger" in driftline_sidecar.__all__


def test_the_service_uses_the_sidecar_codec_and_keeps_the_old_import_paths() -> None:
    import collector.errors
    import collector.events
    import collector.reach
    import collector.sidecar

    # The deprecated path hands out the very same objects, so isinstance and except still work.
    assert collector.sidecar.PredictionLogger is driftline_sidecar.PredictionLogger
    assert collector.sidecar.DROP_REASONS is driftline_sidecar.DROP_REASONS
    assert collector.events.decode_event is driftline_sidecar.decode_event
    assert collector.events.encode_event is driftline_sidecar.encode_event
    assert collector.errors.EventDecodeError is driftline_sidecar.EventDecodeError
    assert collector.reach.kafka_reachable is driftline_sidecar.kafka_reachable
    # One event-id generator and one size limit, shared by the logger, the codec and the config.
    assert driftline_sidecar.logger.new_event_id is driftline_sidecar.new_event_id
    assert driftline_sidecar.logger.MAX_EVENT_BYTES == driftline_sidecar.MAX_EVENT_BYTES

    from collector.config import KafkaSettings

    assert KafkaSettings().max_event_bytes == driftline_sidecar.MAX_EVENT_BYTES
