"""The `sources:` section of driftline.yaml: validation, and what check-config says of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from collector.checks import check_sources
from collector.config import parse_settings
from collector.errors import ConfigError


def _data(tmp_path: Path, sources: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    reference = tmp_path / "reference.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(reference, index=False)
    return {"models": [{"name": "iris", "features": {"a": "numeric", "b": "numeric"},
                        "reference": {"path": str(reference)}}],
            "sources": sources, **extra}


def test_every_kind_parses_with_its_topics(tmp_path: Path) -> None:
    settings = parse_settings(_data(tmp_path, [
        {"name": "kserve", "kind": "cloudevents", "models": {"sklearn-iris": "iris"}},
        {"name": "seldon", "kind": "seldon_kafka_logger", "topics": ["seldon-logs"]},
        {"name": "mlserver", "kind": "mlserver_kafka"},
        {"name": "v2", "kind": "seldon_v2", "namespace": "prod", "seldon_models": ["iris"]},
    ]), environ={})
    assert [s.kafka_topics() for s in settings.sources] == [
        ["driftline.cloudevents"], ["seldon-logs"], ["mlserver-input", "mlserver-output"],
        ["seldon.prod.model.iris.inputs", "seldon.prod.model.iris.outputs"]]
    assert settings.sources[0].pairing_timeout_seconds == 60.0


@pytest.mark.parametrize(("sources", "match"), [
    ([{"name": "a", "kind": "nope"}], "does not match any of the expected tags"),
    ([{"name": "a", "kind": "cloudevents"}, {"name": "a", "kind": "cloudevents", "topic": "t"}],
     "names must be unique"),
    ([{"name": "a", "kind": "cloudevents"}, {"name": "b", "kind": "seldon_kafka_logger",
                                             "topics": ["driftline.cloudevents"]}],
     "is read by source 'a' too"),
    ([{"name": "a", "kind": "seldon_kafka_logger", "topics": ["driftline.labels"]}],
     "one of driftline's own topics"),
    ([{"name": "a", "kind": "cloudevents", "models": {"x": "unknown"}}], "not models of this"),
    ([{"name": "a", "kind": "cloudevents", "pairing_timeout_seconds": 0}], "greater than 0"),
    ([{"name": "a", "kind": "seldon_kafka_logger", "topics": []}], "at least 1 item"),
])
def test_bad_sources_are_refused_naming_the_problem(tmp_path: Path, sources: list[Any],
                                                    match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_settings(_data(tmp_path, sources), environ={})


def test_check_config_warns_of_a_loopback_endpoint_and_stray_feature_names(
        tmp_path: Path) -> None:
    settings = parse_settings(_data(tmp_path, [
        {"name": "kserve", "kind": "cloudevents", "feature_names": {"iris": ["a", "c"]}}]),
        environ={})
    problems = check_sources(settings)
    assert [(p.level, p.where) for p in problems] == [
        ("warning", "sources[0] (kserve).feature_names.iris"), ("warning", "http.host")]
    assert "['c'] are not features of iris" in problems[0].message
    open_settings = parse_settings(_data(tmp_path, [{"name": "kserve", "kind": "cloudevents"}],
                                         http={"host": "0.0.0.0"}), environ={})
    assert check_sources(open_settings) == []


def test_the_configuration_in_docs_integrations_md_is_valid(tmp_path: Path) -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "integrations.md").read_text("utf-8")
    section = docs.split("\n## The loggers as sources", 1)[1].split("\n## ", 1)[0]
    snippet = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    data = _data(tmp_path, snippet["sources"], http=snippet["http"])
    data["models"][0]["features"] = dict.fromkeys(
        ["sepal_length", "sepal_width", "petal_length", "petal_width"], "numeric")
    settings = parse_settings(data, environ={})
    assert [s.name for s in settings.sources] == ["kserve", "seldon", "seldon-kafka"]
    assert check_sources(settings) == []
