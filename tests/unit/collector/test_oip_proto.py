"""collector.sources.oip_proto against messages the protobuf library serializes.

Every datatype of the Open Inference Protocol, in `contents` and in raw little-endian bytes,
at its extremes; parameters of every kind; unpacked repeated fields; unknown fields; and the
malformed messages that must be refused. Expected values come from numpy (raw) and from the
protobuf library's own parse of the same bytes (contents), never from our reader.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.sources.oip_proto import (
    ProtobufDecodeError,
    decode_infer_request,
    decode_infer_response,
)
from driftline_sidecar.payloads import parse_request, parse_response
from tests.unit.collector.oip_messages import message_classes

PB = message_classes()
PB_UNPACKED = message_classes(packed=False)

# datatype -> (numpy little-endian dtype, contents field, extreme values)
DATATYPES: dict[str, tuple[str, str | None, list[Any]]] = {
    "BOOL": ("?", "bool_contents", [True, False, True]),
    "INT8": ("<i1", "int_contents", [-128, 0, 127]),
    "INT16": ("<i2", "int_contents", [-32768, -1, 32767]),
    "INT32": ("<i4", "int_contents", [-(2**31), -1, 2**31 - 1]),
    "INT64": ("<i8", "int64_contents", [-(2**63), -1, 2**63 - 1]),
    "UINT8": ("<u1", "uint_contents", [0, 1, 255]),
    "UINT16": ("<u2", "uint_contents", [0, 1, 65535]),
    "UINT32": ("<u4", "uint_contents", [0, 1, 2**32 - 1]),
    "UINT64": ("<u8", "uint64_contents", [0, 1, 2**64 - 1]),
    "FP16": ("<f2", None, [-65504.0, 0.0009765625, 1.5]),
    "FP32": ("<f4", "fp32_contents", [0.1, -3.4028234663852886e38, 1.401298464324817e-45]),
    "FP64": ("<f8", "fp64_contents", [0.1, -1.7976931348623157e308, 5e-324]),
}


def _request(pb: dict[str, Any] = PB, **fields: Any) -> Any:
    return pb["ModelInferRequest"](**fields)


def _input(name: str, datatype: str, shape: list[int], pb: dict[str, Any] = PB,
           **fields: Any) -> Any:
    return pb["ModelInferRequest"].InferInputTensor(name=name, datatype=datatype, shape=shape,
                                                    **fields)


@pytest.mark.parametrize("datatype", [d for d, spec in DATATYPES.items() if spec[1]])
@pytest.mark.parametrize("pb", [PB, PB_UNPACKED], ids=["packed", "unpacked"])
def test_contents_of_every_datatype_read_as_protobuf_reads_them(datatype: str,
                                                                pb: dict[str, Any]) -> None:
    _, field, values = DATATYPES[datatype]
    assert field is not None
    contents = pb["InferTensorContents"](**{field: values})
    message = _request(pb, id="r1", inputs=[_input("t", datatype, [1, 3], pb,
                                                    contents=contents)])
    data = message.SerializeToString()

    decoded = decode_infer_request(data)

    expected = list(getattr(pb["ModelInferRequest"].FromString(data).inputs[0].contents, field))
    assert decoded["inputs"][0]["data"] == expected
    assert [type(v) for v in decoded["inputs"][0]["data"]] == [type(v) for v in expected]
    if datatype != "FP32":  # float32 contents hold the nearest float32, as protobuf reads it
        assert expected == values
    assert decoded == {"id": "r1", "inputs": [
        {"name": "t", "datatype": datatype, "shape": [1, 3], "data": expected}]}


@pytest.mark.parametrize("datatype", list(DATATYPES))
def test_raw_contents_of_every_datatype_are_little_endian_elements(datatype: str) -> None:
    dtype, _, values = DATATYPES[datatype]
    array = np.array(values, dtype=dtype).reshape(3, 1)
    message = _request(inputs=[_input("t", datatype, [3, 1])],
                       raw_input_contents=[array.tobytes()])

    decoded = decode_infer_request(message.SerializeToString())

    assert decoded["inputs"][0]["data"] == array.ravel().tolist()
    assert decoded["inputs"][0]["shape"] == [3, 1]


def test_float32_values_are_the_float32_nearest_as_a_double() -> None:
    raw = np.array([0.1, 1 / 3], dtype="<f4")
    message = _request(inputs=[_input("t", "FP32", [2])], raw_input_contents=[raw.tobytes()])
    data = decode_infer_request(message.SerializeToString())["inputs"][0]["data"]
    assert data == [float(np.float32(0.1)), float(np.float32(1 / 3))]
    assert data[0] != 0.1


def test_non_finite_floats_are_kept_for_the_event_codec_to_judge() -> None:
    raw = np.array([np.nan, np.inf, -np.inf], dtype="<f8").tobytes()
    message = _request(inputs=[_input("t", "FP64", [3])], raw_input_contents=[raw])
    data = decode_infer_request(message.SerializeToString())["inputs"][0]["data"]
    assert math.isnan(data[0])
    assert data[1:] == [math.inf, -math.inf]


def test_bytes_tensors_in_contents_and_raw_with_length_prefixes() -> None:
    words = ["setosa", "", "versicolor", "é✓"]
    encoded = [w.encode() for w in words]
    raw = b"".join(struct.pack("<I", len(w)) + w for w in encoded)
    contents = PB["InferTensorContents"](bytes_contents=encoded)
    in_contents = _request(inputs=[_input("species", "BYTES", [4, 1], contents=contents)])
    in_raw = _request(inputs=[_input("species", "BYTES", [4, 1])], raw_input_contents=[raw])

    for message in (in_contents, in_raw):
        tensor = decode_infer_request(message.SerializeToString())["inputs"][0]
        assert tensor == {"name": "species", "datatype": "BYTES", "shape": [4, 1],
                          "data": words}


def test_binary_bytes_become_base64_and_the_tensor_says_so() -> None:
    contents = PB["InferTensorContents"](bytes_contents=[b"\xff\x00", b"ok"])
    message = _request(inputs=[_input("img", "BYTES", [2], contents=contents)])
    tensor = decode_infer_request(message.SerializeToString())["inputs"][0]
    assert tensor["data"] == ["/wA=", "b2s="]
    assert tensor["parameters"] == {"content_type": "base64"}


def _parameters(target: Any) -> None:
    target["flag"].bool_param = True
    target["count"].int64_param = -(2**63)
    target["content_type"].string_param = "np"
    target["scale"].double_param = 0.25
    target["big"].uint64_param = 2**64 - 1


PARAMETERS = {"flag": True, "count": -(2**63), "content_type": "np", "scale": 0.25,
              "big": 2**64 - 1}


def test_parameters_of_every_kind_on_message_tensor_and_requested_output() -> None:
    message = _request(model_name="iris", model_version="3", id="r1")
    _parameters(message.parameters)
    tensor = message.inputs.add(name="x", datatype="INT32", shape=[1])
    tensor.contents.int_contents.append(7)
    _parameters(tensor.parameters)
    requested = message.outputs.add(name="predict_proba")
    _parameters(requested.parameters)
    message.parameters["unset"].SetInParent()

    decoded = decode_infer_request(message.SerializeToString())

    assert decoded == {
        "model_name": "iris", "model_version": "3", "id": "r1",
        "parameters": {**PARAMETERS, "unset": None},
        "inputs": [{"name": "x", "datatype": "INT32", "shape": [1], "parameters": PARAMETERS,
                    "data": [7]}],
        "outputs": [{"name": "predict_proba", "parameters": PARAMETERS}],
    }


def test_a_response_with_raw_outputs_and_the_empty_contents_mlserver_writes() -> None:
    response = PB["ModelInferResponse"](model_name="iris", model_version="v1", id="g-1")
    output = response.outputs.add(name="predict", datatype="INT64", shape=[2, 1])
    output.parameters["content_type"].string_param = "np"
    output.contents.SetInParent()  # MLServer sets an empty `contents {}` next to raw outputs
    response.raw_output_contents.append(np.array([0, 2], dtype="<i8").tobytes())

    decoded = decode_infer_response(response.SerializeToString())

    assert decoded == {"model_name": "iris", "model_version": "v1", "id": "g-1", "outputs": [
        {"name": "predict", "datatype": "INT64", "shape": [2, 1],
         "parameters": {"content_type": "np"}, "data": [0, 2]}]}
    assert parse_response("v2", decoded).predictions == [0, 2]


def test_decoded_protobuf_parses_like_the_same_json() -> None:
    proba = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]], dtype="<f8")
    response = PB["ModelInferResponse"](id="r9", model_name="iris")
    response.outputs.add(name="predict_proba", datatype="FP64", shape=[2, 3])
    response.raw_output_contents.append(proba.tobytes())
    request = _request(id="r9", inputs=[
        _input("sepal_length", "FP32", [2, 1],
               contents=PB["InferTensorContents"](fp32_contents=[5.5, 6.25])),
        _input("color", "BYTES", [2, 1],
               contents=PB["InferTensorContents"](bytes_contents=[b"red", b"blue"]))])
    json_request = {"id": "r9", "inputs": [
        {"name": "sepal_length", "datatype": "FP32", "shape": [2, 1], "data": [5.5, 6.25]},
        {"name": "color", "datatype": "BYTES", "shape": [2, 1], "data": ["red", "blue"]}]}
    json_response = {"id": "r9", "model_name": "iris", "outputs": [
        {"name": "predict_proba", "datatype": "FP64", "shape": [2, 3],
         "data": proba.ravel().tolist()}]}

    assert (parse_request("v2", decode_infer_request(request.SerializeToString()))
            == parse_request("v2", json_request))
    assert (parse_response("v2", decode_infer_response(response.SerializeToString()))
            == parse_response("v2", json_response))


def test_unknown_fields_are_skipped() -> None:
    message = _request(id="r1", inputs=[_input("x", "INT64", [1],
                                               contents=PB["InferTensorContents"](
                                                   int64_contents=[5]))])
    data = message.SerializeToString()
    # Field 99 (LEN, 3 bytes) and field 100 (VARINT), tags as two-byte varints.
    extended = data + b"\x9a\x06\x03abc" + b"\xa0\x06\x01"
    assert decode_infer_request(extended) == decode_infer_request(data)


def test_an_empty_request_is_an_empty_inputs_list() -> None:
    assert decode_infer_request(b"") == {"inputs": []}


@pytest.mark.parametrize(("data", "match"), [
    (b"\x1a\x05r1", "runs past the end"),
    (b"\x1a", "truncated varint"),
    (b"\x1a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "10 bytes|64 bits"),
    (b"\x18\x01", "wire type 0, not 2"),
    (b"\x1b", "unsupported wire type 3"),
    (b"\x00\x01", "field number 0"),
    (b"\x1a\x02\xff\xfe", "not valid UTF-8"),
    (b"{\"inputs\": []}", "wire type|runs past|truncated"),
])
def test_malformed_messages_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(ProtobufDecodeError, match=match):
        decode_infer_request(data)


def _serialized(**fields: Any) -> bytes:
    return bytes(_request(**fields).SerializeToString())


@pytest.mark.parametrize(("data", "match"), [
    (_serialized(inputs=[_input("x", "FP32", [2, 2], contents=PB["InferTensorContents"](
        fp32_contents=[1.0, 2.0, 3.0]))]), "3 values in contents for shape \\[2, 2\\]"),
    (_serialized(inputs=[_input("x", "FP32", [2])], raw_input_contents=[b"\x00" * 7]),
     "needs 8 raw bytes, got 7"),
    (_serialized(inputs=[_input("x", "FP32", [1]), _input("y", "FP32", [1])],
                 raw_input_contents=[b"\x00" * 4]), "1 raw contents for 2 tensors"),
    (_serialized(inputs=[_input("x", "BF16", [1])], raw_input_contents=[b"\x00" * 2]),
     "unknown datatype 'BF16'"),
    (_serialized(inputs=[_input("x", "FP16", [1], contents=PB["InferTensorContents"](
        fp32_contents=[1.0]))]), "contents field\\(s\\) \\[6\\] of another datatype"),
    (_serialized(inputs=[_input("x", "INT32", [1], contents=PB["InferTensorContents"](
        int_contents=[1]))], raw_input_contents=[b"\x00" * 4]), "both contents and raw"),
    (_serialized(inputs=[_input("x", "INT32", [-1, 1])]), "negative dimension"),
    (_serialized(inputs=[_input("x", "BYTES", [2])], raw_input_contents=[
        b"\x02\x00\x00\x00ab\x05\x00\x00\x00abc"]), "runs past the end"),
    (_serialized(inputs=[_input("x", "BYTES", [2])], raw_input_contents=[
        b"\x02\x00\x00\x00ab\x05\x00"]), "truncated BYTES length prefix"),
    (_serialized(inputs=[_input("x", "BYTES", [2])], raw_input_contents=[
        b"\x02\x00\x00\x00ab"]), "1 BYTES elements raw, shape needs 2"),
])
def test_tensors_that_do_not_fill_their_shape_are_refused(data: bytes, match: str) -> None:
    with pytest.raises(ProtobufDecodeError, match=match):
        decode_infer_request(data)


_VALUES = {
    "BOOL": st.booleans(),
    "INT8": st.integers(-(2**7), 2**7 - 1), "INT16": st.integers(-(2**15), 2**15 - 1),
    "INT32": st.integers(-(2**31), 2**31 - 1), "INT64": st.integers(-(2**63), 2**63 - 1),
    "UINT8": st.integers(0, 2**8 - 1), "UINT16": st.integers(0, 2**16 - 1),
    "UINT32": st.integers(0, 2**32 - 1), "UINT64": st.integers(0, 2**64 - 1),
    "FP16": st.floats(width=16, allow_nan=False), "FP32": st.floats(width=32, allow_nan=False),
    "FP64": st.floats(allow_nan=False),
}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_tensors_decode_to_what_was_encoded(data: st.DataObject) -> None:
    datatype = data.draw(st.sampled_from(sorted(_VALUES)))
    rows = data.draw(st.integers(0, 4))
    width = data.draw(st.integers(1, 3))
    values = data.draw(st.lists(_VALUES[datatype], min_size=rows * width,
                                max_size=rows * width))
    dtype, field, _ = DATATYPES[datatype]
    use_raw = field is None or data.draw(st.booleans())
    response = PB["ModelInferResponse"](id="r")
    if use_raw:
        response.outputs.add(name="y", datatype=datatype, shape=[rows, width])
        response.raw_output_contents.append(np.array(values, dtype=dtype).tobytes())
    else:
        output = response.outputs.add(name="y", datatype=datatype, shape=[rows, width])
        getattr(output.contents, field).extend(values)
    encoded = response.SerializeToString()

    decoded = decode_infer_response(encoded)["outputs"][0]["data"]

    if use_raw:
        assert decoded == np.array(values, dtype=dtype).tolist()
    else:
        assert decoded == list(getattr(
            PB["ModelInferResponse"].FromString(encoded).outputs[0].contents, field))
