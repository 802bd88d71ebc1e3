"""Issue 13, item 5: the ASGI middleware logs a real FastAPI app under uvicorn to the real broker.

The same FastAPI app runs twice under uvicorn on loopback ports, once bare and once wrapped in
`PredictionLoggingMiddleware`; every request goes to both. The wrapped server's answers must be
the bare one's byte for byte (status, body, headers but for the added ``x-request-id``), a
streamed response must reach the client chunk by chunk (the handler waits for the client to
have read its first chunk before it sends the rest), and the events read back from Kafka must
hold exactly the rows and predictions served, with their request ids. With no broker at all,
every request still succeeds and every row is counted as dropped by the logger. The example of
docs/integrations.md runs as written, but for the broker's address.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from kafka import KafkaConsumer

from driftline_sidecar import PredictionEvent, PredictionLogger, decode_event
from driftline_sidecar.asgi import PredictionLoggingMiddleware

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
ADDED = "x-request-id"
VOLATILE = {"date", "server"}


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """`app` under a real uvicorn server on a loopback port, with its lifespan."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        assert not thread.is_alive(), "uvicorn did not stop"


def model_app(gate: threading.Event) -> FastAPI:
    """A small model server with the shapes the middleware meets."""
    app = FastAPI()

    @app.post("/predict")
    def predict(features: dict[str, float], request: Request) -> dict[str, Any]:
        if "amount" not in features:
            raise HTTPException(status_code=400, detail="amount is required")
        return {"prediction": round(features["amount"] / 1000, 6),
                "seen_request_id": request.headers.get("x-request-id")}

    @app.post("/batch")
    def batch(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"predictions": [[0.25, 0.75] if row["country"] == "DE" else [0.9, 0.1]
                                for row in rows]}

    @app.post("/v2/models/iris/versions/{version}/infer")
    async def infer(version: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        tensor = body["inputs"][0]
        n_rows = tensor["shape"][0]
        width = tensor["shape"][1]
        data = tensor["data"]
        labels = [int(sum(data[i * width:(i + 1) * width]) > 10) for i in range(n_rows)]
        return {"model_name": "iris", "model_version": version, "id": body.get("id"),
                "outputs": [{"name": "predict", "datatype": "INT64", "shape": [n_rows, 1],
                             "data": labels},
                            {"name": "proba", "datatype": "FP64", "shape": [n_rows, 2],
                             "data": [p for label in labels for p in (1 - label, label)]}]}

    @app.post("/v1/models/fraud:predict")
    async def streamed(request: Request) -> StreamingResponse:
        instances = (await request.json())["instances"]

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"predictions": ['
            # Sent only once the client has read the first chunk: a middleware that held the
            # response back would make this wait time out, and the body say so.
            released = await asyncio.to_thread(gate.wait, 10)
            gate.clear()
            yield json.dumps([sum(row) for row in instances]).encode()[1:-1]
            yield b"]}" if released else b'], "timed_out": true}'

        return StreamingResponse(chunks(), media_type="application/json")

    @app.post("/events")
    async def events() -> StreamingResponse:
        async def stream() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"data: {i}\n\n".encode()

        return StreamingResponse(stream(), media_type="text/event-stream")

    @app.post("/own-id")
    def own_id(features: dict[str, float]) -> JSONResponse:
        # An app that names requests itself: the client knows this id, so it is the one logged.
        return JSONResponse({"prediction": features["amount"]},
                            headers={"x-request-id": f"app-{int(features['amount'])}"})

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def consume(bootstrap: str, topic: str, expected: int) -> list[PredictionEvent]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, enable_auto_commit=False)
    events: list[PredictionEvent] = []
    try:
        for _ in range(60):
            for batch in consumer.poll(timeout_ms=1000).values():
                events.extend(decode_event(record.value) for record in batch)
            if len(events) >= expected:
                for batch in consumer.poll(timeout_ms=1000).values():  # and nothing beyond
                    events.extend(decode_event(record.value) for record in batch)
                break
    finally:
        consumer.close()
    return events


def _headers(response: httpx.Response) -> list[tuple[str, str]]:
    # /predict echoes the request id the app saw, so its length differs when one was made up.
    skip = {*VOLATILE, ADDED, *(["content-length"] if response.url.path == "/predict" else [])}
    return sorted((k, v) for k, v in response.headers.multi_items() if k not in skip)


def _streamed(client: httpx.Client, url: str, gate: threading.Event,
              body: dict[str, Any]) -> tuple[int, bytes]:
    """POST, read the first chunk, then let the handler send the rest."""
    with client.stream("POST", url, json=body) as response:
        chunks = response.iter_raw()
        first = next(chunks)
        gate.set()
        return response.status_code, first + b"".join(chunks)


REQUESTS: list[tuple[str, Any, dict[str, str]]] = [
    *[("/predict", {"amount": float(10 * i), "age": float(20 + i)}, {"x-request-id": f"r-{i}"})
      for i in range(20)],
    *[("/predict", {"amount": 5.0, "age": 30.0}, {}) for _ in range(3)],
    ("/batch", [{"country": "DE", "n_items": 1}, {"country": "FR", "n_items": 2},
                {"country": "DE", "n_items": 3}], {"x-request-id": "b-1"}),
    ("/v2/models/iris/versions/3/infer",
     {"id": "v2-1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4],
                                "data": [1, 2, 3, 4, 5, 6, 0, 0]}]}, {}),
    ("/predict", {"age": 1.0}, {"x-request-id": "bad-1"}),  # 400: not logged
    ("/own-id", {"amount": 5.0}, {}),
]


@pytest.mark.timeout(180)
def test_the_middleware_logs_each_row_and_changes_nothing_the_client_sees(
        kafka_bootstrap: str, topic_factory: Callable[[str], str]) -> None:
    topic = topic_factory("sidecar.asgi")
    gate = threading.Event()
    sidecar = PredictionLogger(kafka_bootstrap, model="fraud", model_version="7",
                               predictions_topic=topic)
    logged = PredictionLoggingMiddleware(
        model_app(gate), logger=sidecar, paths={"/predict": "json", "/batch": "json",
                                                "/events": "json", "/own-id": "json"})
    answers: dict[str, list[httpx.Response]] = {"bare": [], "logged": []}
    streamed: dict[str, tuple[int, bytes]] = {}
    made_up: list[str] = []
    with serve(model_app(gate)) as bare_url, serve(logged) as logged_url, httpx.Client() as client:
        for name, url in (("bare", bare_url), ("logged", logged_url)):
            for path, body, headers in REQUESTS:
                answers[name].append(client.post(url + path, json=body, headers=headers))
            streamed[name] = _streamed(client, url + "/v1/models/fraud:predict", gate,
                                       {"instances": [[1, 2], [3, 4.5]]})
            answers[name].append(client.post(url + "/events", json={}))
            answers[name].append(client.get(url + "/health"))
        for bare, seen in zip(answers["bare"], answers["logged"], strict=True):
            assert seen.status_code == bare.status_code
            assert _headers(seen) == _headers(bare)
            assert ADDED not in bare.headers or bare.request.url.path == "/own-id"
            if bare.request.url.path == "/predict" and bare.status_code == 200:
                # The app saw the caller's id, or the one made up and answered.
                payload, bare_payload = seen.json(), bare.json()
                assert payload["prediction"] == bare_payload["prediction"]
                assert payload["seen_request_id"] == seen.headers[ADDED]
                sent = seen.request.headers.get(ADDED)
                assert seen.headers[ADDED] == (sent or payload["seen_request_id"])
                if sent is None:
                    assert re.fullmatch(r"[0-9a-f]{32}", seen.headers[ADDED])
                    made_up.append(seen.headers[ADDED])
                    assert bare_payload["seen_request_id"] is None
            elif bare.request.url.path == "/own-id":
                assert seen.content == bare.content
                assert seen.headers.get_list(ADDED) == bare.headers.get_list(ADDED) == ["app-5"]
            elif bare.request.url.path == "/health":
                assert seen.content == bare.content
                assert ADDED not in seen.headers  # paths not logged are not touched
            else:
                assert seen.content == bare.content
        assert streamed["logged"] == streamed["bare"]
        assert b"timed_out" not in streamed["logged"][1]
    # Leaving serve() ran the lifespan shutdown: the middleware's queue is drained.
    stats = logged.stats
    sidecar.close()
    assert len(made_up) == 3
    assert stats.requests == len(REQUESTS) + 2
    assert stats.logged_requests == 20 + 3 + 1 + 1 + 1 + 1
    assert stats.rows == 20 + 3 + 3 + 2 + 2 + 1
    assert stats.skipped == {"queue_full": 0, "body_too_large": 0, "error_status": 1,
                             "event_stream": 1, "payload": 0, "internal_error": 0}
    assert sidecar.stats.sent == stats.rows

    events = consume(kafka_bootstrap, topic, stats.rows)
    assert len(events) == stats.rows
    by_id = {event.request_id: event for event in events}
    assert len(by_id) == stats.rows
    for i in range(20):
        event = by_id[f"r-{i}"]
        assert (event.model, event.model_version) == ("fraud", "7")
        assert event.features == {"amount": 10.0 * i, "age": 20.0 + i}
        assert event.prediction == round(10 * i / 1000, 6)
        assert event.latency_ms is not None
        assert event.latency_ms > 0
    for request_id in made_up:
        assert by_id[request_id].features == {"amount": 5.0, "age": 30.0}
    assert [(by_id[f"b-1:{i}"].features, by_id[f"b-1:{i}"].prediction) for i in range(3)] == [
        ({"country": "DE", "n_items": 1}, [0.25, 0.75]),
        ({"country": "FR", "n_items": 2}, [0.9, 0.1]),
        ({"country": "DE", "n_items": 3}, [0.25, 0.75])]
    assert (by_id["app-5"].features, by_id["app-5"].prediction) == ({"amount": 5.0}, 5.0)
    # v2: the payload's id (no header was sent), the model and version from the path, the
    # first of the two outputs.
    iris = [by_id["v2-1:0"], by_id["v2-1:1"]]
    assert [(e.model, e.model_version, e.prediction) for e in iris] == [("iris", "3", 0),
                                                                        ("iris", "3", 1)]
    assert iris[0].features == {"x_0": 1, "x_1": 2, "x_2": 3, "x_3": 4}
    # The streamed v1 response: both rows, under the id the middleware answered with.
    streamed_events = sorted((e for e in events if e.model == "fraud" and "x0" in e.features),
                             key=lambda e: str(e.request_id))
    assert [(e.features, e.prediction) for e in streamed_events] == [
        ({"x0": 1, "x1": 2}, 3), ({"x0": 3, "x1": 4.5}, 7.5)]


@pytest.mark.timeout(120)
def test_with_no_broker_every_request_succeeds_and_every_row_is_counted_dropped() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{probe.getsockname()[1]}"
    gate = threading.Event()
    sidecar = PredictionLogger(dead, model="fraud", max_unsent_seconds=0.5)
    logged = PredictionLoggingMiddleware(model_app(gate), logger=sidecar,
                                         paths={"/predict": "json"})
    with serve(logged) as url, httpx.Client() as client:
        answers = [client.post(url + "/predict", json={"amount": float(i)}) for i in range(200)]
    assert [a.status_code for a in answers] == [200] * 200
    assert [a.json()["prediction"] for a in answers] == [round(i / 1000, 6) for i in range(200)]
    sidecar.close(timeout_seconds=5)
    assert logged.stats.rows == 200
    assert sidecar.stats.sent == 0
    assert sidecar.stats.dropped_total == 200


def _docs_example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## A Python (FastAPI or Starlette) server", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.timeout(120)
def test_the_docs_example_runs(kafka_bootstrap: str,
                               topic_factory: Callable[[str], str]) -> None:
    topic = topic_factory("sidecar.asgi.docs")
    source = _docs_example()
    assert source.count('"kafka:9092"') == 1
    source = source.replace('"kafka:9092"',
                            f'{kafka_bootstrap!r}, predictions_topic={topic!r}')
    namespace: dict[str, Any] = {"score": lambda features: features["amount"] / 100}
    exec(compile(source, str(DOCS), "exec"), namespace)  # our own docs' example
    with serve(namespace["app"]) as url, httpx.Client() as client:
        answers = [client.post(url + "/predict", json={"amount": float(i)},
                               headers={"x-request-id": f"d-{i}"}) for i in range(10)]
    namespace["sidecar"].close()
    assert [a.json() for a in answers] == [{"prediction": i / 100} for i in range(10)]
    assert [a.headers["x-request-id"] for a in answers] == [f"d-{i}" for i in range(10)]
    events = consume(kafka_bootstrap, topic, 10)
    assert sorted((e.request_id, e.features["amount"], e.prediction, e.model, e.model_version)
                  for e in events) == sorted(
        (f"d-{i}", float(i), i / 100, "fraud", "7") for i in range(10))
