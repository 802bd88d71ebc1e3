"""The OIP's gRPC messages as real protobuf classes, for cross-checking our wire reader.

The descriptors are built here field by field from the protocol's field numbers (KServe's
open-inference-protocol `grpc_predict_v2.proto`, the same numbers in Seldon's and MLServer's
copies), and the `protobuf` library serializes them, so our reader is checked against a real
encoder. `packed=False` builds the same messages with repeated scalars unpacked, which proto3
encoders never write but every parser must read.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _field(message: Any, name: str, number: int, kind: int, *, repeated: bool = False,
           type_name: str | None = None, oneof: int | None = None,
           packed: bool | None = None) -> None:
    field = message.field.add(name=name, number=number, type=kind,
                              label=_REPEATED if repeated else _OPTIONAL)
    if type_name is not None:
        field.type_name = type_name
    if oneof is not None:
        field.oneof_index = oneof
    if packed is not None:
        field.options.packed = packed


def _parameters_map(message: Any, number: int) -> None:
    entry = message.nested_type.add(name="ParametersEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, type_name=".inference.InferParameter")
    _field(message, "parameters", number, _F.TYPE_MESSAGE, repeated=True,
           type_name=f".inference.{message.name}.ParametersEntry")


def _tensor(parent: Any, name: str) -> None:
    tensor = parent.nested_type.add(name=name)
    _field(tensor, "name", 1, _F.TYPE_STRING)
    _field(tensor, "datatype", 2, _F.TYPE_STRING)
    _field(tensor, "shape", 3, _F.TYPE_INT64, repeated=True)
    entry = tensor.nested_type.add(name="ParametersEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, type_name=".inference.InferParameter")
    _field(tensor, "parameters", 4, _F.TYPE_MESSAGE, repeated=True,
           type_name=f".inference.{parent.name}.{name}.ParametersEntry")
    _field(tensor, "contents", 5, _F.TYPE_MESSAGE, type_name=".inference.InferTensorContents")


def message_classes(*, packed: bool = True) -> dict[str, Any]:
    """ModelInferRequest, ModelInferResponse and their parts, as protobuf message classes."""
    pack = None if packed else False
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"driftline_oip_test_{'packed' if packed else 'unpacked'}.proto",
        package="inference", syntax="proto3")

    parameter = proto.message_type.add(name="InferParameter")
    parameter.oneof_decl.add(name="parameter_choice")
    _field(parameter, "bool_param", 1, _F.TYPE_BOOL, oneof=0)
    _field(parameter, "int64_param", 2, _F.TYPE_INT64, oneof=0)
    _field(parameter, "string_param", 3, _F.TYPE_STRING, oneof=0)
    _field(parameter, "double_param", 4, _F.TYPE_DOUBLE, oneof=0)
    _field(parameter, "uint64_param", 5, _F.TYPE_UINT64, oneof=0)

    contents = proto.message_type.add(name="InferTensorContents")
    for name, number, kind in (
            ("bool_contents", 1, _F.TYPE_BOOL), ("int_contents", 2, _F.TYPE_INT32),
            ("int64_contents", 3, _F.TYPE_INT64), ("uint_contents", 4, _F.TYPE_UINT32),
            ("uint64_contents", 5, _F.TYPE_UINT64), ("fp32_contents", 6, _F.TYPE_FLOAT),
            ("fp64_contents", 7, _F.TYPE_DOUBLE)):
        _field(contents, name, number, kind, repeated=True, packed=pack)
    _field(contents, "bytes_contents", 8, _F.TYPE_BYTES, repeated=True)

    request = proto.message_type.add(name="ModelInferRequest")
    _tensor(request, "InferInputTensor")
    requested = request.nested_type.add(name="InferRequestedOutputTensor")
    _field(requested, "name", 1, _F.TYPE_STRING)
    entry = requested.nested_type.add(name="ParametersEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, type_name=".inference.InferParameter")
    _field(requested, "parameters", 2, _F.TYPE_MESSAGE, repeated=True,
           type_name=".inference.ModelInferRequest.InferRequestedOutputTensor.ParametersEntry")
    _field(request, "model_name", 1, _F.TYPE_STRING)
    _field(request, "model_version", 2, _F.TYPE_STRING)
    _field(request, "id", 3, _F.TYPE_STRING)
    _parameters_map(request, 4)
    _field(request, "inputs", 5, _F.TYPE_MESSAGE, repeated=True,
           type_name=".inference.ModelInferRequest.InferInputTensor")
    _field(request, "outputs", 6, _F.TYPE_MESSAGE, repeated=True,
           type_name=".inference.ModelInferRequest.InferRequestedOutputTensor")
    _field(request, "raw_input_contents", 7, _F.TYPE_BYTES, repeated=True)

    response = proto.message_type.add(name="ModelInferResponse")
    _tensor(response, "InferOutputTensor")
    _field(response, "model_name", 1, _F.TYPE_STRING)
    _field(response, "model_version", 2, _F.TYPE_STRING)
    _field(response, "id", 3, _F.TYPE_STRING)
    _parameters_map(response, 4)
    _field(response, "outputs", 5, _F.TYPE_MESSAGE, repeated=True,
           type_name=".inference.ModelInferResponse.InferOutputTensor")
    _field(response, "raw_output_contents", 6, _F.TYPE_BYTES, repeated=True)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    names = {"InferParameter": "inference.InferParameter",
             "InferTensorContents": "inference.InferTensorContents",
             "ModelInferRequest": "inference.ModelInferRequest",
             "ModelInferResponse": "inference.ModelInferResponse"}
    return {short: message_factory.GetMessageClass(pool.FindMessageTypeByName(full))
            for short, full in names.items()}
