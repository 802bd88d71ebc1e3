"""The logging proxy's parts that need no network: recorder, frames, worker counts, CLI settings.

The HTTP side runs against a raw upstream (tests/integration/test_proxy_http.py) and real model
servers (tests/integration/test_proxy_servers.py).
"""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector.cli import build_parser
from collector.errors import ConfigError
from collector.proxy.cli import settings_from_args
from collector.proxy.handoff import WorkerMetrics
from collector.proxy.recorder import UNLOGGED_REASONS, Exchange, Recorder
from collector.proxy.serve import split_host_port
from collector.proxy.worker import encode_frame, read_frame
from driftline_sidecar.payloads import PAYLOAD_REASONS, Route, row_event_id

AT = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


class ListLogger:
    """Keeps what `PredictionLogger.log` is given (the recorder's one collaborator)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def log(self, **kwargs: Any) -> str | None:
        self.calls.append(kwargs)
        return str(kwargs["event_id"])


def _exchange(protocol: str, request: Any, response: Any, *, status: int = 200,
              model: str | None = "iris", version: str | None = None,
              request_id: str = "r-1") -> Exchange:
    def raw(body: Any) -> bytes:
        return body if isinstance(body, bytes) else json.dumps(body).encode()

    return Exchange(route=Route(protocol, model, version, "infer"), request_id=request_id,  # type: ignore[arg-type]
                    request_body=raw(request), response_body=None if response is None
                    else raw(response), status=status, started_at=AT, latency_ms=2.5)


def test_every_unlogged_reason_of_the_parser_has_a_series() -> None:
    assert set(PAYLOAD_REASONS) <= set(UNLOGGED_REASONS)


def test_v2_rows_become_events_with_deterministic_ids() -> None:
    sidecar = ListLogger()
    recorder = Recorder(sidecar, model="fraud", feature_names=["a", "b"])
    recorder.record(_exchange(
        "v2", {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 2],
                           "data": [1.0, 2.0, 3.0, 4.0]}]},
        {"model_name": "iris", "model_version": "v3", "outputs": [
            {"name": "p", "datatype": "FP64", "shape": [2, 2], "data": [0.1, 0.9, 0.8, 0.2]}]}))
    assert recorder.rows_logged == 2
    first, second = sidecar.calls
    assert first == {"features": {"a": 1.0, "b": 2.0}, "prediction": [0.1, 0.9],
                     "request_id": "r-1:0", "tags": {"upstream_model": "iris"},
                     "latency_ms": 2.5, "timestamp": AT, "model": "fraud",
                     "model_version": "v3", "event_id": row_event_id("fraud", "r-1", 0)}
    assert second["features"] == {"a": 3.0, "b": 4.0}
    assert second["request_id"] == "r-1:1"  # one id per row of a batch, so a label names one
    assert second["event_id"] == row_event_id("fraud", "r-1", 1)


def test_several_outputs_log_the_chosen_one_or_the_first() -> None:
    response = {"outputs": [
        {"name": "predict", "datatype": "INT64", "shape": [1, 1], "data": [2]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [1, 3], "data": [0.1, 0.2, 0.7]}]}
    request = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 1], "data": [5.0]}]}
    first, chosen = ListLogger(), ListLogger()
    Recorder(first, model="m").record(_exchange("v2", request, response))
    Recorder(chosen, model="m", output="predict_proba").record(_exchange("v2", request, response))
    assert first.calls[0]["prediction"] == 2
    assert chosen.calls[0]["prediction"] == [0.1, 0.2, 0.7]


def test_nan_inputs_are_missing_values() -> None:
    sidecar = ListLogger()
    Recorder(sidecar, model="m").record(_exchange(
        "v1", b'{"instances": [[NaN, 1.0]]}', b'{"predictions": [Infinity]}'))
    assert sidecar.calls[0]["features"] == {"x0": None, "x1": 1.0}
    assert sidecar.calls[0]["prediction"] is None


@pytest.mark.parametrize(("exchange", "reason"), [
    (_exchange("v1", {"instances": [[1]]}, {"error": "boom"}, status=500), "error_status"),
    (_exchange("v1", {"instances": [[1]]}, None), "too_large"),
    (_exchange("mlflow", b"a,b\n1,2\n", {"predictions": [1]}), "invalid_json"),
    (_exchange("v1", {"instances": [[1], [2]]}, {"predictions": [1, 2, 3]}),
     "row_count_mismatch"),
    (_exchange("v2", {"inputs": [{"name": "x", "shape": [1, 2], "data": [1]}]},
               {"outputs": []}), "shape_mismatch"),
    (_exchange("seldon", {"strData": "hello"}, {"strData": "hi"}), "no_features"),
])
def test_what_cannot_be_logged_is_counted(exchange: Exchange, reason: str) -> None:
    sidecar = ListLogger()
    recorder = Recorder(sidecar, model="m")
    recorder.record(exchange)
    assert sidecar.calls == []
    assert recorder.unlogged[reason] == 1
    assert sum(recorder.unlogged.values()) == 1


def test_metadata_names_are_fetched_once_per_model_and_version() -> None:
    fetched: list[str] = []
    metadata = {"name": "iris", "inputs": [{"name": "age", "datatype": "INT64", "shape": [-1, 1]},
                                           {"name": "hours", "datatype": "FP64",
                                            "shape": [-1, 1]}]}

    def fetch(path: str) -> bytes | None:
        fetched.append(path)
        return json.dumps(metadata).encode() if path == "/v2/models/iris" else None

    sidecar = ListLogger()
    recorder = Recorder(sidecar, model="m", fetch_metadata=fetch)
    request = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [30, 40]}]}
    response = {"outputs": [{"name": "p", "datatype": "INT64", "shape": [1], "data": [1]}]}
    for _ in range(3):
        recorder.record(_exchange("v2", request, response))
    recorder.record(_exchange("v2", request, response, version="7"))
    recorder.record(_exchange("v1", {"instances": [[1, 2]]}, {"predictions": [0]}))
    assert fetched == ["/v2/models/iris", "/v2/models/iris/versions/7",
                       "/v1/models/iris/metadata"]
    assert [call["features"] for call in sidecar.calls] == [
        {"age": 30, "hours": 40}] * 3 + [{"x_0": 30, "x_1": 40}, {"x0": 1, "x1": 2}]


def test_given_names_win_over_metadata_and_mlflow_has_none() -> None:
    fetched: list[str] = []

    def fetch(path: str) -> bytes | None:
        fetched.append(path)
        return None

    recorder = Recorder(ListLogger(), model="m", feature_names=["a"], fetch_metadata=fetch)
    recorder.record(_exchange("v1", {"instances": [[1]]}, {"predictions": [0]}))
    Recorder(ListLogger(), model="m", fetch_metadata=fetch).record(
        _exchange("mlflow", {"instances": [[1]]}, {"predictions": [0]}, model=None))
    assert fetched == []


def test_a_frame_round_trips() -> None:
    route = Route("v2", "iris", "3", "infer")
    stream = io.BytesIO(
        encode_frame(route, request_id="é-1", status=200, started_at=AT.timestamp(),
                     latency_ms=1.25, request_body=b"req", response_body=b"resp")
        + encode_frame(route, request_id="r2", status=500, started_at=AT.timestamp(),
                       latency_ms=0.5, request_body=b"", response_body=None))
    first, second = read_frame(stream), read_frame(stream)
    assert first == Exchange(route, "é-1", b"req", b"resp", 200, AT, 1.25)
    assert second == Exchange(route, "r2", b"", None, 500, AT, 0.5)
    assert read_frame(stream) is None
    truncated = encode_frame(route, request_id="r", status=200, started_at=0.0, latency_ms=0.0,
                             request_body=b"abc", response_body=b"")[:-2]
    assert read_frame(io.BytesIO(truncated)) is None


def test_worker_counts_add_up_over_restarts() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics()
    registry.register(metrics)
    metrics.update({"rows_logged": 5, "sent": 4, "unlogged": {"invalid_json": 1},
                    "dropped": {"broker_unavailable": 1}})
    metrics.worker_exited()
    metrics.update({"rows_logged": 2, "sent": 2, "unlogged": {}, "dropped": {}})
    assert registry.get_sample_value("driftline_proxy_rows_logged_total") == 7
    assert registry.get_sample_value("driftline_sidecar_events_total",
                                     {"kind": "prediction", "outcome": "sent"}) == 6
    assert registry.get_sample_value("driftline_sidecar_events_total",
                                     {"kind": "prediction", "outcome": "dropped"}) == 1
    assert registry.get_sample_value("driftline_sidecar_dropped_total",
                                     {"reason": "buffer_full"}) == 0
    assert registry.get_sample_value("driftline_proxy_unlogged_total",
                                     {"reason": "invalid_json"}) == 1


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["proxy", "--upstream", "http://127.0.0.1:8080",
                                      "--model", "iris", *argv])


def test_settings_from_flags_environment_and_defaults() -> None:
    settings = settings_from_args(_args("--features", "a, b,c", "--topic", "t"),
                                  {"KAFKA_BOOTSTRAP_SERVERS": "k:9092"})
    assert settings.bootstrap_servers == "k:9092"
    assert list(settings.feature_names or []) == ["a", "b", "c"]
    assert settings.predictions_topic == "t"
    assert settings.listen == "0.0.0.0:8000"
    default = settings_from_args(_args("--metrics-listen", "off"), {})
    assert default.bootstrap_servers == "127.0.0.1:9092"
    assert default.metrics_listen is None
    assert default.feature_names is None


def test_settings_from_config(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "driftline.yaml"
    if not example.exists():
        pytest.fail("examples/driftline.yaml is the config this test reads")
    from collector.config import load_settings

    config = load_settings(example)
    model = config.models[0]
    args = build_parser().parse_args(["proxy", "--upstream", "http://h:1", "--model", model.name,
                                      "--config", str(example)])
    settings = settings_from_args(args, {"KAFKA_BOOTSTRAP_SERVERS": "ignored:1"})
    assert settings.bootstrap_servers == config.kafka.bootstrap_servers
    assert settings.predictions_topic == config.kafka.predictions_topic
    assert list(settings.feature_names or []) == list(model.features)
    with pytest.raises(ConfigError, match="cannot read"):
        settings_from_args(build_parser().parse_args(
            ["proxy", "--upstream", "http://h:1", "--model", "m", "--config",
             str(tmp_path / "missing.yaml")]), {})


@pytest.mark.parametrize("value", ["8080", "host:", ":80", "host:99999", "host:http"])
def test_bad_listen_addresses_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        split_host_port(value, what="--listen")


def test_the_cli_says_what_is_wrong_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from collector.cli import main

    code = main(["proxy", "--upstream", "http://127.0.0.1:8080", "--model", "m",
                 "--listen", "8080"])
    assert code == 2
    assert "--listen must be HOST:PORT, got '8080'" in capsys.readouterr().err
    code = main(["proxy", "--upstream", "ftp://h", "--model", "m", "--metrics-listen", "off"])
    assert code == 2
    assert "upstream must be an http://host:port URL" in capsys.readouterr().err
    assert main(["proxy", "--model", "m"]) == 2  # --upstream is required


def test_compressed_bodies_are_logged_decompressed() -> None:
    import gzip
    import zlib

    request = json.dumps({"instances": [[1.0, 2.0]] * 3}).encode()
    response = json.dumps({"predictions": [0, 1, 1]}).encode()
    sidecar = ListLogger()
    recorder = Recorder(sidecar, model="m")
    recorder.record(Exchange(Route("v1", "iris", None, "infer"), "r-1", gzip.compress(request),
                             zlib.compress(response), 200, AT, 1.0, request_encoding="gzip",
                             response_encoding="deflate"))
    assert [call["prediction"] for call in sidecar.calls] == [0, 1, 1]
    assert recorder.rows_logged == 3


@pytest.mark.parametrize(("encoding", "body", "reason"), [
    ("br", b"\x8b\x02\x80", "unsupported_encoding"),
    ("gzip", b"not gzip", "invalid_json"),
    ("gzip", __import__("gzip").compress(b" " * (9 * 1024 * 1024)), "too_large"),  # a bomb
])
def test_bodies_that_cannot_be_decompressed_are_counted(encoding: str, body: bytes,
                                                        reason: str) -> None:
    sidecar = ListLogger()
    recorder = Recorder(sidecar, model="m")
    recorder.record(Exchange(Route("v1", "iris", None, "infer"), "r-1", b'{"instances": [[1]]}',
                             body, 200, AT, 1.0, response_encoding=encoding))
    assert sidecar.calls == []
    assert recorder.unlogged[reason] == 1
