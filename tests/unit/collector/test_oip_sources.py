"""collector.sources.oip: MLServer's and Seldon Core v2's Kafka messages decoded into Parts.

The records are kafka-python `ConsumerRecord`s shaped as MLServer 1.7.1 writes them (headers
and bodies captured from a running MLServer) and as Seldon Core v2's model gateway does
(protobuf values serialized by the protobuf library, the input's key and headers copied).
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from kafka.consumer.fetcher import ConsumerRecord

from collector.config import parse_settings
from collector.config_sources import MLServerKafkaSource, SeldonV2Source
from collector.errors import EventDecodeError
from collector.sources.oip import MLServerKafkaDecoder, SeldonV2Decoder, unframe_schema_registry
from collector.sources.registry import build_decoders
from driftline_sidecar.payloads import parse_request, parse_response
from tests.unit.collector.oip_messages import message_classes

PB = message_classes()
STAMP = 1_795_999_009_010  # milliseconds


def _record(topic: str, value: bytes | None, *, key: bytes | None = None,
            headers: list[tuple[str, bytes]] | None = None, timestamp: int = STAMP) -> Any:
    return ConsumerRecord(topic, 0, -1, 7, timestamp, 0, key, value, headers or [], None,
                          -1, -1, -1)


def _json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


REQUEST = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64",
                       "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}
# What MLServer 1.7.1 wrote for REQUEST with key b"k-1" (its Kafka server, scikit-learn iris).
RESPONSE = (b'{"model_name":"iris","model_version":"v1","id":"k-1","parameters":{},"outputs":'
            b'[{"name":"predict","shape":[2,1],"datatype":"INT64","parameters":'
            b'{"content_type":"np"},"data":[0,2]}]}')
CE_HEADERS = [("Ce-Specversion", b"0.3"), ("Ce-Source", b"io.seldon.serving.deployment.mlserver"),
              ("Ce-Type", b"io.seldon.serving.inference.response"), ("Ce-Modelid", b"iris"),
              ("Ce-Inferenceservicename", b"mlserver"), ("Ce-Endpoint", b"iris"),
              ("Ce-Id", b"k-1"), ("Ce-Requestid", b"k-1")]


# -- MLServer ----------------------------------------------------------------------------------

def test_mlserver_request_and_response_pair_by_the_key() -> None:
    decoder = MLServerKafkaDecoder("mls")
    [request] = decoder.decode(_record("mlserver-input", _json({**REQUEST, "id": "body"}),
                                       key=b"k-1", headers=[("mlserver-model", b"iris"),
                                                            ("mlserver-version", b"v1")]))
    [response] = decoder.decode(_record("mlserver-output", RESPONSE, key=b"k-1",
                                        headers=CE_HEADERS, timestamp=STAMP + 12))

    assert (request.key, request.role, request.protocol) == ("k-1", "request", "v2")
    assert (request.model, request.version) == ("iris", "v1")
    assert request.body["id"] == "k-1"  # MLServer replaces the body's id with the key
    assert request.at == datetime.fromtimestamp(STAMP / 1000, tz=UTC)
    assert (response.key, response.role, response.model, response.version) == (
        "k-1", "response", "iris", "v1")
    assert response.at is not None
    assert request.at is not None
    assert (response.at - request.at).total_seconds() == pytest.approx(0.012)
    rows = parse_request("v2", request.body).rows
    assert rows == [{"x_0": 5.1, "x_1": 3.5, "x_2": 1.4, "x_3": 0.2},
                    {"x_0": 6.7, "x_1": 3.0, "x_2": 5.2, "x_3": 2.3}]
    assert parse_response("v2", response.body, n_rows=2).predictions == [0, 2]


def test_mlserver_request_without_a_key_pairs_by_its_body_id() -> None:
    decoder = MLServerKafkaDecoder("mls", input_topic="in", output_topic="out")
    [request] = decoder.decode(_record("in", _json({**REQUEST, "id": "body-id-2"}),
                                       headers=[("mlserver-model", b"iris")]))
    [response] = decoder.decode(_record("out", RESPONSE.replace(b"k-1", b"body-id-2"),
                                        key=b"body-id-2"))
    assert request.key == response.key == "body-id-2"
    assert request.version is None
    assert decoder.topics() == ["in", "out"]


def test_mlserver_response_without_model_name_takes_the_cloudevent_model() -> None:
    body = json.loads(RESPONSE)
    del body["model_name"]
    [response] = MLServerKafkaDecoder("mls").decode(
        _record("mlserver-output", _json(body), key=b"k-1", headers=CE_HEADERS))
    assert response.model == "iris"


@pytest.mark.parametrize(("topic", "value", "key", "headers", "reason", "match"), [
    ("mlserver-input", _json(REQUEST), None, [("mlserver-model", b"iris")], "missing_field",
     "neither a key nor an 'id'"),
    ("mlserver-input", _json(REQUEST), b"k", [], "missing_field", "'mlserver-model'"),
    ("mlserver-input", b"{not json", b"k", [("mlserver-model", b"iris")], "invalid_json",
     "not valid JSON"),
    ("mlserver-input", b"[1, 2]", b"k", [("mlserver-model", b"iris")], "not_an_object",
     "not a JSON object"),
    ("mlserver-input", b"\xff\xfe", b"k", [("mlserver-model", b"iris")], "invalid_utf8",
     "not UTF-8"),
    ("mlserver-input", None, b"k", [("mlserver-model", b"iris")], "missing_field", "no value"),
    ("mlserver-input", _json(REQUEST), b"\xff", [("mlserver-model", b"iris")], "invalid_utf8",
     "key is not UTF-8"),
    ("mlserver-output", b'{"outputs": []}', None, [], "missing_field", "neither a key"),
    ("elsewhere", RESPONSE, b"k", [], "invalid_value", "not read by source 'mls'"),
])
def test_mlserver_messages_that_cannot_be_read_or_paired_are_refused(
        topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]],
        reason: str, match: str) -> None:
    with pytest.raises(EventDecodeError, match=match) as error:
        MLServerKafkaDecoder("mls").decode(_record(topic, value, key=key, headers=headers))
    assert error.value.reason == reason


def test_mlserver_decoder_from_settings() -> None:
    settings = MLServerKafkaSource(name="mls", kind="mlserver_kafka", input_topic="a",
                                   output_topic="b")
    decoder = MLServerKafkaDecoder.from_settings(settings)
    assert decoder.name == "mls"
    assert decoder.topics() == settings.kafka_topics()
    with pytest.raises(ValueError, match="must differ"):
        MLServerKafkaDecoder("mls", input_topic="a", output_topic="a")


# -- Seldon Core v2 ----------------------------------------------------------------------------

INPUTS = "seldon.default.model.iris.inputs"
OUTPUTS = "seldon.default.model.iris.outputs"


def _proto_request(request_id: str = "") -> bytes:
    message = PB["ModelInferRequest"](id=request_id)
    message.inputs.add(name="predict", datatype="FP32", shape=[1, 4])
    message.raw_input_contents.append(np.array([5.1, 3.5, 1.4, 0.2], dtype="<f4").tobytes())
    return bytes(message.SerializeToString())


def _proto_response(request_id: str = "") -> bytes:
    message = PB["ModelInferResponse"](model_name="iris_1", model_version="1", id=request_id)
    output = message.outputs.add(name="predict", datatype="INT64", shape=[1, 1])
    output.contents.int64_contents.append(2)
    return bytes(message.SerializeToString())


def test_seldon_protobuf_request_and_response_pair_by_the_key() -> None:
    decoder = SeldonV2Decoder("seldon", ["iris", "wine"])
    headers = [("x-request-id", b"cq1"), ("seldon-infer-type", b"proto/InferModelRequest")]
    [request] = decoder.decode(_record(INPUTS, _proto_request(), key=b"0.iris.cq1",
                                       headers=headers))
    # The gateway copies the input's headers (its infer type too) to the output.
    [response] = decoder.decode(_record(OUTPUTS, _proto_response(), key=b"0.iris.cq1",
                                        headers=headers))

    assert (request.key, request.role, request.model, request.request_id) == (
        "0.iris.cq1", "request", "iris", "cq1")
    assert (response.key, response.role, response.model, response.version) == (
        "0.iris.cq1", "response", "iris", "1")
    f32 = [float(np.float32(v)) for v in (5.1, 3.5, 1.4, 0.2)]
    assert parse_request("v2", request.body).rows == [
        {f"predict_{j}": v for j, v in enumerate(f32)}]
    assert parse_response("v2", response.body).predictions == [2]
    assert decoder.topics() == [INPUTS, OUTPUTS, "seldon.default.model.wine.inputs",
                                "seldon.default.model.wine.outputs"]


def test_seldon_messages_without_a_key_pair_by_request_id_header_then_body_id() -> None:
    decoder = SeldonV2Decoder("seldon", ["iris"])
    [by_header] = decoder.decode(_record(OUTPUTS, _proto_response(),
                                         headers=[("x-request-id", b"h1")]))
    [by_id] = decoder.decode(_record(INPUTS, _proto_request("b1")))
    assert (by_header.key, by_header.request_id) == ("h1", None)
    assert (by_id.key, by_id.request_id) == ("b1", None)
    with pytest.raises(EventDecodeError, match="no key, no 'x-request-id' and no 'id'"):
        decoder.decode(_record(INPUTS, _proto_request()))


def test_seldon_json_values_by_header_or_by_their_first_byte() -> None:
    decoder = SeldonV2Decoder("seldon", ["iris"], namespace="ns", topic_prefix="acme")
    inputs, outputs = "acme.ns.model.iris.inputs", "acme.ns.model.iris.outputs"
    [sniffed] = decoder.decode(_record(inputs, b"  " + _json(REQUEST), key=b"k"))
    [typed] = decoder.decode(_record(outputs, RESPONSE, key=b"k", headers=[
        ("seldon-infer-type", b"json/inferModelRequest")]))
    assert sniffed.body == REQUEST
    assert typed.body == json.loads(RESPONSE)
    assert typed.role == "response"


def test_seldon_response_fed_to_an_inputs_topic_becomes_the_request_inputs() -> None:
    [part] = SeldonV2Decoder("seldon", ["iris"]).decode(_record(
        INPUTS, _proto_response("r1"), key=b"k",
        headers=[("seldon-infer-type", b"proto/InferModelResponse")]))
    assert part.role == "request"
    assert part.body == {"id": "r1", "inputs": [
        {"name": "predict", "datatype": "INT64", "shape": [1, 1], "data": [2]}]}


def test_seldon_values_framed_for_a_schema_registry_are_unframed() -> None:
    # Magic byte 0, schema id 7 (big-endian), message indexes [0] written as one 0 byte; then
    # indexes [1, 2] written as count 2 and the two values, all zigzag varints.
    first = b"\x00\x00\x00\x00\x07\x00" + _proto_request("r1")
    nested = b"\x00\x00\x00\x00\x07\x04\x02\x04" + _proto_request("r1")
    decoder = SeldonV2Decoder("seldon", ["iris"])
    for value in (first, nested):
        [part] = decoder.decode(_record(INPUTS, value, key=b"k"))
        assert part.body["id"] == "r1"
    assert unframe_schema_registry(_proto_request("r1")) == _proto_request("r1")
    with pytest.raises(EventDecodeError, match="truncated"):
        unframe_schema_registry(b"\x00\x00\x00")


@pytest.mark.parametrize(("topic", "value", "match"), [
    (INPUTS, b"\x1a\x05r1", "not a protobuf ModelInferRequest: field 3 runs past the end"),
    (OUTPUTS, b"\x2a\x03\x0a\x01", "not a protobuf ModelInferResponse"),
    (OUTPUTS, struct.pack("<4f", 1, 2, 3, 4), "not a protobuf ModelInferResponse"),
    (INPUTS, b"{oops", "not valid JSON"),
])
def test_seldon_values_that_are_neither_protobuf_nor_json_are_refused(
        topic: str, value: bytes, match: str) -> None:
    with pytest.raises(EventDecodeError, match=match):
        SeldonV2Decoder("seldon", ["iris"]).decode(_record(topic, value, key=b"k"))


def test_seldon_decoder_from_settings_reads_the_configured_topics() -> None:
    settings = SeldonV2Source(name="s2", kind="seldon_v2", namespace="prod",
                              seldon_models=["iris", "income"])
    decoder = SeldonV2Decoder.from_settings(settings)
    assert decoder.topics() == settings.kafka_topics()
    with pytest.raises(ValueError, match="at least one"):
        SeldonV2Decoder("s2", [])


# -- driftline.yaml ----------------------------------------------------------------------------

def test_the_documented_sources_config_builds_these_decoders(tmp_path: Path) -> None:
    reference = tmp_path / "iris.csv"
    reference.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n")
    config = yaml.safe_load(f"""
models:
  - name: iris
    features: {{sepal_length: numeric, sepal_width: numeric, petal_length: numeric,
               petal_width: numeric}}
    reference: {{path: {reference}}}
sources:
  - name: mlserver
    kind: mlserver_kafka
    input_topic: mlserver-input
    output_topic: mlserver-output
  - name: seldon
    kind: seldon_v2
    namespace: seldon-mesh
    seldon_models: [iris]
    models: {{iris: iris}}
""")
    settings = parse_settings(config, environ={})
    mlserver, seldon = build_decoders(settings.sources)
    assert isinstance(mlserver, MLServerKafkaDecoder)
    assert isinstance(seldon, SeldonV2Decoder)
    assert mlserver.topics() == ["mlserver-input", "mlserver-output"]
    assert seldon.topics() == ["seldon.seldon-mesh.model.iris.inputs",
                               "seldon.seldon-mesh.model.iris.outputs"]
