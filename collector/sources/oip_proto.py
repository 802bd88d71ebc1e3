"""The Open Inference Protocol's gRPC messages read from protobuf bytes, standard library only.

Seldon Core v2 writes `inference.ModelInferRequest` and `inference.ModelInferResponse`
(the OIP's gRPC messages, KServe's `grpc_predict_v2.proto`, Seldon's `v2_dataplane.proto`)
to its model topics. Rather than depend on a protobuf runtime and generated code, this
module reads the protobuf wire format (https://protobuf.dev/programming-guides/encoding/)
for just these messages and returns the dict the OIP's JSON form would have, so that one
parser (`driftline_sidecar.payloads.parse_request("v2", ...)`) serves JSON and protobuf.

Field numbers (the same in KServe's, Triton's, MLServer's and Seldon's copies of the proto):

- ModelInferRequest: model_name 1, model_version 2, id 3, parameters 4 (map<string,
  InferParameter>), inputs 5 (InferInputTensor), outputs 6 (InferRequestedOutputTensor),
  raw_input_contents 7 (repeated bytes).
- ModelInferResponse: model_name 1, model_version 2, id 3, parameters 4, outputs 5
  (InferOutputTensor), raw_output_contents 6.
- InferInputTensor / InferOutputTensor: name 1, datatype 2, shape 3 (repeated int64),
  parameters 4, contents 5 (InferTensorContents). InferRequestedOutputTensor: name 1,
  parameters 2.
- InferParameter (a oneof): bool_param 1, int64_param 2, string_param 3, double_param 4,
  uint64_param 5 (the last two only in KServe's newer copy).
- InferTensorContents: bool_contents 1, int_contents 2 (int32: INT8, INT16, INT32),
  int64_contents 3, uint_contents 4 (uint32: UINT8, UINT16, UINT32), uint64_contents 5,
  fp32_contents 6, fp64_contents 7, bytes_contents 8 (BYTES).

Tensor data comes either from `contents` (the field of its datatype) or, when the message
carries `raw_*_contents`, from the raw bytes of the tensor at the same index: elements
little-endian and row-major, BOOL one byte, FP16 IEEE half precision (which has no
`contents` field, so it travels raw only), and BYTES as a 4-byte little-endian length
before each element. BYTES elements become text when every element of the tensor is UTF-8,
else base64 text with the tensor parameter `content_type: "base64"` (MLServer's name for
that encoding). Unknown fields are skipped, as protobuf parsers do; a known field with a
different wire type, a truncated value or data that does not fill the shape is an error.

Examples:
    >>> decode_infer_request(bytes.fromhex("1a0272312a0c0a01781204494e54381a01033a03ff0102"))
    {'id': 'r1', 'inputs': [{'name': 'x', 'datatype': 'INT8', 'shape': [3], 'data': [-1, 1, 2]}]}
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["ProtobufDecodeError", "decode_infer_request", "decode_infer_response"]

# Wire types (protobuf encoding guide): VARINT, I64, LEN and I32; the group types 3 and 4 are
# not used by these messages.
_VARINT: Final = 0
_I64: Final = 1
_LEN: Final = 2
_I32: Final = 5

# Datatype -> the InferTensorContents field that carries its values.
_CONTENTS_FIELD: Final[dict[str, int]] = {
    "BOOL": 1, "INT8": 2, "INT16": 2, "INT32": 2, "INT64": 3,
    "UINT8": 4, "UINT16": 4, "UINT32": 4, "UINT64": 5, "FP32": 6, "FP64": 7, "BYTES": 8,
}
# Datatype -> struct format character of one little-endian raw element.
_RAW_FORMAT: Final[dict[str, str]] = {
    "BOOL": "?", "INT8": "b", "INT16": "h", "INT32": "i", "INT64": "q",
    "UINT8": "B", "UINT16": "H", "UINT32": "I", "UINT64": "Q",
    "FP16": "e", "FP32": "f", "FP64": "d",
}
_DATATYPES: Final = frozenset({*_RAW_FORMAT, "BYTES"})


class ProtobufDecodeError(ValueError):
    """The bytes are not a well-formed ModelInferRequest / ModelInferResponse."""


# -- the wire format ---------------------------------------------------------------------------

def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    """The unsigned varint at `pos` and the position after it."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise ProtobufDecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if result >> 64:
                raise ProtobufDecodeError("varint longer than 64 bits")
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufDecodeError("varint longer than 10 bytes")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of each field: an int for VARINT, a view otherwise."""
    pos = 0
    end = len(buf)
    while pos < end:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ProtobufDecodeError("field number 0")
        value: Any
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if pos + size > end:
                raise ProtobufDecodeError(f"truncated fixed-size value of field {number}")
            value = buf[pos:pos + size]
            pos += size
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ProtobufDecodeError(f"field {number} runs past the end of its message")
            value = buf[pos:pos + length]
            pos += length
        else:
            raise ProtobufDecodeError(f"unsupported wire type {wire} (field {number})")
        yield number, wire, value


def _expect(number: int, wire: int, wanted: int, where: str) -> None:
    if wire != wanted:
        raise ProtobufDecodeError(f"{where} field {number} has wire type {wire}, not {wanted}")


def _text(value: memoryview, what: str) -> str:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:  # proto3 strings must be valid UTF-8
        raise ProtobufDecodeError(f"{what} is not valid UTF-8") from exc


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF  # an int32 is sign-extended to 64 bits on the wire
    return value - (1 << 32) if value >= 1 << 31 else value


def _varints(value: memoryview) -> Iterator[int]:
    pos = 0
    while pos < len(value):
        item, pos = _varint(value, pos)
        yield item


def _repeated_varint(wire: int, value: Any, what: str) -> list[int]:
    """A repeated varint field's values: packed (LEN) or one per field occurrence."""
    if wire == _LEN:
        return list(_varints(value))
    if wire == _VARINT:
        return [value]
    raise ProtobufDecodeError(f"{what} has wire type {wire}")


def _repeated_fixed(wire: int, value: Any, fmt: str, what: str) -> list[Any]:
    """A repeated fixed32/fixed64 field's values (float, double), packed or not."""
    size = struct.calcsize(fmt)
    single = _I32 if size == 4 else _I64
    if wire == single:
        return [struct.unpack(f"<{fmt}", value)[0]]
    if wire != _LEN:
        raise ProtobufDecodeError(f"{what} has wire type {wire}")
    if len(value) % size:
        raise ProtobufDecodeError(f"packed {what} is {len(value)} bytes, not a multiple of {size}")
    return list(struct.unpack(f"<{len(value) // size}{fmt}", value))


# -- messages ----------------------------------------------------------------------------------

def _parameter(buf: memoryview, key: str) -> Any:
    """An InferParameter's value (the last member of its oneof that is set; None if none)."""
    value: Any = None
    for number, wire, raw in _fields(buf):
        where = f"parameter {key!r}"
        if number == 1:
            _expect(number, wire, _VARINT, where)
            value = bool(raw)
        elif number == 2:
            _expect(number, wire, _VARINT, where)
            value = _signed64(raw)
        elif number == 3:
            _expect(number, wire, _LEN, where)
            value = _text(raw, where)
        elif number == 4:
            _expect(number, wire, _I64, where)
            value = struct.unpack("<d", raw)[0]
        elif number == 5:
            _expect(number, wire, _VARINT, where)
            value = raw
    return value


def _map_entry(buf: memoryview, parameters: dict[str, Any]) -> None:
    """One entry of a map<string, InferParameter> (a message with key 1 and value 2)."""
    key = ""
    value: memoryview | None = None
    for number, wire, raw in _fields(buf):
        if number == 1:
            _expect(number, wire, _LEN, "parameters entry")
            key = _text(raw, "a parameter name")
        elif number == 2:
            _expect(number, wire, _LEN, "parameters entry")
            value = raw
    parameters[key] = _parameter(value, key) if value is not None else None


def _contents(buf: memoryview, into: dict[int, list[Any]]) -> None:
    """Append an InferTensorContents' repeated fields to `into` (field number -> values)."""
    for number, wire, raw in _fields(buf):
        what = f"contents field {number}"
        values: list[Any]
        if number == 1:
            values = [bool(v) for v in _repeated_varint(wire, raw, what)]
        elif number == 2:
            values = [_signed32(v) for v in _repeated_varint(wire, raw, what)]
        elif number == 3:
            values = [_signed64(v) for v in _repeated_varint(wire, raw, what)]
        elif number == 4:
            values = [v & 0xFFFFFFFF for v in _repeated_varint(wire, raw, what)]
        elif number == 5:
            values = _repeated_varint(wire, raw, what)
        elif number == 6:
            values = _repeated_fixed(wire, raw, "f", what)
        elif number == 7:
            values = _repeated_fixed(wire, raw, "d", what)
        elif number == 8:
            _expect(number, wire, _LEN, "contents")
            values = [bytes(raw)]
        else:
            continue
        into.setdefault(number, []).extend(values)


class _Tensor:
    """An InferInputTensor / InferOutputTensor being read."""

    def __init__(self, buf: memoryview) -> None:
        self.name = ""
        self.datatype = ""
        self.shape: list[int] = []
        self.parameters: dict[str, Any] = {}
        self.contents: dict[int, list[Any]] = {}
        for number, wire, raw in _fields(buf):
            if number == 1:
                _expect(number, wire, _LEN, "tensor")
                self.name = _text(raw, "a tensor name")
            elif number == 2:
                _expect(number, wire, _LEN, "tensor")
                self.datatype = _text(raw, "a tensor datatype")
            elif number == 3:
                self.shape.extend(_signed64(v) for v in _repeated_varint(wire, raw, "shape"))
            elif number == 4:
                _expect(number, wire, _LEN, "tensor")
                _map_entry(raw, self.parameters)
            elif number == 5:
                _expect(number, wire, _LEN, "tensor")
                _contents(raw, self.contents)

    def _size(self) -> int:
        if any(d < 0 for d in self.shape):
            raise ProtobufDecodeError(f"tensor {self.name!r} has a negative dimension "
                                      f"in shape {self.shape}")
        return math.prod(self.shape)

    def to_dict(self, raw: memoryview | None) -> dict[str, Any]:
        """The tensor as OIP JSON, its data from `raw` when given, else from `contents`."""
        if self.datatype not in _DATATYPES:
            raise ProtobufDecodeError(f"tensor {self.name!r} has unknown datatype "
                                      f"{self.datatype!r}")
        size = self._size()
        if raw is not None:
            if any(self.contents.values()):
                raise ProtobufDecodeError(f"tensor {self.name!r} has both contents and raw "
                                          "contents")
            data = self._from_raw(raw, size)
        else:
            data = self._from_contents(size)
        parameters = dict(self.parameters)
        if self.datatype == "BYTES":
            data = _bytes_elements(data, parameters)
        out: dict[str, Any] = {"name": self.name, "datatype": self.datatype,
                               "shape": list(self.shape)}
        if parameters:
            out["parameters"] = parameters
        out["data"] = data
        return out

    def _from_contents(self, size: int) -> list[Any]:
        wanted = _CONTENTS_FIELD.get(self.datatype)
        present = {n for n, values in self.contents.items() if values}
        if present - {wanted}:
            names = sorted(present - {wanted})
            raise ProtobufDecodeError(f"tensor {self.name!r} ({self.datatype}) carries contents "
                                      f"field(s) {names} of another datatype")
        data = self.contents.get(wanted, []) if wanted is not None else []
        if len(data) != size:
            raise ProtobufDecodeError(f"tensor {self.name!r} has {len(data)} values in contents "
                                      f"for shape {self.shape}")
        return data

    def _from_raw(self, raw: memoryview, size: int) -> list[Any]:
        if self.datatype == "BYTES":
            return _raw_bytes(raw, size, self.name)
        fmt = _RAW_FORMAT[self.datatype]
        item = struct.calcsize(fmt)
        if len(raw) != size * item:
            raise ProtobufDecodeError(f"tensor {self.name!r} ({self.datatype}, shape "
                                      f"{self.shape}) needs {size * item} raw bytes, "
                                      f"got {len(raw)}")
        return list(struct.unpack(f"<{size}{fmt}", raw))


def _raw_bytes(raw: memoryview, size: int, name: str) -> list[bytes]:
    """BYTES elements of raw contents: each a 4-byte little-endian length, then the bytes."""
    out: list[bytes] = []
    pos = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise ProtobufDecodeError(f"tensor {name!r}: truncated BYTES length prefix")
        (length,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + length > len(raw):
            raise ProtobufDecodeError(f"tensor {name!r}: a BYTES element runs past the end")
        out.append(bytes(raw[pos:pos + length]))
        pos += length
    if len(out) != size:
        raise ProtobufDecodeError(f"tensor {name!r} has {len(out)} BYTES elements raw, "
                                  f"shape needs {size}")
    return out


def _bytes_elements(data: list[Any], parameters: dict[str, Any]) -> list[str]:
    """BYTES elements as text: UTF-8 when all of them are, else base64 (and say so)."""
    try:
        return [bytes(v).decode("utf-8") for v in data]
    except UnicodeDecodeError:
        parameters["content_type"] = "base64"
        return [base64.b64encode(bytes(v)).decode("ascii") for v in data]


def _requested_output(buf: memoryview) -> dict[str, Any]:
    name = ""
    parameters: dict[str, Any] = {}
    for number, wire, raw in _fields(buf):
        if number == 1:
            _expect(number, wire, _LEN, "requested output")
            name = _text(raw, "a requested output's name")
        elif number == 2:
            _expect(number, wire, _LEN, "requested output")
            _map_entry(raw, parameters)
    out: dict[str, Any] = {"name": name}
    if parameters:
        out["parameters"] = parameters
    return out


def _infer_message(data: bytes | bytearray | memoryview, *, response: bool) -> dict[str, Any]:
    """The shared reading of ModelInferRequest (response=False) and ModelInferResponse."""
    buf = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    tensors_field, raw_field = (5, 6) if response else (5, 7)
    head: dict[str, str] = {}
    parameters: dict[str, Any] = {}
    tensors: list[_Tensor] = []
    requested: list[dict[str, Any]] = []
    raw: list[memoryview] = []
    for number, wire, value in _fields(buf):
        if number in (1, 2, 3):
            _expect(number, wire, _LEN, "message")
            head[("model_name", "model_version", "id")[number - 1]] = _text(
                value, ("model_name", "model_version", "id")[number - 1])
        elif number == 4:
            _expect(number, wire, _LEN, "message")
            _map_entry(value, parameters)
        elif number == tensors_field:
            _expect(number, wire, _LEN, "message")
            tensors.append(_Tensor(value))
        elif number == raw_field:
            _expect(number, wire, _LEN, "message")
            raw.append(value)
        elif number == 6 and not response:
            _expect(number, wire, _LEN, "message")
            requested.append(_requested_output(value))
    if raw and len(raw) != len(tensors):
        raise ProtobufDecodeError(f"{len(raw)} raw contents for {len(tensors)} tensors")
    out: dict[str, Any] = {key: head[key] for key in ("model_name", "model_version", "id")
                           if head.get(key)}
    if parameters:
        out["parameters"] = parameters
    side = "outputs" if response else "inputs"
    out[side] = [tensor.to_dict(raw[i] if raw else None) for i, tensor in enumerate(tensors)]
    if requested:
        out["outputs"] = requested
    return out


def decode_infer_request(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """A serialized `ModelInferRequest` as the OIP's JSON inference request.

    Raises:
        ProtobufDecodeError: The bytes are not such a message (naming the field).
    """
    return _infer_message(data, response=False)


def decode_infer_response(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """A serialized `ModelInferResponse` as the OIP's JSON inference response.

    Raises:
        ProtobufDecodeError: The bytes are not such a message (naming the field).
    """
    return _infer_message(data, response=True)
