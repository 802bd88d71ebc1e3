"""driftline_sidecar.payloads on the shapes the model servers really send and answer.

The bodies are written after the protocols' documentation (TF Serving's REST API page, KServe's
v1 and Open Inference Protocol pages, MLflow's scoring server, Seldon Core v1's prediction
protobuf) and after what MLServer 1.7.1 and kserve 0.21.0 answered when run
(/work/shared/notes/performance-and-servers.md, section 3).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from driftline_sidecar.payloads import (
    MAX_ROW_FEATURES,
    PAYLOAD_REASONS,
    PROTOCOLS,
    Inputs,
    Outputs,
    PayloadError,
    Route,
    feature_names_from_metadata,
    parse_request,
    parse_response,
    route,
    row_event_id,
)


# -- routes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "expected"), [
    ("POST", "/v1/models/iris:predict", Route("v1", "iris", None, "infer")),
    ("post", "/v1/models/iris/versions/3:predict", Route("v1", "iris", "3", "infer")),
    ("POST", "/v1/models/iris/labels/stable:predict", Route("v1", "iris", "stable", "infer")),
    ("POST", "/v1/models/iris:predict?debug=1", Route("v1", "iris", None, "infer")),
    ("POST", "/v1/models/iris:classify", Route("v1", "iris", None, "classify")),
    ("POST", "/v1/models/iris:explain", Route("v1", "iris", None, "explain")),
    ("GET", "/v1/models/iris/metadata", Route("v1", "iris", None, "metadata")),
    ("GET", "/v1/models/iris/versions/2/metadata", Route("v1", "iris", "2", "metadata")),
    ("GET", "/v1/models/iris", Route("v1", "iris", None, "status")),
    ("POST", "/v2/models/iris/infer", Route("v2", "iris", None, "infer")),
    ("POST", "/v2/models/iris/versions/v1/infer", Route("v2", "iris", "v1", "infer")),
    ("POST", "/v2/models/my%20model/infer", Route("v2", "my model", None, "infer")),
    ("GET", "/v2/models/iris", Route("v2", "iris", None, "metadata")),
    ("GET", "/v2/models/iris/versions/v1", Route("v2", "iris", "v1", "metadata")),
    ("GET", "/v2/models/iris/ready", Route("v2", "iris", None, "ready")),
    ("GET", "/v2/health/ready", Route("v2", None, None, "health")),
    ("GET", "/v2", Route("v2", None, None, "server_metadata")),
    ("POST", "/invocations", Route("mlflow", None, None, "infer")),
    ("GET", "/ping", Route("mlflow", None, None, "health")),
    ("POST", "/api/v1.0/predictions", Route("seldon", None, None, "infer")),
    ("POST", "/seldon/prod/income/api/v1.0/predictions", Route("seldon", "income", None, "infer")),
    ("POST", "/seldon/prod/income/api/v1.0/feedback", Route("seldon", "income", None, "feedback")),
])
def test_route_names_protocol_model_version_and_kind(method: str, path: str,
                                                      expected: Route) -> None:
    assert route(method, path) == expected


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/models/iris:predict"),      # inference is POST only
    ("PUT", "/v2/models/iris/infer"),
    ("GET", "/invocations"),
    ("POST", "/v2/models/iris"),
    ("POST", "/v3/models/iris/infer"),
    ("POST", "/v2/models/iris/infer/extra"),
    ("POST", "/v1/models/:predict"),
    ("GET", "/metrics"),
])
def test_route_is_none_for_anything_else(method: str, path: str) -> None:
    assert route(method, path) is None


# -- v1: TF Serving and KServe v1 requests ---------------------------------------------------
def test_v1_row_format_values_get_positional_names() -> None:
    # KServe's v1 example: {"instances": [[1, 2], [3, 4]]}
    inputs = parse_request("v1", {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]})
    assert inputs == Inputs([{"x0": 6.8, "x1": 2.8, "x2": 4.8, "x3": 1.4},
                             {"x0": 6.0, "x1": 3.4, "x2": 4.5, "x3": 1.6}])


def test_v1_row_format_values_take_given_feature_names() -> None:
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    rows = parse_request("v1", b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}', feature_names=names).rows
    assert rows == [dict(zip(names, [6.8, 2.8, 4.8, 1.4], strict=True))]


def test_v1_feature_names_of_the_wrong_length_fall_back_to_positions() -> None:
    rows = parse_request("v1", {"instances": [[1, 2, 3]]}, feature_names=["a", "b"]).rows
    assert rows == [{"x0": 1, "x1": 2, "x2": 3}]


def test_v1_row_format_objects_tf_serving_docs_shape() -> None:
    # TF Serving's api_rest.md: named inputs per instance, a list input and binary values.
    body = {
        "signature_name": "serving_default",
        "instances": [
            {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
            {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]},
        ],
    }
    rows = parse_request("v1", body).rows
    assert rows[0] == {"tag": "foo", "signal_0": 1, "signal_1": 2, "signal_2": 3, "signal_3": 4,
                       "signal_4": 5, "sensor_0": 1, "sensor_1": 2, "sensor_2": 3, "sensor_3": 4}
    assert rows[1]["tag"] == "bar"
    assert rows[1]["sensor_3"] == 8


def test_v1_unnamed_columns_of_row_objects_take_feature_names() -> None:
    body = {"instances": [{"tag": "foo", "signal": [1, 2]}]}
    rows = parse_request("v1", body, feature_names=["low", "high"]).rows
    assert rows == [{"tag": "foo", "low": 1, "high": 2}]


def test_v1_binary_values_stay_base64_text() -> None:
    body = {"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}
    assert parse_request("v1", body).rows == [{"x0": "aGVsbG8="}, {"x0": "d29ybGQ="}]
    named = {"instances": [{"image": {"b64": "aGVsbG8="}, "id": 7}]}
    assert parse_request("v1", named).rows == [{"image": "aGVsbG8=", "id": 7}]


def test_v1_scalar_instances_are_one_column_rows() -> None:
    assert parse_request("v1", {"instances": [1.5, 2.5]}, feature_names=["amount"]).rows == [
        {"amount": 1.5}, {"amount": 2.5}]


def test_v1_columnar_dict_tf_serving_docs_shape() -> None:
    body = {"inputs": {"tag": ["foo", "bar"], "signal": [[1, 2, 3], [3, 4, 1]]}}
    assert parse_request("v1", body).rows == [
        {"tag": "foo", "signal_0": 1, "signal_1": 2, "signal_2": 3},
        {"tag": "bar", "signal_0": 3, "signal_1": 4, "signal_2": 1},
    ]


def test_v1_columnar_value_without_batch_dimension_is_shared_by_every_row() -> None:
    body = {"inputs": {"threshold": 0.5, "amount": [10, 20]}}
    assert parse_request("v1", body).rows == [{"threshold": 0.5, "amount": 10},
                                              {"threshold": 0.5, "amount": 20}]


def test_v1_columnar_list_is_rows_along_the_first_dimension() -> None:
    # KServe's get_predict_input treats "inputs" as rows, TF Serving as one tensor: same rows.
    assert parse_request("v1", {"inputs": [[1, 2], [3, 4]]}).rows == [
        {"x0": 1, "x1": 2}, {"x0": 3, "x1": 4}]


def test_v1_request_id_from_body() -> None:
    assert parse_request("v1", {"id": "r-9", "instances": [[1]]}).request_id == "r-9"


def test_v1_lenient_json_keeps_non_finite_numbers() -> None:
    rows = parse_request("v1", b'{"instances": [[NaN, Infinity, 1]]}').rows
    assert rows[0]["x0"] != rows[0]["x0"]
    assert rows[0]["x1"] == float("inf")


@pytest.mark.parametrize(("body", "reason"), [
    ({"signature_name": "x"}, "missing_inputs"),
    ({"instances": [[1]], "inputs": [[1]]}, "ambiguous_inputs"),
    ({"instances": {"a": 1}}, "wrong_type"),
    ([[1, 2]], "not_an_object"),
    ({"instances": [{"a": {"nested": 1}}]}, "unsupported_value"),
    ({"inputs": {"a": [1, 2], "b": [1, 2, 3]}}, "shape_mismatch"),
    ({"instances": [list(range(MAX_ROW_FEATURES + 1))]}, "too_many_features"),
    (b"\xff\xfe", "invalid_json"),
    (b"instances=1", "invalid_json"),
])
def test_v1_malformed_requests_raise_with_a_reason(body: Any, reason: str) -> None:
    with pytest.raises(PayloadError, match=r"\w") as caught:
        parse_request("v1", body)
    assert caught.value.reason == reason
    assert reason in PAYLOAD_REASONS


# -- v1 responses ------------------------------------------------------------------------------
def test_v1_predictions_one_per_row() -> None:
    # kserve 0.21.0 answered {"instances": [[1,2],[3,4]]} with {"predictions": [[2,4],[6,8]]}.
    assert parse_response("v1", b'{"predictions": [[2, 4], [6, 8]]}', n_rows=2) == Outputs(
        [[2, 4], [6, 8]])
    assert parse_response("v1", {"predictions": [1, 0, 2]}, n_rows=3).predictions == [1, 0, 2]


def test_v1_single_value_lists_unwrap_to_scalars() -> None:
    assert parse_response("v1", {"predictions": [[0.7], [0.1]]}).predictions == [0.7, 0.1]


def test_v1_named_outputs_per_row_become_dicts() -> None:
    body = {"predictions": [{"label": "cat", "scores": [0.9, 0.1]},
                            {"label": "dog", "scores": [0.2, 0.8]}]}
    assert parse_response("v1", body).predictions == [{"label": "cat", "scores": [0.9, 0.1]},
                                                      {"label": "dog", "scores": [0.2, 0.8]}]
    single = {"predictions": [{"probabilities": [0.9, 0.1]}]}
    assert parse_response("v1", single).predictions == [[0.9, 0.1]]


def test_v1_columnar_outputs() -> None:
    body = {"outputs": {"label": ["cat", "dog"], "score": [[0.9], [0.8]]}}
    assert parse_response("v1", body).predictions == [{"label": "cat", "score": 0.9},
                                                      {"label": "dog", "score": 0.8}]
    assert parse_response("v1", {"outputs": [[0.1, 0.9]]}).predictions == [[0.1, 0.9]]


def test_v1_one_row_answered_with_a_flat_list_is_one_prediction() -> None:
    assert parse_response("v1", {"predictions": [0.2, 0.8]}, n_rows=1).predictions == [[0.2, 0.8]]


def test_v1_error_and_row_count_mismatch() -> None:
    with pytest.raises(PayloadError, match="error") as caught:
        parse_response("v1", {"error": "Missing 'inputs' or 'instances' key"})
    assert caught.value.reason == "error_response"
    with pytest.raises(PayloadError, match="3 predictions for 2 rows") as caught:
        parse_response("v1", {"predictions": [1, 2, 3]}, n_rows=2)
    assert caught.value.reason == "row_count_mismatch"


# -- v2: the Open Inference Protocol -------------------------------------------------------------
MLSERVER_REQUEST = {
    "id": "req-1",
    "inputs": [{"name": "predict", "shape": [2, 4], "datatype": "FP32",
                "data": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}],
}
MLSERVER_RESPONSE = (b'{"model_name":"iris","model_version":"v1","id":"req-1","parameters":{},'
                     b'"outputs":[{"name":"predict","shape":[2,1],"datatype":"INT64",'
                     b'"parameters":{"content_type":"np"},"data":[0,2]}]}')


def test_v2_multi_column_tensor_positional_names_and_id() -> None:
    inputs = parse_request("v2", json.dumps(MLSERVER_REQUEST))
    assert inputs.request_id == "req-1"
    assert inputs.rows == [
        {"predict_0": 6.8, "predict_1": 2.8, "predict_2": 4.8, "predict_3": 1.4},
        {"predict_0": 6.0, "predict_1": 3.4, "predict_2": 4.5, "predict_3": 1.6},
    ]


def test_v2_flat_and_nested_data_give_the_same_rows() -> None:
    flat = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64", "data": [1, 2, 3, 4]}]}
    nested = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "INT64",
                          "data": [[1, 2], [3, 4]]}]}
    assert parse_request("v2", flat).rows == parse_request("v2", nested).rows


def test_v2_one_column_tensors_are_named_by_the_tensor() -> None:
    # MLServer's pandas codec: one tensor per column, shape [n, 1] or [n].
    body = {"parameters": {"content_type": "pd"}, "inputs": [
        {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [31, 45]},
        {"name": "country", "shape": [2], "datatype": "BYTES", "data": ["FR", "DE"],
         "parameters": {"content_type": "str"}},
        {"name": "member", "shape": [2, 1], "datatype": "BOOL", "data": [True, False]},
    ]}
    assert parse_request("v2", body).rows == [
        {"age": 31, "country": "FR", "member": True},
        {"age": 45, "country": "DE", "member": False},
    ]


def test_v2_feature_names_fill_the_unnamed_columns_only() -> None:
    body = {"inputs": [
        {"name": "segment", "shape": [1, 1], "datatype": "BYTES", "data": ["gold"]},
        {"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]},
    ]}
    rows = parse_request("v2", body, feature_names=["a", "b", "c"]).rows
    assert rows == [{"segment": "gold", "a": 1.0, "b": 2.0, "c": 3.0}]


def test_v2_higher_rank_rows_flatten_row_major() -> None:
    body = {"inputs": [{"name": "img", "shape": [1, 2, 2], "datatype": "UINT8",
                        "data": [[[1, 2], [3, 4]]]}]}
    assert parse_request("v2", body).rows == [{"img_0": 1, "img_1": 2, "img_2": 3, "img_3": 4}]


def test_v2_model_and_version_when_the_body_names_them() -> None:
    # Seldon Core v2's Kafka messages carry ModelInferRequest's model_name and model_version.
    body = dict(MLSERVER_REQUEST, model_name="iris", model_version="3")
    inputs = parse_request("v2", body)
    assert (inputs.model, inputs.version) == ("iris", "3")


@pytest.mark.parametrize(("body", "reason"), [
    ({"inputs": []}, "missing_inputs"),
    ({"id": "x"}, "missing_inputs"),
    ({"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]},
     "shape_mismatch"),
    ({"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]},
                 {"name": "b", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]},
     "shape_mismatch"),
    ({"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}, "wrong_type"),
    ({"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}, "wrong_type"),
    ({"inputs": [{"name": "x", "shape": "2", "datatype": "FP32", "data": [1, 2]}]}, "wrong_type"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                  "parameters": {"binary_data_size": 16}}]}, "missing_inputs"),
    ({"inputs": [{"name": "x", "shape": [1, MAX_ROW_FEATURES + 1], "datatype": "FP32",
                  "data": [0.0] * (MAX_ROW_FEATURES + 1)}]}, "too_many_features"),
    ({"inputs": ["x"]}, "not_an_object"),
])
def test_v2_malformed_requests_raise_with_a_reason(body: Any, reason: str) -> None:
    with pytest.raises(PayloadError, match=r"\w") as caught:
        parse_request("v2", body)
    assert caught.value.reason == reason


def test_v2_response_mlserver_shape() -> None:
    outputs = parse_response("v2", MLSERVER_RESPONSE, n_rows=2)
    assert outputs == Outputs([0, 2], "req-1", "iris", "v1")


def test_v2_response_predict_proba_rows_are_class_score_lists() -> None:
    body = {"model_name": "iris", "outputs": [
        {"name": "predict_proba", "shape": [2, 3], "datatype": "FP64",
         "data": [0.9, 0.05, 0.05, 0.1, 0.2, 0.7]}]}
    assert parse_response("v2", body).predictions == [[0.9, 0.05, 0.05], [0.1, 0.2, 0.7]]


def test_v2_response_several_outputs_become_dicts() -> None:
    body = {"outputs": [
        {"name": "predict", "shape": [2, 1], "datatype": "INT64", "data": [0, 2]},
        {"name": "predict_proba", "shape": [2, 2], "datatype": "FP64",
         "data": [0.8, 0.2, 0.3, 0.7]},
    ]}
    assert parse_response("v2", body).predictions == [
        {"predict": 0, "predict_proba": [0.8, 0.2]},
        {"predict": 2, "predict_proba": [0.3, 0.7]},
    ]


def test_v2_error_response() -> None:
    with pytest.raises(PayloadError, match="error") as caught:
        parse_response("v2", {"error": "Model iris not found"})
    assert caught.value.reason == "error_response"


# -- MLflow /invocations -----------------------------------------------------------------------
def test_mlflow_dataframe_split() -> None:
    body = {"dataframe_split": {"index": [0, 1], "columns": ["age", "income"],
                                "data": [[31, 5200.0], [45, 7100.5]]}}
    assert parse_request("mlflow", body).rows == [{"age": 31, "income": 5200.0},
                                                  {"age": 45, "income": 7100.5}]


def test_mlflow_dataframe_split_without_columns_uses_feature_names() -> None:
    body = {"dataframe_split": {"data": [[1, 2]]}}
    assert parse_request("mlflow", body, feature_names=["a", "b"]).rows == [{"a": 1, "b": 2}]
    assert parse_request("mlflow", body).rows == [{"x0": 1, "x1": 2}]


def test_mlflow_dataframe_records_instances_and_inputs() -> None:
    records = {"dataframe_records": [{"age": 31, "income": 5200.0}, {"age": 45, "income": None}]}
    assert parse_request("mlflow", records).rows == [{"age": 31, "income": 5200.0},
                                                     {"age": 45, "income": None}]
    instances = {"instances": [{"age": 31}, {"age": 45}], "params": {"top_k": 2}}
    assert parse_request("mlflow", instances).rows == [{"age": 31}, {"age": 45}]
    columnar = {"inputs": {"age": [31, 45], "income": [1.0, 2.0]}}
    assert parse_request("mlflow", columnar).rows == [{"age": 31, "income": 1.0},
                                                      {"age": 45, "income": 2.0}]


@pytest.mark.parametrize(("body", "reason"), [
    ([{"age": 1}], "not_an_object"),          # MLflow 2 refuses a top-level list too
    ({"messages": [{"role": "user", "content": "hi"}]}, "missing_inputs"),
    ({"dataframe_split": {"columns": ["a"], "data": [[1]]}, "instances": [[1]]},
     "ambiguous_inputs"),
    ({"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}, "shape_mismatch"),
    ({"dataframe_split": {"columns": ["a"]}}, "missing_inputs"),
    ({"dataframe_records": [[1, 2]]}, "wrong_type"),
    (b"age,income\n31,5200\n", "invalid_json"),
])
def test_mlflow_malformed_requests_raise_with_a_reason(body: Any, reason: str) -> None:
    with pytest.raises(PayloadError, match=r"\w") as caught:
        parse_request("mlflow", body)
    assert caught.value.reason == reason


def test_mlflow_responses() -> None:
    assert parse_response("mlflow", b'{"predictions": [0, 1, 1]}', n_rows=3).predictions == [
        0, 1, 1]
    records = {"predictions": [{"label": 0, "score": 0.2}, {"label": 1, "score": 0.9}]}
    assert parse_response("mlflow", records).predictions == [{"label": 0, "score": 0.2},
                                                             {"label": 1, "score": 0.9}]
    assert parse_response("mlflow", [0.5, 0.7]).predictions == [0.5, 0.7]  # MLflow 1.x
    with pytest.raises(PayloadError, match="error") as caught:
        parse_response("mlflow", {"error_code": "BAD_REQUEST", "message": "..."})
    assert caught.value.reason == "error_response"


# -- Seldon Core v1 ----------------------------------------------------------------------------
def test_seldon_ndarray_with_names_and_puid() -> None:
    body = {"meta": {"puid": "p-1", "requestPath": {"income-classifier": "seldonio/x:1.0"}},
            "data": {"names": ["age", "hours"], "ndarray": [[39, 40], [50, 13]]}}
    inputs = parse_request("seldon", body)
    assert inputs == Inputs([{"age": 39, "hours": 40}, {"age": 50, "hours": 13}], "p-1",
                            "income-classifier")


def test_seldon_tensor_and_one_dimensional_ndarray() -> None:
    tensor = {"data": {"names": ["a", "b"], "tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}}
    assert parse_request("seldon", tensor).rows == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    one_d = {"data": {"ndarray": [5.1, 3.5, 1.4, 0.2]}}
    assert parse_request("seldon", one_d).rows == [{"x0": 5.1, "x1": 3.5, "x2": 1.4, "x3": 0.2}]
    flat_tensor = {"data": {"tensor": {"shape": [1, 2], "values": [1, 2]}}}
    assert parse_request("seldon", flat_tensor, feature_names=["u", "v"]).rows == [
        {"u": 1, "v": 2}]


def test_seldon_string_columns() -> None:
    body = {"data": {"names": ["text"], "ndarray": [["hello"], ["world"]]}}
    assert parse_request("seldon", body).rows == [{"text": "hello"}, {"text": "world"}]


@pytest.mark.parametrize(("body", "reason"), [
    ({"jsonData": {"a": 1}}, "no_features"),
    ({"strData": "hello"}, "no_features"),
    ({"binData": "aGVsbG8="}, "no_features"),
    ({"data": {"tftensor": {}}}, "no_features"),
    ({"meta": {}}, "missing_inputs"),
    ({"data": {"names": ["a"]}}, "missing_inputs"),
    ({"data": {"names": "a", "ndarray": [[1]]}}, "wrong_type"),
    ({"data": {"tensor": {"shape": [2, 2], "values": [1, 2]}}}, "shape_mismatch"),
])
def test_seldon_malformed_requests_raise_with_a_reason(body: Any, reason: str) -> None:
    with pytest.raises(PayloadError, match=r"\w") as caught:
        parse_request("seldon", body)
    assert caught.value.reason == reason


def test_seldon_responses() -> None:
    body = {"meta": {"puid": "p-1"},
            "data": {"names": ["t:0", "t:1"], "ndarray": [[0.8, 0.2], [0.3, 0.7]]}}
    assert parse_response("seldon", body, n_rows=2) == Outputs([[0.8, 0.2], [0.3, 0.7]], "p-1")
    labels = {"data": {"names": ["label"], "ndarray": [[1], [0]]}}
    assert parse_response("seldon", labels).predictions == [1, 0]
    one_d = {"data": {"ndarray": [1, 0, 1]}}
    assert parse_response("seldon", one_d, n_rows=3).predictions == [1, 0, 1]
    tensor = {"data": {"tensor": {"shape": [2, 1], "values": [0.3, 0.6]}}}
    assert parse_response("seldon", tensor).predictions == [0.3, 0.6]


def test_seldon_feedback_truth_parses_as_a_response() -> None:
    # A Seldon feedback's "truth" is a SeldonMessage: its rows are the labels.
    feedback = {"request": {"data": {"ndarray": [[1, 2]]}},
                "truth": {"data": {"ndarray": [[1]]}}, "reward": 1}
    assert parse_response("seldon", feedback["truth"], n_rows=1).predictions == [1]


# -- the contract ------------------------------------------------------------------------------
def test_unknown_protocol() -> None:
    for parse in (parse_request, parse_response):
        with pytest.raises(PayloadError, match="protocol must be one of") as caught:
            parse("grpc", {})  # type: ignore[operator]
        assert caught.value.reason == "unknown_protocol"
    assert PROTOCOLS == ("v1", "v2", "mlflow", "seldon")


def test_payload_error_is_a_value_error() -> None:
    assert issubclass(PayloadError, ValueError)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(PayloadError, match=r"\w") as caught:
        parse_request("v2", '{"inputs": [{"name": "x", "shape": [0], "data": ' + deep + "}]}")
    assert caught.value.reason in {"invalid_json", "shape_mismatch"}


# -- event ids and metadata --------------------------------------------------------------------
def test_row_event_id_is_deterministic_per_model_request_and_row() -> None:
    ids = {row_event_id(model, request, row)
           for model in ("iris", "fraud") for request in ("r1", "r2") for row in range(3)}
    assert len(ids) == 12
    assert row_event_id("iris", "r1", 2) == row_event_id("iris", "r1", 2)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_v2_metadata_mlserver_declared_inputs() -> None:
    body = {"name": "income", "versions": [], "platform": "", "inputs": [
        {"name": "age", "datatype": "INT64", "shape": [-1, 1]},
        {"name": "hours", "datatype": "FP64", "shape": [-1]},
    ], "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]}],
        "parameters": {"content_type": "pd"}}
    assert feature_names_from_metadata("v2", json.dumps(body)) == ["age", "hours"]


@pytest.mark.parametrize("body", [
    {"name": "iris", "versions": [], "platform": "", "inputs": [], "outputs": []},
    {"name": "iris"},
    {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]},
    {"inputs": [{"datatype": "FP64", "shape": [-1, 1]}]},
    {"error": "Model iris not found"},
    ["age"],
])
def test_v2_metadata_without_column_names(body: Any) -> None:
    assert feature_names_from_metadata("v2", body) is None


def _tf_input(*sizes: str) -> dict[str, Any]:
    return {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": s, "name": ""} for s in sizes],
                                                  "unknown_rank": False}}


def test_v1_metadata_tf_serving_signature_inputs() -> None:
    # The shape of TF Serving's GetModelMetadataResponse as JSON.
    body = {"model_spec": {"name": "income", "signature_name": "", "version": "1"},
            "metadata": {"signature_def": {"signature_def": {
                "serving_default": {"inputs": {"age": _tf_input("-1", "1"),
                                               "hours": _tf_input("-1")},
                                    "outputs": {}, "method_name": "tensorflow/serving/predict"},
                "__saved_model_init_op": {"inputs": {}, "outputs": {}, "method_name": ""}}}}}
    assert feature_names_from_metadata("v1", body) == ["age", "hours"]
    wide = json.loads(json.dumps(body))
    wide["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"] = {
        "x": _tf_input("-1", "4")}
    assert feature_names_from_metadata("v1", wide) is None
    assert feature_names_from_metadata("v1", {"name": "iris", "ready": True}) is None
    assert feature_names_from_metadata("mlflow", body) is None


def test_row_event_id_is_a_version_5_uuid_of_model_request_and_row() -> None:
    import uuid

    namespace = uuid.UUID("4c3f7c1e-9a51-5d0e-8f51-6a1d0e5b7d21")
    assert row_event_id("iris", "req-1", 3) == uuid.uuid5(namespace, "iris\x1freq-1\x1f3").hex
