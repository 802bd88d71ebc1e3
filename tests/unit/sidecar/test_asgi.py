"""PredictionLoggingMiddleware called in process: what it skips, counts and passes through.

The logger is a real `PredictionLogger` with no broker (its `stats.enqueued` counts the rows the
middleware handed it); the app is a plain ASGI callable. The same middleware under uvicorn,
against a FastAPI app and the real broker, is tests/integration/test_sidecar_asgi.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from driftline_sidecar import PredictionLogger
from driftline_sidecar.asgi import (
    SKIP_REASONS,
    PredictionLoggingMiddleware,
    parse_json_request,
    parse_json_response,
)
from driftline_sidecar.payloads import PayloadError

Message = dict[str, Any]


@pytest.fixture
def sidecar() -> Iterator[PredictionLogger]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    logger = PredictionLogger(f"127.0.0.1:{port}", model="m", max_unsent_seconds=0.2)
    yield logger
    logger.close(timeout_seconds=1)


def echo_app(status: int = 200, answer: bytes | None = None, chunks: int = 1) -> Any:
    """An app that answers {"predictions": [...]} (one per row of the JSON list it receives)."""

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await send({"type": f"{scope['type']}.seen"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        out = answer if answer is not None else json.dumps(
            {"predictions": [row["x"] * 2 for row in json.loads(body)]}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        step = max(1, len(out) // chunks)
        parts = [out[i:i + step] for i in range(0, len(out), step)]
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part,
                        "more_body": i < len(parts) - 1})

    return app


def call(app: Any, body: bytes, *, path: str = "/score", request_chunks: int = 1,
         headers: list[tuple[bytes, bytes]] | None = None) -> list[Message]:
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers or []}
    step = max(1, len(body) // request_chunks)
    pieces = [body[i:i + step] for i in range(0, len(body), step)] or [b""]
    incoming = [{"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
                for i, piece in enumerate(pieces)]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def rows(n: int) -> bytes:
    return json.dumps([{"x": float(i)} for i in range(n)]).encode()


def test_a_body_sent_and_answered_in_chunks_is_logged_whole(sidecar: PredictionLogger) -> None:
    logged = PredictionLoggingMiddleware(echo_app(chunks=4), logger=sidecar,
                                         paths={"/score": "json"})
    sent = call(logged, rows(50), request_chunks=7)
    assert b"".join(m.get("body", b"") for m in sent) == json.dumps(
        {"predictions": [2.0 * i for i in range(50)]}).encode()
    assert logged.drain(5)
    assert logged.stats.rows == 50
    assert sidecar.stats.enqueued == 50


@pytest.mark.parametrize(("app", "body", "reason", "payload_reason"), [
    (echo_app(), rows(200), "body_too_large", None),
    (echo_app(status=503), rows(1), "error_status", None),
    (echo_app(answer=b"not json"), rows(1), "payload", "invalid_json"),
    (echo_app(answer=b'{"predictions": [1, 2, 3]}'), rows(2), "payload", "row_count_mismatch"),
    (echo_app(), b'[{"x": 1, "nested": {"a": 1}}]', "payload", "unsupported_value"),
])
def test_what_cannot_be_logged_is_skipped_and_counted(
        sidecar: PredictionLogger, app: Any, body: bytes, reason: str,
        payload_reason: str | None) -> None:
    bare = call(app, body)
    logged = PredictionLoggingMiddleware(app, logger=sidecar, paths={"/score": "json"},
                                         max_body_bytes=2000)
    sent = call(logged, body)
    # What the client gets is the app's answer, but for the request id header.
    strip = [{**m, "headers": [h for h in m.get("headers", []) if h[0] != b"x-request-id"]}
             if "headers" in m else m for m in sent]
    assert strip == bare
    assert logged.drain(5)
    stats = logged.stats
    assert stats.rows == 0
    assert stats.skipped == {r: int(r == reason) for r in SKIP_REASONS}
    assert stats.payload_errors == ({} if payload_reason is None else {payload_reason: 1})


def test_other_paths_and_other_scopes_pass_through_untouched(sidecar: PredictionLogger) -> None:
    logged = PredictionLoggingMiddleware(echo_app(), logger=sidecar, paths={"/score": "json"})
    sent = call(logged, rows(1), path="/elsewhere")
    assert sent[0]["headers"] == [(b"content-type", b"application/json")]
    websocket: list[Message] = []

    async def send(message: Message) -> None:
        websocket.append(message)

    async def receive() -> Message:
        return {"type": "websocket.disconnect"}

    asyncio.run(logged({"type": "websocket", "path": "/score"}, receive, send))
    assert websocket == [{"type": "websocket.seen"}]
    assert logged.stats.requests == 0


def test_a_caller_id_is_kept_and_a_missing_one_is_made_up_and_answered(
        sidecar: PredictionLogger) -> None:
    seen: list[list[tuple[bytes, bytes]]] = []
    inner = echo_app()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        seen.append(list(scope["headers"]))
        await inner(scope, receive, send)

    logged = PredictionLoggingMiddleware(app, logger=sidecar, paths={"/score": "json"})
    given = call(logged, rows(1), headers=[(b"X-Request-Id", b"r-1")])
    made = call(logged, rows(1))
    assert seen[0] == [(b"X-Request-Id", b"r-1")]
    assert (b"x-request-id", b"r-1") in given[0]["headers"]
    (made_id,) = [v for k, v in seen[1] if k == b"x-request-id"]
    assert (b"x-request-id", made_id) in made[0]["headers"]
    assert len(made_id) == 32


def test_the_lifespan_shutdown_drains_the_queue_first(sidecar: PredictionLogger) -> None:
    order: list[str] = []
    logged_box: list[PredictionLoggingMiddleware] = []
    inner = echo_app()

    async def app(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            order.append(f"{message['type']} with {logged_box[0].stats.rows} rows logged")
            return
        await inner(scope, receive, send)

    logged = PredictionLoggingMiddleware(app, logger=sidecar, paths={"/score": "json"})
    logged_box.append(logged)
    # Hold the logger's lock: the middleware's thread waits in its first log(), so the 20
    # responses are still queued when the shutdown comes, and only the drain lets them through.
    sidecar._lock.acquire()
    for _ in range(20):
        call(logged, rows(10))
    assert logged.stats.rows == 0
    threading.Timer(0.3, sidecar._lock.release).start()

    async def receive() -> Message:
        return {"type": "lifespan.shutdown"}

    async def send(message: Message) -> None:
        return None

    asyncio.run(logged({"type": "lifespan"}, receive, send))
    assert order == ["lifespan.shutdown with 200 rows logged"]


def test_settings_are_checked() -> None:
    async def app(scope: Message, receive: Any, send: Any) -> None:
        return None

    with PredictionLogger("127.0.0.1:1", model="m", max_unsent_seconds=0.1) as sidecar:
        with pytest.raises(ValueError, match=r"paths\['/x'\] = 'grpc'"):
            PredictionLoggingMiddleware(app, logger=sidecar, paths={"/x": "grpc"})
        with pytest.raises(ValueError, match="max_body_bytes must be at least 1, got 0"):
            PredictionLoggingMiddleware(app, logger=sidecar, max_body_bytes=0)
        with pytest.raises(ValueError, match="queue_size must be at least 1, got 0"):
            PredictionLoggingMiddleware(app, logger=sidecar, queue_size=0)


@pytest.mark.parametrize(("body", "reason"), [
    (b"{", "invalid_json"), (b"[]", "missing_inputs"), (b"[1, 2]", "not_an_object"),
    (b'{"a": [1]}', "unsupported_value")])
def test_plain_json_requests_that_are_not_rows(body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_json_request(body)
    assert caught.value.reason == reason


def test_plain_json_responses() -> None:
    assert parse_json_response(b'{"predictions": [[0.1, 0.9], [0.8, 0.2]]}', 2) == [
        [0.1, 0.9], [0.8, 0.2]]
    assert parse_json_response(b"[1, 0, 1]", 3) == [1, 0, 1]
    assert parse_json_response(b"0.5", 1) == [0.5]
    with pytest.raises(PayloadError, match="a JSON response needs"):
        parse_json_response(b'{"score": 1}', 1)
    with pytest.raises(PayloadError, match="2 predictions for 3 rows"):
        parse_json_response(b"[1, 2]", 3)
