"""Model-server payloads parsed into rows of features and per-row predictions.

Pure functions over the REST/JSON shapes of four protocols, standard library only:

- ``"v1"``: TensorFlow Serving's and KServe v1's REST API. A request carries exactly one of
  ``instances`` (row format: one value or one ``{input name: value}`` object per row) or
  ``inputs`` (columnar format: one tensor, or ``{input name: tensor}``, batch along the first
  dimension). A response carries ``predictions`` (rows) or ``outputs`` (columnar).
- ``"v2"``: the Open Inference Protocol (KServe v2, MLServer, Triton, Seldon Core v2): named
  tensors with ``datatype``, ``shape`` and ``data`` (flat or nested, row-major), an optional
  ``id`` and ``parameters``. The first dimension of every tensor is the batch.
- ``"mlflow"``: MLflow's ``/invocations``: ``dataframe_split`` (``columns``, ``data``),
  ``dataframe_records``, ``instances`` or ``inputs`` (as v1); the response is
  ``{"predictions": ...}`` (a bare list, as MLflow 1.x answered, is accepted too).
- ``"seldon"``: Seldon Core v1's protocol, ``{"data": {"names": [...], "ndarray": [...] |
  "tensor": {"shape": [...], "values": [...]}}, "meta": {"puid": ...}}``. ``jsonData``,
  ``strData`` and ``binData`` carry no features and raise `PayloadError` ``no_features``.
  A one-dimensional ``ndarray`` or ``tensor`` is one row.

Feature names, in order of preference:

1. the payload's own: a v2 tensor of one column per row is named by the tensor, a v1 row object
   or columnar input by its key, Seldon's ``names``, MLflow's ``columns`` or record keys;
2. `feature_names`, which name the columns the payload leaves unnamed, in order, when their count
   equals the number of unnamed columns of a row;
3. positional names: ``f"{tensor}_{j}"`` for column ``j`` of a multi-column v2 tensor or v1
   named input, ``f"x{j}"`` for unnamed v1/MLflow/Seldon rows.

Nested values within a row (an image, a sequence) are flattened row-major, so column ``j`` is
the ``j``-th value of the row. A value ``{"b64": "..."}`` (TF Serving's binary encoding) stays
the base64 string. Non-finite numbers (``NaN``, ``Infinity``, which TF Serving accepts) are kept
as floats: the event codec refuses them, so a logger counts such a row as an encode error.

Predictions: one per row, a scalar when the row's output has one value, a flat list otherwise
(class scores), and a dict ``{output name: value}`` when there are several outputs.

Examples:
    >>> parse_request("v2", {"id": "r1", "inputs": [
    ...     {"name": "x", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3, 4]}]},
    ...     feature_names=["a", "b"]).rows
    [{'a': 1, 'b': 2}, {'a': 3, 'b': 4}]
    >>> parse_response("v1", b'{"predictions": [[0.1, 0.9], [0.8, 0.2]]}').predictions
    [[0.1, 0.9], [0.8, 0.2]]
    >>> route("POST", "/v2/models/iris/versions/3/infer")
    Route(protocol='v2', model='iris', version='3', kind='infer')
    >>> row_event_id("iris", "r1", 0) != row_event_id("iris", "r1", 1)
    True
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args
from urllib.parse import unquote

Protocol = Literal["v1", "v2", "mlflow", "seldon"]
PROTOCOLS: Final[tuple[Protocol, ...]] = get_args(Protocol)

RouteKind = Literal["infer", "metadata", "status", "ready", "health", "explain", "classify",
                    "regress", "generate", "feedback", "server_metadata"]

PayloadReason = Literal[
    "invalid_json",        # the body is not JSON (or not UTF-8)
    "not_an_object",       # the body is not a JSON object where the protocol needs one
    "unknown_protocol",    # the protocol name is none of PROTOCOLS
    "missing_inputs",      # no instances/inputs/tensors/data where the protocol needs them
    "ambiguous_inputs",    # several of the mutually exclusive input keys at once
    "wrong_type",          # a field of the wrong JSON type
    "shape_mismatch",      # data length against shape, or tensors/columns of different lengths
    "unsupported_value",   # a nested object where a scalar or array was expected
    "no_features",         # a payload without tabular data (Seldon jsonData/strData/binData)
    "too_many_features",   # a row wider than MAX_ROW_FEATURES
    "error_response",      # the server answered with an error object
    "row_count_mismatch",  # predictions for another number of rows than the request had
]
PAYLOAD_REASONS: Final[tuple[PayloadReason, ...]] = get_args(PayloadReason)

# A row wider than this is an image or a sequence, not a table: logging its pixels one feature
# each would pass the event codec's 1 MiB limit anyway.
MAX_ROW_FEATURES: Final = 2048

Row = dict[str, Any]


class PayloadError(ValueError):
    """A payload the parser cannot turn into rows; `reason` is a short snake_case label.

    Args:
        reason: One of `PAYLOAD_REASONS`, usable as a metric label.
        message: What was wrong, naming the field but never its value.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Inputs:
    """A request's rows (one feature dict per row of the batch) and what it says about itself."""

    rows: list[Row]
    request_id: str | None = None
    model: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Outputs:
    """A response's predictions (one per row) and what it says about itself."""

    predictions: list[Any]
    request_id: str | None = None
    model: str | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """What a REST path of a model server is: its protocol, model, version and kind."""

    protocol: Protocol
    model: str | None
    version: str | None
    kind: RouteKind


# -- routes ----------------------------------------------------------------------------------------
_NAME = r"(?P<model>[^/:]+)"
_V1_VERSION = r"(?:/(?:versions|labels)/(?P<version>[^/:]+))?"
_V2_VERSION = r"(?:/versions/(?P<version>[^/]+))?"
_ROUTES: Final[tuple[tuple[str, re.Pattern[str], Protocol, RouteKind], ...]] = (
    ("POST", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}:predict"), "v1", "infer"),
    ("POST", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}:explain"), "v1", "explain"),
    ("POST", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}:classify"), "v1", "classify"),
    ("POST", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}:regress"), "v1", "regress"),
    ("GET", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}/metadata"), "v1", "metadata"),
    ("GET", re.compile(rf"/v1/models/{_NAME}{_V1_VERSION}"), "v1", "status"),
    ("POST", re.compile(rf"/v2/models/{_NAME}{_V2_VERSION}/infer"), "v2", "infer"),
    ("POST", re.compile(rf"/v2/models/{_NAME}{_V2_VERSION}/generate(?:_stream)?"), "v2",
     "generate"),
    ("GET", re.compile(rf"/v2/models/{_NAME}{_V2_VERSION}/ready"), "v2", "ready"),
    ("GET", re.compile(rf"/v2/models/{_NAME}{_V2_VERSION}"), "v2", "metadata"),
    ("GET", re.compile(r"/v2/health/(?:live|ready)"), "v2", "health"),
    ("GET", re.compile(r"/v2"), "v2", "server_metadata"),
    ("POST", re.compile(r"/invocations"), "mlflow", "infer"),
    ("GET", re.compile(r"/(?:ping|health)"), "mlflow", "health"),
    ("POST", re.compile(r"(?:/seldon/[^/]+/(?P<model>[^/]+))?/api/v1\.0/predictions"),
     "seldon", "infer"),
    ("POST", re.compile(r"(?:/seldon/[^/]+/(?P<model>[^/]+))?/api/v1\.0/feedback"),
     "seldon", "feedback"),
)


def route(method: str, path: str) -> Route | None:
    """What a request is, from its method and path (a query string is ignored).

    Inference is ``POST``; metadata, status and health are ``GET``. Seldon Core v1's ingress
    paths ``/seldon/{namespace}/{deployment}/api/v1.0/predictions`` name the deployment as the
    model. TF Serving's ``/labels/{label}`` is returned as the version.

    Args:
        method: The HTTP method, any case.
        path: The request path, percent-encoded as sent.

    Returns:
        The route, or None for any other method and path.

    Examples:
        >>> route("POST", "/v1/models/fraud:predict")
        Route(protocol='v1', model='fraud', version=None, kind='infer')
        >>> route("GET", "/v2/models/fraud/versions/2").kind
        'metadata'
        >>> route("GET", "/v1/models/fraud:predict") is None
        True
    """
    method = method.upper()
    path = path.split("?", 1)[0]
    if len(path) > 1:
        path = path.rstrip("/")
    for wanted, pattern, protocol, kind in _ROUTES:
        if method != wanted:
            continue
        match = pattern.fullmatch(path)
        if match is None:
            continue
        groups = match.groupdict()
        model, version = groups.get("model"), groups.get("version")
        return Route(protocol, None if model is None else unquote(model),
                     None if version is None else unquote(version), kind)
    return None


# -- shared helpers --------------------------------------------------------------------------------
def _load(body: Any) -> Any:
    """`body` itself, or the JSON it holds when it is bytes or text (NaN and Infinity allowed)."""
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError("invalid_json", "body is not UTF-8") from exc
    if isinstance(body, str):
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise PayloadError("invalid_json", "body is not valid JSON") from exc
    return body


def _object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise PayloadError("not_an_object", f"{what} must be a JSON object")
    return body


def _scalar(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("b64"), str):
        return value["b64"]  # TF Serving's binary value: the base64 text is the feature
    raise PayloadError("unsupported_value", f"{where} holds a nested object")


_PLAIN: Final = frozenset({float, int, str, bool, type(None)})


def _flat(value: Any, where: str, out: list[Any]) -> list[Any]:
    """The scalars of `value` row-major, appended to `out`."""
    if type(value) is list and len(value) <= MAX_ROW_FEATURES - len(out) and all(
            type(item) in _PLAIN for item in value):
        out.extend(value)  # the common row: a flat list of JSON scalars, no recursion
        return out
    if isinstance(value, list | tuple):
        for item in value:
            _flat(item, where, out)
    else:
        out.append(_scalar(value, where))
    if len(out) > MAX_ROW_FEATURES:
        raise PayloadError("too_many_features",
                           f"{where} has over {MAX_ROW_FEATURES} values per row")
    return out


def _optional_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise PayloadError("wrong_type", f"field {key!r} must be a string")


class _Columns:
    """A row's columns in order, each named by the payload or left for `feature_names`."""

    __slots__ = ("names", "values")

    def __init__(self) -> None:
        self.names: list[str | tuple[str, int]] = []  # a name, or (prefix, j) when unnamed
        self.values: list[Any] = []

    def add(self, name: str | None, value: Any, where: str) -> None:
        """One named input of the row: a single column, or one per flattened value."""
        flat = _flat(value, where, [])
        if name is not None and not isinstance(value, list | tuple):
            self.names.append(name)
            self.values.append(flat[0])
            return
        if name is not None and len(flat) == 1 and not _is_nested(value):
            self.names.append(name)  # a [n, 1] tensor or a one-item list: one named column
            self.values.append(flat[0])
            return
        prefix = "x" if name is None else f"{name}_"
        self.names.extend((prefix, j) for j in range(len(flat)))
        self.values.extend(flat)
        if len(self.values) > MAX_ROW_FEATURES:
            raise PayloadError("too_many_features", f"rows have over {MAX_ROW_FEATURES} values")

    def row(self, feature_names: Sequence[str] | None) -> Row:
        unnamed = [i for i, name in enumerate(self.names) if isinstance(name, tuple)]
        use_given = feature_names is not None and len(feature_names) == len(unnamed) > 0
        given = iter(feature_names or ())
        row: Row = {}
        for name, value in zip(self.names, self.values, strict=True):
            if isinstance(name, tuple):
                key = next(given) if use_given else f"{name[0]}{name[1]}"
            else:
                key = name
            row[key] = value
        return row


def _is_nested(value: Any) -> bool:
    return isinstance(value, list | tuple) and any(isinstance(v, list | tuple) for v in value)


# -- requests ------------------------------------------------------------------------------------
def parse_request(protocol: str, body: Any, *,
                  feature_names: Sequence[str] | None = None) -> Inputs:
    """One feature dict per row of an inference request.

    Args:
        protocol: One of `PROTOCOLS`.
        body: The request body: parsed JSON, or its bytes or text.
        feature_names: Names for the columns the payload leaves unnamed (see the module).

    Returns:
        The rows, with the request id, model and version when the body carries them.

    Raises:
        PayloadError: When the body is not a request of that protocol.

    Examples:
        >>> parse_request("v1", {"instances": [[1.0, 2.0]]}).rows
        [{'x0': 1.0, 'x1': 2.0}]
        >>> parse_request("mlflow", {"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}}
        ...               ).rows
        [{'a': 1}, {'a': 2}]
    """
    parser = _REQUEST_PARSERS.get(protocol)
    if parser is None:
        raise PayloadError("unknown_protocol", f"protocol must be one of {PROTOCOLS}")
    return parser(_load(body), feature_names)


def _v1_rows(instances: Any, where: str, feature_names: Sequence[str] | None) -> list[Row]:
    if not isinstance(instances, list):
        raise PayloadError("wrong_type", f"field {where!r} must be a list of rows")
    rows: list[Row] = []
    for instance in instances:
        columns = _Columns()
        if isinstance(instance, Mapping) and not _is_b64(instance):
            for name, value in instance.items():
                columns.add(str(name), value, where)
        else:
            columns.add(None, instance, where)
        rows.append(columns.row(feature_names))
    return rows


def _is_b64(value: Mapping[str, Any]) -> bool:
    return len(value) == 1 and "b64" in value


def _v1_columnar(inputs: Any, where: str, feature_names: Sequence[str] | None) -> list[Row]:
    if not isinstance(inputs, Mapping) or _is_b64(inputs):
        return _v1_rows(inputs if isinstance(inputs, list) else [inputs], where, feature_names)
    # {name: tensor}: the batch runs along each tensor's first dimension; a value that is not a
    # list has no batch dimension and is the same for every row (TF Serving allows that).
    lengths = {len(value) for value in inputs.values() if isinstance(value, list)}
    if len(lengths) > 1:
        raise PayloadError("shape_mismatch", f"the tensors of {where!r} have different lengths")
    n_rows = lengths.pop() if lengths else 1
    rows: list[Row] = []
    for i in range(n_rows):
        columns = _Columns()
        for name, value in inputs.items():
            columns.add(str(name), value[i] if isinstance(value, list) else value, where)
        rows.append(columns.row(feature_names))
    return rows


def _v1_request(body: Any, feature_names: Sequence[str] | None) -> Inputs:
    obj = _object(body, "a v1 request")
    present = [key for key in ("instances", "inputs") if key in obj]
    if not present:
        raise PayloadError("missing_inputs", "a v1 request needs 'instances' or 'inputs'")
    if len(present) > 1:
        raise PayloadError("ambiguous_inputs", "a v1 request has both 'instances' and 'inputs'")
    if present[0] == "instances":
        rows = _v1_rows(obj["instances"], "instances", feature_names)
    else:
        rows = _v1_columnar(obj["inputs"], "inputs", feature_names)
    return Inputs(rows, _optional_str(obj, "id"))


def _mlflow_request(body: Any, feature_names: Sequence[str] | None) -> Inputs:
    obj = _object(body, "an MLflow request")
    keys = ("dataframe_split", "dataframe_records", "instances", "inputs")
    present = [key for key in keys if key in obj]
    if not present:
        raise PayloadError("missing_inputs", f"an MLflow request needs one of {keys}")
    if len(present) > 1:
        raise PayloadError("ambiguous_inputs", f"an MLflow request has several of {keys}")
    key = present[0]
    if key == "instances":
        rows = _v1_rows(obj[key], key, feature_names)
    elif key == "inputs":
        rows = _v1_columnar(obj[key], key, feature_names)
    elif key == "dataframe_records":
        records = obj[key]
        if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
            raise PayloadError("wrong_type", "field 'dataframe_records' must be a list of objects")
        rows = _v1_rows(records, key, feature_names)
    else:
        rows = _dataframe_split(_object(obj[key], "field 'dataframe_split'"), feature_names)
    return Inputs(rows)


def _dataframe_split(split: Mapping[str, Any], feature_names: Sequence[str] | None) -> list[Row]:
    data = split.get("data")
    if not isinstance(data, list):
        raise PayloadError("missing_inputs", "field 'dataframe_split' needs a 'data' list")
    columns = split.get("columns")
    if columns is not None and not (isinstance(columns, list)
                                    and all(isinstance(c, str | int) for c in columns)):
        raise PayloadError("wrong_type", "field 'dataframe_split.columns' must list names")
    rows: list[Row] = []
    for values in data:
        values = values if isinstance(values, list) else [values]  # a Series' split data
        if columns is not None and len(values) != len(columns):
            raise PayloadError("shape_mismatch",
                               "a row of 'dataframe_split.data' has another length than columns")
        row_columns = _Columns()
        if columns is None:
            row_columns.add(None, values, "dataframe_split")
        else:
            for name, value in zip(columns, values, strict=True):
                row_columns.add(str(name), value, "dataframe_split")
        rows.append(row_columns.row(feature_names))
    return rows


def _tensor(tensor: Any, where: str) -> tuple[str, list[int], list[Any]]:
    """A v2 tensor's name, shape and flat data, checked against each other."""
    obj = _object(tensor, f"a tensor of {where!r}")
    name = obj.get("name")
    shape = obj.get("shape")
    if not isinstance(name, str) or not name:
        raise PayloadError("wrong_type", f"a tensor of {where!r} has no name")
    if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise PayloadError("wrong_type", f"tensor {name!r} needs a shape of non-negative ints")
    data = obj.get("data")
    if data is None:
        raise PayloadError("missing_inputs", f"tensor {name!r} has no 'data' (binary data "
                                             "extension payloads are not parsed)")
    flat: list[Any] = []
    stack = [data]
    while stack:  # iterative, so that a deeply nested body cannot exhaust the recursion limit
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            flat.append(_scalar(item, f"tensor {name!r}"))
    if math.prod(shape) != len(flat):
        raise PayloadError("shape_mismatch",
                           f"tensor {name!r} holds {len(flat)} values for shape {shape}")
    return name, shape, flat


def _split_rows(shape: list[int], flat: list[Any]) -> list[list[Any]]:
    """The flat values of each row (the first dimension); a scalar tensor is one row."""
    if not shape:
        return [flat]
    n_rows = shape[0]
    width = math.prod(shape[1:])
    return [flat[i * width:(i + 1) * width] for i in range(n_rows)]


def _v2_request(body: Any, feature_names: Sequence[str] | None) -> Inputs:
    obj = _object(body, "a v2 request")
    tensors = obj.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise PayloadError("missing_inputs", "a v2 request needs a non-empty 'inputs' list")
    per_tensor: list[tuple[str, list[list[Any]]]] = []
    for tensor in tensors:
        name, shape, flat = _tensor(tensor, "inputs")
        width = math.prod(shape[1:]) if shape else 1
        if width > MAX_ROW_FEATURES:
            raise PayloadError("too_many_features",
                               f"tensor {name!r} has over {MAX_ROW_FEATURES} values per row")
        per_tensor.append((name, _split_rows(shape, flat)))
    n_rows = {len(rows) for _, rows in per_tensor}
    if len(n_rows) > 1:
        raise PayloadError("shape_mismatch", "the input tensors have different batch sizes")
    rows: list[Row] = []
    for i in range(n_rows.pop()):
        columns = _Columns()
        for name, tensor_rows in per_tensor:
            values = tensor_rows[i]
            columns.add(name, values[0] if len(values) == 1 else values, "inputs")
        rows.append(columns.row(feature_names))
    return Inputs(rows, _optional_str(obj, "id"), _optional_str(obj, "model_name"),
                  _optional_str(obj, "model_version"))


def _seldon_data(obj: Mapping[str, Any], what: str) -> tuple[list[str] | None, list[list[Any]]]:
    """Seldon's ``data``: its names and the flat values of each row."""
    if "data" not in obj:
        for key in ("jsonData", "strData", "binData"):
            if key in obj:
                raise PayloadError("no_features", f"a Seldon {what} with {key!r} has no features")
        raise PayloadError("missing_inputs", f"a Seldon {what} needs 'data'")
    data = _object(obj["data"], "field 'data'")
    names = data.get("names")
    if names is not None and not (isinstance(names, list)
                                  and all(isinstance(n, str) for n in names)):
        raise PayloadError("wrong_type", "field 'data.names' must be a list of strings")
    if "ndarray" in data:
        array = data["ndarray"]
        if not isinstance(array, list):
            raise PayloadError("wrong_type", "field 'data.ndarray' must be a list")
        if not any(isinstance(item, list) for item in array):
            return names or None, [_flat(array, "data.ndarray", [])]  # one-dimensional: one row
        return names or None, [_flat(row, "data.ndarray", []) for row in array]
    if "tensor" in data:
        tensor = _object(data["tensor"], "field 'data.tensor'")
        shape, values = tensor.get("shape"), tensor.get("values")
        if not isinstance(shape, list) or not isinstance(values, list):
            raise PayloadError("wrong_type", "field 'data.tensor' needs 'shape' and 'values'")
        _, shape, flat = _tensor({"name": "tensor", "shape": shape, "data": values}, "data")
        return names or None, [flat] if len(shape) <= 1 else _split_rows(shape, flat)
    if "tftensor" in data:
        raise PayloadError("no_features", "a Seldon 'data.tftensor' is not parsed")
    raise PayloadError("missing_inputs", "field 'data' needs 'ndarray' or 'tensor'")


def _seldon_meta(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The request id (``meta.puid``) and the model when ``meta.requestPath`` names one."""
    meta = obj.get("meta")
    if not isinstance(meta, Mapping):
        return None, None
    path = meta.get("requestPath")
    model = next(iter(path)) if isinstance(path, Mapping) and len(path) == 1 else None
    return _optional_str(meta, "puid"), None if model is None else str(model)


def _seldon_request(body: Any, feature_names: Sequence[str] | None) -> Inputs:
    obj = _object(body, "a Seldon request")
    names, value_rows = _seldon_data(obj, "request")
    rows: list[Row] = []
    for values in value_rows:
        columns = _Columns()
        if names is not None and len(names) == len(values):
            for name, value in zip(names, values, strict=True):
                columns.add(name, value, "data")
        else:
            columns.add(None, values, "data")
        rows.append(columns.row(feature_names))
    request_id, model = _seldon_meta(obj)
    return Inputs(rows, request_id, model)


_REQUEST_PARSERS: Final = {"v1": _v1_request, "v2": _v2_request, "mlflow": _mlflow_request,
                           "seldon": _seldon_request}


# -- responses -----------------------------------------------------------------------------------
def parse_response(protocol: str, body: Any, *, n_rows: int | None = None) -> Outputs:
    """One prediction per row of an inference response.

    Args:
        protocol: One of `PROTOCOLS`.
        body: The response body: parsed JSON, or its bytes or text.
        n_rows: The number of rows of the request, when known. A one-row request answered with
            a flat list of several scalars (a v1 or MLflow model returning one row's class
            scores unwrapped) is then one prediction, the list.

    Returns:
        The predictions, with the request id, model and version when the body carries them.

    Raises:
        PayloadError: When the body is not a response of that protocol, is an error object,
            or has another number of predictions than `n_rows`.

    Examples:
        >>> parse_response("v2", {"id": "r1", "model_name": "iris", "outputs": [
        ...     {"name": "predict", "datatype": "INT64", "shape": [2, 1], "data": [0, 2]}]})
        Outputs(predictions=[0, 2], request_id='r1', model='iris', version=None)
        >>> parse_response("seldon", {"data": {"ndarray": [[0.2, 0.8]]}}).predictions
        [[0.2, 0.8]]
    """
    parser = _RESPONSE_PARSERS.get(protocol)
    if parser is None:
        raise PayloadError("unknown_protocol", f"protocol must be one of {PROTOCOLS}")
    body = _load(body)
    if isinstance(body, Mapping) and ("error" in body or "error_code" in body) and not (
            "predictions" in body or "outputs" in body or "data" in body):
        raise PayloadError("error_response", "the server answered with an error")
    outputs = parser(body, n_rows)
    if n_rows is not None and len(outputs.predictions) != n_rows:
        raise PayloadError("row_count_mismatch", f"{len(outputs.predictions)} predictions "
                                                 f"for {n_rows} rows")
    return outputs


def _prediction(value: Any, where: str) -> Any:
    """One row's prediction: a scalar, a flat list, or a dict of outputs."""
    if isinstance(value, Mapping) and not _is_b64(value):
        if len(value) == 1:
            return _prediction(next(iter(value.values())), where)
        return {str(name): _prediction(item, where) for name, item in value.items()}
    if isinstance(value, list | tuple):
        flat = _flat(value, where, [])
        return flat[0] if len(flat) == 1 else flat
    return _scalar(value, where)


def _row_predictions(predictions: Any, where: str, n_rows: int | None) -> list[Any]:
    if isinstance(predictions, Mapping) and not _is_b64(predictions):
        # Columnar: {output name: one value per row}; a value that is not a list is per request.
        lengths = {len(v) for v in predictions.values() if isinstance(v, list)}
        if len(lengths) > 1:
            raise PayloadError("shape_mismatch", f"the outputs of {where!r} differ in length")
        count = lengths.pop() if lengths else 1
        return [_prediction({name: value[i] if isinstance(value, list) else value
                             for name, value in predictions.items()}, where)
                for i in range(count)]
    if not isinstance(predictions, list):
        return [_prediction(predictions, where)]
    if (n_rows == 1 and len(predictions) != 1
            and not any(isinstance(p, list | Mapping) for p in predictions)):
        return [_prediction(predictions, where)]
    return [_prediction(p, where) for p in predictions]


def _v1_response(body: Any, n_rows: int | None) -> Outputs:
    obj = _object(body, "a v1 response")
    for key in ("predictions", "outputs"):
        if key in obj:
            return Outputs(_row_predictions(obj[key], key, n_rows), _optional_str(obj, "id"))
    raise PayloadError("missing_inputs", "a v1 response needs 'predictions' or 'outputs'")


def _mlflow_response(body: Any, n_rows: int | None) -> Outputs:
    if isinstance(body, list):  # MLflow 1.x answered with the bare list
        return Outputs(_row_predictions(body, "predictions", n_rows))
    obj = _object(body, "an MLflow response")
    if "predictions" not in obj:
        raise PayloadError("missing_inputs", "an MLflow response needs 'predictions'")
    return Outputs(_row_predictions(obj["predictions"], "predictions", n_rows))


def _v2_response(body: Any, n_rows: int | None) -> Outputs:
    obj = _object(body, "a v2 response")
    tensors = obj.get("outputs")
    if not isinstance(tensors, list) or not tensors:
        raise PayloadError("missing_inputs", "a v2 response needs a non-empty 'outputs' list")
    per_tensor: list[tuple[str, list[list[Any]]]] = []
    for tensor in tensors:
        name, shape, flat = _tensor(tensor, "outputs")
        per_tensor.append((name, _split_rows(shape, flat)))
    counts = {len(rows) for _, rows in per_tensor}
    if len(counts) > 1:
        raise PayloadError("shape_mismatch", "the output tensors have different batch sizes")
    predictions: list[Any] = []
    for i in range(counts.pop()):
        values = {name: rows[i][0] if len(rows[i]) == 1 else rows[i] for name, rows in per_tensor}
        predictions.append(next(iter(values.values())) if len(values) == 1 else values)
    return Outputs(predictions, _optional_str(obj, "id"), _optional_str(obj, "model_name"),
                   _optional_str(obj, "model_version"))


def _seldon_response(body: Any, n_rows: int | None) -> Outputs:
    obj = _object(body, "a Seldon response")
    _, value_rows = _seldon_data(obj, "response")
    if n_rows == 1 and len(value_rows) == 1:
        predictions = [value_rows[0][0] if len(value_rows[0]) == 1 else value_rows[0]]
    elif (len(value_rows) == 1 and n_rows is not None and n_rows > 1
          and len(value_rows[0]) == n_rows):
        predictions = list(value_rows[0])  # a one-dimensional answer: one value per row
    else:
        predictions = [values[0] if len(values) == 1 else values for values in value_rows]
    request_id, model = _seldon_meta(obj)
    return Outputs(predictions, request_id, model)


_RESPONSE_PARSERS: Final = {"v1": _v1_response, "v2": _v2_response, "mlflow": _mlflow_response,
                            "seldon": _seldon_response}


# -- event ids and metadata ----------------------------------------------------------------------
_EVENT_ID_NAMESPACE: Final = uuid.UUID("4c3f7c1e-9a51-5d0e-8f51-6a1d0e5b7d21")


def row_event_id(model: str, request_id: str, row: int) -> str:
    """The event id of row `row` of request `request_id` to `model`: the same on every delivery.

    A name-based (version 5) UUID as 32 hex digits, like the random ids of `new_event_id`, so a
    request logged twice (a retried delivery, a replayed topic) is stored once by the collector,
    whose store is idempotent on event ids. The model is part of the name because request ids
    are only unique per client, and two models may see the same one.

    Examples:
        >>> row_event_id("iris", "req-1", 0)
        '5f66eff322f15936839e9ed09c7f894f'
    """
    # uuid.uuid5 by hand (RFC 9562 section 5.5), a third of its cost: it runs once per row.
    digest = bytearray(hashlib.sha1(  # noqa: S324 - a name-based UUID, not a security use
        _EVENT_ID_NAMESPACE.bytes + f"{model}\x1f{request_id}\x1f{row}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC variant
    return digest.hex()


def _one_column(shape: Any) -> bool:
    """True for a metadata tensor shape of one value per row: [-1], [-1, 1], [1]."""
    if not isinstance(shape, list) or not shape:
        return False
    dims = [int(d) if isinstance(d, int | str) and str(d).lstrip("-").isdigit() else None
            for d in shape[1:]]
    return all(d == 1 for d in dims)


def feature_names_from_metadata(protocol: str, body: Any) -> list[str] | None:
    """Feature names from a model's metadata, when its inputs are one column each.

    ``v2`` reads ``GET /v2/models/{name}``: the names of ``inputs`` whose shape is one value per
    row (``[-1]``, ``[-1, 1]``), in order (MLServer declares them in model-settings.json). ``v1``
    reads TensorFlow Serving's ``GET /v1/models/{name}/metadata``: the inputs of the
    ``serving_default`` signature (or the only one), whose order is the map's as the server sent
    it. A tensor of several columns per row has no column names: None then.

    Args:
        protocol: ``"v1"`` or ``"v2"``; any other gives None.
        body: The metadata response: parsed JSON, or its bytes or text.

    Returns:
        The names, or None when the metadata names no columns.

    Raises:
        PayloadError: When the body is not JSON.

    Examples:
        >>> feature_names_from_metadata("v2", {"name": "iris", "inputs": [
        ...     {"name": "age", "datatype": "INT64", "shape": [-1, 1]},
        ...     {"name": "city", "datatype": "BYTES", "shape": [-1]}]})
        ['age', 'city']
        >>> feature_names_from_metadata("v2", {"inputs": [
        ...     {"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]}) is None
        True
    """
    body = _load(body)
    if not isinstance(body, Mapping):
        return None
    if protocol == "v2":
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            return None
        names = [tensor.get("name") for tensor in inputs if isinstance(tensor, Mapping)]
        if len(names) != len(inputs) or not all(isinstance(n, str) and n for n in names):
            return None
        if not all(_one_column(tensor.get("shape")) for tensor in inputs):
            return None
        return [str(name) for name in names]
    if protocol == "v1":
        metadata = body.get("metadata")
        signatures = metadata.get("signature_def") if isinstance(metadata, Mapping) else None
        if isinstance(signatures, Mapping) and "signature_def" in signatures:
            signatures = signatures["signature_def"]
        if not isinstance(signatures, Mapping) or not signatures:
            return None
        signature = signatures.get("serving_default")
        if signature is None and len(signatures) == 1:
            signature = next(iter(signatures.values()))
        inputs = signature.get("inputs") if isinstance(signature, Mapping) else None
        if not isinstance(inputs, Mapping) or not inputs:
            return None
        for spec in inputs.values():
            dims = spec.get("tensor_shape", {}).get("dim") if isinstance(spec, Mapping) else None
            if not isinstance(dims, list) or not all(isinstance(d, Mapping) for d in dims):
                return None
            if not _one_column([d.get("size") for d in dims] or [-1]):
                return None
        return [str(name) for name in inputs]
    return None
