"""What every payload parser shares: the result types, the errors, and the JSON walking."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

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

    __slots__ = ("names", "unnamed", "values")

    def __init__(self) -> None:
        self.names: list[str | tuple[str, int]] = []  # a name, or (prefix, j) when unnamed
        self.values: list[Any] = []
        self.unnamed = 0

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
        self.unnamed += len(flat)
        if len(self.values) > MAX_ROW_FEATURES:
            raise PayloadError("too_many_features", f"rows have over {MAX_ROW_FEATURES} values")

    def row(self, feature_names: Sequence[str] | None) -> Row:
        if not self.unnamed:  # every column named by the payload
            return dict(zip(self.names, self.values, strict=True))  # type: ignore[arg-type]
        use_given = feature_names is not None and len(feature_names) == self.unnamed
        if use_given and self.unnamed == len(self.values):  # every column named by the caller
            return dict(zip(feature_names, self.values, strict=True))  # type: ignore[arg-type]
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



def _is_b64(value: Mapping[str, Any]) -> bool:
    return len(value) == 1 and "b64" in value


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
