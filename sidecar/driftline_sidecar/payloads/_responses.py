"""Responses of the four protocols as one prediction per row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from driftline_sidecar.payloads._common import (
    PROTOCOLS,
    Outputs,
    PayloadError,
    _flat,
    _is_b64,
    _load,
    _object,
    _optional_str,
    _scalar,
    _seldon_data,
    _seldon_meta,
    _split_rows,
    _tensor,
)


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
