"""Requests of the four protocols as rows of features (the rules are in the package's doc)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from driftline_sidecar.payloads._common import (
    _PLAIN,
    MAX_ROW_FEATURES,
    PROTOCOLS,
    Inputs,
    PayloadError,
    Row,
    _Columns,
    _is_b64,
    _load,
    _object,
    _optional_str,
    _seldon_data,
    _seldon_meta,
    _split_rows,
    _tensor,
)


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
    positional: list[str] = []
    for instance in instances:
        if type(instance) is list and all(type(value) in _PLAIN for value in instance):
            # The common row, a flat list of scalars: named at once.
            if feature_names is not None and len(feature_names) == len(instance):
                rows.append(dict(zip(feature_names, instance, strict=True)))
                continue
            if len(instance) <= MAX_ROW_FEATURES:
                if len(positional) < len(instance):
                    positional = [f"x{j}" for j in range(len(instance))]
                rows.append(dict(zip(positional, instance, strict=False)))
                continue
        columns = _Columns()
        if isinstance(instance, Mapping) and not _is_b64(instance):
            for name, value in instance.items():
                columns.add(str(name), value, where)
        else:
            columns.add(None, instance, where)
        rows.append(columns.row(feature_names))
    return rows


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
