"""KServe's and Seldon Core v1's logger messages: HTTP CloudEvents, Kafka records, events.

Shapes as the loggers send them: KServe pkg/logger/worker.go (CloudEvents 1.0 binary mode,
one `ce-id` for a request and its response; the docs' sklearn-iris sample bodies) and Seldon
Core executor/logger/worker.go (a new `ce-id` per message, the inference's `requestid`, the
Kafka logger's headers `type`, `content-type`, `modelid`, `requestid`, ...; the iris
SeldonDeployment's bodies and a feedback with a one-hot `truth` from Seldon's examples).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from collector.config_sources import CloudEventsSource, SeldonKafkaLoggerSource
from collector.errors import EventDecodeError
from collector.events import LabelEvent, PredictionEvent
from collector.sources.base import Part
from collector.sources.cloudevents import CloudEventError, parse_http
from collector.sources.convert import PartError, SourceContext, label_value
from collector.sources.logger import LoggerDecoder, decoder_for, parse_time, sniff_protocol

KSERVE_ID = "0009174a-24a8-4603-b098-09c8799950e9"
KSERVE_HEADERS = {
    "ce-specversion": "1.0",
    "ce-id": KSERVE_ID,
    "ce-source": "http://localhost:9081/",
    "ce-time": "2021-04-10T00:23:26.0789529Z",
    "ce-inferenceservicename": "sklearn-iris",
    "ce-namespace": "default",
    "ce-component": "predictor",
    "ce-endpoint": "",
    "ce-metadata": "{}",
    "content-type": "application/json",
}
KSERVE_REQUEST = b'{"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}'
KSERVE_RESPONSE = b'{"predictions": [1, 1]}'
PUID = "2cfe7cb7-9467-467e-b9ea-1361042c3d60"
SELDON_KAFKA_HEADERS = [
    ("content-type", b"application/json"), ("modelid", b"classifier"),
    ("requestid", PUID.encode()), ("inferenceservicename", b"sklearn"),
    ("namespace", b"seldon"), ("endpoint", b"default"), ("protocol", b"seldon"),
]
SELDON_REQUEST = {"data": {"names": ["sepal_length", "sepal_width", "petal_length",
                                     "petal_width"], "ndarray": [[5.1, 3.5, 1.4, 0.2]]}}
SELDON_RESPONSE = {"data": {"names": ["t:0", "t:1", "t:2"],
                            "ndarray": [[0.0006985, 0.0036680, 0.9956334]]},
                   "meta": {"puid": PUID, "requestPath": {"classifier": "seldonio/sklearnserver"}}}
SELDON_FEEDBACK = {"reward": 0, "truth": {"data": {"names": ["t:0", "t:1", "t:2"],
                                                   "ndarray": [[0, 0, 1]]},
                                          "meta": {"tags": {"user": "Seldon Admin"}}}}


def _record(value: bytes | None, headers: list[tuple[str, bytes]], *, offset: int = 0,
            timestamp: int = 1_795_999_009_010, topic: str = "raw") -> Any:
    return ConsumerRecord(topic, 0, -1, offset, timestamp, 0, None, value, headers, None,
                          -1, -1, -1)


def _from_http(headers: dict[str, str], body: bytes) -> Any:
    event = parse_http(headers, body)[0]
    return _record(event.value, event.headers)


def _kserve(kind: str, body: bytes) -> dict[str, str]:
    return {**KSERVE_HEADERS, "ce-type": f"org.kubeflow.serving.inference.{kind}"}


def _seldon(kind: str) -> list[tuple[str, bytes]]:
    return [("type", f"io.seldon.serving.{kind}".encode()), *SELDON_KAFKA_HEADERS]


# -- HTTP CloudEvents --------------------------------------------------------------------------
def test_binary_mode_keeps_the_body_and_every_attribute() -> None:
    event = parse_http(_kserve("request", KSERVE_REQUEST), KSERVE_REQUEST)[0]
    headers = dict(event.headers)
    assert event.value == KSERVE_REQUEST
    assert event.key == KSERVE_ID.encode()
    assert headers["type"] == b"org.kubeflow.serving.inference.request"
    assert headers["inferenceservicename"] == b"sklearn-iris"
    assert headers["content-type"] == b"application/json"
    assert headers["time"] == b"2021-04-10T00:23:26.0789529Z"


def test_seldon_http_events_are_keyed_by_requestid() -> None:
    headers = {"ce-id": "4a1f", "ce-type": "io.seldon.serving.inference.request",
               "ce-source": "http://0.0.0.0:8000/", "ce-specversion": "1.0",
               "ce-requestid": PUID, "ce-modelid": "classifier", "content-type": "application/json"}
    assert parse_http(headers, b"{}")[0].key == PUID.encode()


def test_structured_and_batched_modes() -> None:
    structured = {"specversion": "1.0", "id": "e1", "source": "s", "time": "2026-11-30T00:00:00Z",
                  "type": "org.kubeflow.serving.inference.response",
                  "inferenceservicename": "iris", "datacontenttype": "application/json",
                  "data": {"predictions": [2]}}
    event = parse_http({"Content-Type": "application/cloudevents+json; charset=utf-8"},
                       json.dumps(structured).encode())[0]
    assert json.loads(event.value) == {"predictions": [2]}
    assert dict(event.headers)["content-type"] == b"application/json"
    base64_event = {**structured, "id": "e2"}
    del base64_event["data"]
    base64_event["data_base64"] = "eyJwcmVkaWN0aW9ucyI6IFszXX0="  # {"predictions": [3]}
    batch = parse_http({"content-type": "application/cloudevents-batch+json"},
                       json.dumps([structured, base64_event]).encode())
    assert [e.key for e in batch] == [b"e1", b"e2"]
    assert json.loads(batch[1].value) == {"predictions": [3]}


@pytest.mark.parametrize(("headers", "body", "match"), [
    ({"ce-type": "org.kubeflow.serving.inference.request"}, b"{}", "no 'id'"),
    ({"ce-id": "x"}, b"{}", "no 'type'"),
    ({"ce-id": "x", "ce-type": "io.seldon.serving.inference.outlier"}, b"{}", "not one driftline"),
    ({"content-type": "application/cloudevents+json"}, b"{", "not valid JSON"),
    ({"content-type": "application/cloudevents-batch+json"}, b"{}", "JSON array"),
    ({"content-type": "application/cloudevents+json"}, b'{"id": "x", "type": '
     b'"org.kubeflow.serving.inference.request", "data_base64": "%%"}', "not base64"),
])
def test_what_is_not_an_acceptable_cloudevent_is_refused(headers: dict[str, str], body: bytes,
                                                         match: str) -> None:
    with pytest.raises(CloudEventError, match=match) as caught:
        parse_http(headers, body)
    assert caught.value.status == 400


# -- decoding ----------------------------------------------------------------------------------
def test_kserve_request_and_response_share_one_key() -> None:
    decoder = LoggerDecoder("kserve", ["raw"])
    request = decoder.decode(_from_http(_kserve("request", KSERVE_REQUEST), KSERVE_REQUEST))[0]
    response = decoder.decode(_from_http(_kserve("response", KSERVE_RESPONSE),
                                         KSERVE_RESPONSE))[0]
    assert request.key == response.key
    assert (request.role, response.role) == ("request", "response")
    assert (request.protocol, response.protocol) == ("v1", "v1")
    assert request.model == "sklearn-iris"
    assert request.request_id == KSERVE_ID
    assert request.tags == {}  # ce-endpoint is empty when no canary is configured
    assert request.at == datetime(2021, 4, 10, 0, 23, 26, 78952, tzinfo=UTC)


def test_kserve_metadata_x_request_id_is_the_stored_request_id() -> None:
    headers = {**_kserve("request", KSERVE_REQUEST),
               "ce-metadata": '{"X-Request-Id":["order-81"]}'}
    part = LoggerDecoder("kserve").decode(_from_http(headers, KSERVE_REQUEST))[0]
    assert part.request_id == "order-81"
    assert KSERVE_ID in part.key


def test_seldon_kafka_logger_message() -> None:
    decoder = decoder_for(SeldonKafkaLoggerSource(name="seldon", kind="seldon_kafka_logger",
                                                  topics=["seldon-logs"]))
    assert decoder.topics() == ["seldon-logs"]
    record = _record(json.dumps(SELDON_REQUEST).encode(), _seldon("inference.request"))
    part = decoder.decode(record)[0]
    assert (part.role, part.protocol, part.model, part.request_id) == (
        "request", "seldon", "sklearn", PUID)
    assert part.tags == {"endpoint": "default"}
    assert part.at == datetime.fromtimestamp(1_795_999_009.010, tz=UTC)  # the record's time
    feedback = decoder.decode(_record(json.dumps(SELDON_FEEDBACK).encode(),
                                      _seldon("feedback")))[0]
    assert feedback.role == "feedback"
    assert feedback.request_id == PUID


@pytest.mark.parametrize(("protocol", "expected"), [("tensorflow", "v1"), ("kfserving", "v2"),
                                                    ("seldon", "seldon")])
def test_seldon_protocol_extension_names_the_payload_protocol(protocol: str,
                                                              expected: str) -> None:
    headers = [(k, protocol.encode() if k == "protocol" else v) for k, v in
               _seldon("inference.request")]
    assert LoggerDecoder("s").decode(_record(b"{}", headers))[0].protocol == expected


@pytest.mark.parametrize(("headers", "value", "reason"), [
    ([("requestid", b"r")], b"{}", "missing_field"),
    ([("type", b"io.seldon.serving.inference.outlier"), ("requestid", b"r")], b"{}",
     "invalid_value"),
    ([("type", b"io.seldon.serving.inference.request")], b"{}", "missing_field"),
    ([("type", b"io.seldon.serving.inference.request"), ("requestid", b"r")], b"{x",
     "invalid_json"),
    ([("type", b"io.seldon.serving.inference.request"), ("requestid", b"r")], None,
     "missing_field"),
    ([("type", b"io.seldon.serving.inference.request"), ("requestid", b"r"),
      ("content-type", b"application/protobuf")], b"\x0a\x01", "unsupported_content_type"),
    ([("type", b"\xff"), ("requestid", b"r")], b"{}", "invalid_utf8"),
])
def test_bad_messages_raise_with_a_reason(headers: list[tuple[str, bytes]], value: bytes | None,
                                          reason: str) -> None:
    with pytest.raises(EventDecodeError) as caught:
        LoggerDecoder("s").decode(_record(value, headers))
    assert caught.value.reason == reason


def test_protocol_is_sniffed_from_the_body() -> None:
    v2 = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                      "data": [6.8, 2.8, 4.8, 1.4]}]}
    assert sniff_protocol(v2, "request") == "v2"
    assert sniff_protocol({"outputs": [{"name": "o", "data": [1], "shape": [1],
                                        "datatype": "INT64"}]}, "response") == "v2"
    assert sniff_protocol({"instances": [[1]]}, "request") == "v1"
    assert sniff_protocol({"strData": "x"}, "request") == "seldon"
    assert sniff_protocol({"dataframe_split": {}}, "request") == "mlflow"


def test_go_times_with_nanoseconds_parse() -> None:
    assert parse_time("2020-07-14T19:51:55.897123716Z") == datetime(
        2020, 7, 14, 19, 51, 55, 897123, tzinfo=UTC)
    assert parse_time("2020-07-14T19:51:55+02:00") == datetime(2020, 7, 14, 17, 51, 55,
                                                                tzinfo=UTC)
    assert parse_time("yesterday") is None


# -- events ------------------------------------------------------------------------------------
def _context(**settings: Any) -> SourceContext:
    source = CloudEventsSource(name="kserve", kind="cloudevents", **settings)
    return SourceContext(source, {"iris": ["sepal_length", "sepal_width", "petal_length",
                                           "petal_width"]})


def _parts() -> tuple[Part, Part]:
    decoder = LoggerDecoder("kserve")
    return (decoder.decode(_from_http(_kserve("request", KSERVE_REQUEST), KSERVE_REQUEST))[0],
            decoder.decode(_from_http(_kserve("response", KSERVE_RESPONSE), KSERVE_RESPONSE))[0])


def test_a_batch_gives_one_prediction_per_row_with_row_request_ids() -> None:
    request, response = _parts()
    events = _context(models={"sklearn-iris": "iris"}).predictions(request, response,
                                                                  fallback_at=None)
    assert [e.request_id for e in events] == [f"{KSERVE_ID}:0", f"{KSERVE_ID}:1"]
    assert [e.model for e in events] == ["iris", "iris"]
    assert dict(events[0].features) == {"sepal_length": 6.8, "sepal_width": 2.8,
                                        "petal_length": 4.8, "petal_width": 1.4}
    assert [e.prediction for e in events] == [1, 1]
    assert events[0].timestamp == request.at
    assert len({e.event_id for e in events}) == 2
    again = _context(models={"sklearn-iris": "iris"}).predictions(request, response,
                                                                 fallback_at=None)
    assert [e.event_id for e in again] == [e.event_id for e in events]


def test_the_model_is_mapped_else_the_sources_else_the_servers() -> None:
    request, response = _parts()
    assert _context(model="iris").predictions(request, response, fallback_at=None)[0].model == \
        "iris"
    assert _context().predictions(request, response, fallback_at=None)[0].model == "sklearn-iris"
    nameless = Part("k", "request", "v1", {"instances": [[1]]}, None, None, None)
    with pytest.raises(PartError) as caught:
        _context().predictions(nameless, None, fallback_at=None)
    assert caught.value.reason == "missing_model"


def test_a_request_without_its_response_has_no_prediction() -> None:
    request, _ = _parts()
    events = _context().predictions(request, None, fallback_at=None)
    assert [e.prediction for e in events] == [None, None]
    assert dict(events[1].features) == {"x0": 6.0, "x1": 3.4, "x2": 4.5, "x3": 1.6}


def test_a_bad_response_names_itself() -> None:
    request, response = _parts()
    wrong = Part(response.key, "response", "v1", {"predictions": [1, 1, 1]}, "sklearn-iris",
                 None, None)
    with pytest.raises(PartError) as caught:
        _context().predictions(request, wrong, fallback_at=None)
    assert caught.value.part is wrong
    assert caught.value.reason == "row_count_mismatch"


def test_several_outputs_need_the_sources_output() -> None:
    request = Part("k", "request", "v2", {"inputs": [{"name": "x", "shape": [1, 1],
                                                      "datatype": "FP32", "data": [1.0]}]},
                   "iris", None, None)
    response = Part("k", "response", "v2", {"model_name": "iris", "model_version": "3", "outputs": [
        {"name": "predict", "shape": [1, 1], "datatype": "INT64", "data": [2]},
        {"name": "predict_proba", "shape": [1, 3], "datatype": "FP64", "data": [0.1, 0.2, 0.7]},
    ]}, "iris", None, None)
    with pytest.raises(PartError, match="several outputs") as caught:
        _context().predictions(request, response, fallback_at=None)
    assert caught.value.reason == "ambiguous_output"
    event = _context(output="predict_proba").predictions(request, response, fallback_at=None)[0]
    assert (event.prediction, event.model_version, event.request_id) == ([0.1, 0.2, 0.7], "3",
                                                                         "k")


def test_feedback_truth_becomes_labels_under_the_request_id() -> None:
    decoder = LoggerDecoder("seldon")
    feedback = decoder.decode(_record(json.dumps(SELDON_FEEDBACK).encode(),
                                      _seldon("feedback")))[0]
    context = SourceContext(SeldonKafkaLoggerSource(
        name="seldon", kind="seldon_kafka_logger", topics=["l"], models={"sklearn": "iris"}), {})
    labels = context.labels(feedback)
    assert [(e.model, e.request_id, e.label) for e in labels] == [("iris", PUID, 2)]
    assert isinstance(labels[0], LabelEvent)
    corrected = {"truth": {"data": {"ndarray": [[0, 1, 0]]}}}
    other = decoder.decode(_record(json.dumps(corrected).encode(), _seldon("feedback")))[0]
    assert context.labels(other)[0].event_id != labels[0].event_id  # the later label is kept
    assert context.labels(feedback)[0].event_id == labels[0].event_id


def test_feedback_without_truth_data_has_no_label() -> None:
    decoder = LoggerDecoder("seldon")
    context = SourceContext(SeldonKafkaLoggerSource(name="seldon", kind="seldon_kafka_logger",
                                                    topics=["l"]), {})
    for body in ({"reward": 1}, {"reward": 1, "truth": {"meta": {"tags": {}}}}):
        part = decoder.decode(_record(json.dumps(body).encode(), _seldon("feedback")))[0]
        assert context.labels(part) == []
    bad = decoder.decode(_record(json.dumps({"truth": {"data": {"ndarray": [[0.2, 0.8]]}}})
                                 .encode(), _seldon("feedback")))[0]
    with pytest.raises(PartError) as caught:
        context.labels(bad)
    assert caught.value.reason == "invalid_label"


def test_label_values() -> None:
    assert label_value([1]) == 0
    assert label_value(0.5) == 0.5
    for bad in ([1, 1], [0, 0], [[1]], {"a": 1}):
        with pytest.raises(ValueError, match="truth row"):
            label_value(bad)


def test_events_the_codec_refuses_are_refused_with_the_part() -> None:
    request = Part("k", "request", "v1", {"instances": [[float("nan")]]}, "iris", None, None)
    with pytest.raises(PartError) as caught:
        _context().predictions(request, None, fallback_at=None)
    assert caught.value.reason == "non_finite"
    assert isinstance(_context().predictions(
        Part("k", "request", "v1", {"instances": [[1.0]]}, "iris", None, None), None,
        fallback_at=None)[0], PredictionEvent)


def test_the_nodes_of_a_seldon_graph_can_map_to_different_models() -> None:
    source = SeldonKafkaLoggerSource(
        name="seldon", kind="seldon_kafka_logger", topics=["l"],
        models={"sklearn/classifier": "iris", "sklearn/transformer": "iris-input"})
    decoder = decoder_for(source)
    context = SourceContext(source, {})
    parts = []
    for node in ("classifier", "transformer"):
        headers = [(k, node.encode() if k == "modelid" else v)
                   for k, v in _seldon("inference.request")]
        parts.append(decoder.decode(_record(json.dumps(SELDON_REQUEST).encode(), headers))[0])
    assert [context.model(p) for p in parts] == ["iris", "iris-input"]
    assert parts[0].key != parts[1].key  # each node pairs its own request and response
    plain = decoder_for(SeldonKafkaLoggerSource(name="s", kind="seldon_kafka_logger",
                                                topics=["l"], models={"sklearn": "iris"}))
    part = plain.decode(_record(json.dumps(SELDON_REQUEST).encode(), _seldon("inference.request")))
    assert part[0].model == "sklearn"


def test_a_kserve_transformer_and_predictor_map_to_their_own_models() -> None:
    source = CloudEventsSource(name="kserve", kind="cloudevents", models={
        "sklearn-iris/transformer": "iris-raw", "sklearn-iris/predictor": "iris"})
    decoder, context = decoder_for(source), SourceContext(source, {})
    models = []
    for component in ("transformer", "predictor"):
        headers = {**_kserve("request", KSERVE_REQUEST), "ce-component": component}
        models.append(context.model(decoder.decode(_from_http(headers, KSERVE_REQUEST))[0]))
    assert models == ["iris-raw", "iris"]
