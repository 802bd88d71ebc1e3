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

from driftline_sidecar.payloads._common import (
    MAX_ROW_FEATURES,
    PAYLOAD_REASONS,
    PROTOCOLS,
    Inputs,
    Outputs,
    PayloadError,
    PayloadReason,
    Protocol,
    Route,
    RouteKind,
    Row,
)
from driftline_sidecar.payloads._metadata import (
    feature_names_from_metadata,
    row_event_id,
    row_event_ids,
)
from driftline_sidecar.payloads._requests import parse_request
from driftline_sidecar.payloads._responses import parse_response
from driftline_sidecar.payloads._routes import route

__all__ = [
    "MAX_ROW_FEATURES",
    "PAYLOAD_REASONS",
    "PROTOCOLS",
    "Inputs",
    "Outputs",
    "PayloadError",
    "PayloadReason",
    "Protocol",
    "Route",
    "RouteKind",
    "Row",
    "feature_names_from_metadata",
    "parse_request",
    "parse_response",
    "route",
    "row_event_id",
    "row_event_ids",
]
