"""The logging proxy as a bare ASGI application: forward, answer, then record.

Every request goes to the upstream unchanged but for its framing (the body is read whole and
sent with a Content-Length) and the connection-level headers that belong to each hop
(RFC 9110 section 7.6.1); every response comes back with the upstream's status, headers and
body, its body pieces passed on as they arrive so that a streamed answer stays streamed. Only an
inference request (`driftline_sidecar.payloads.route` kind ``infer``) is logged: once its
response is complete, the exchange goes as one frame to the log worker process
(collector/proxy/handoff.py), and its response carries the request id in ``x-request-id``.

No framework on the path (Starlette's request objects and middleware stack cost more than the
whole forward); uvicorn serves it with httptools.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from collector.proxy.handoff import LogWorker
from collector.proxy.upstream import Upstream, UpstreamError
from collector.proxy.worker import encode_frame
from driftline_sidecar.payloads import route

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Headers of one hop, never forwarded (RFC 9110 section 7.6.1), plus the request's framing,
# which the proxy sets itself, and Expect (uvicorn has answered the 100-continue already).
_REQUEST_HOP: Final = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te",
                                 b"trailer", b"upgrade", b"transfer-encoding", b"content-length",
                                 b"expect"})
_RESPONSE_HOP: Final = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"trailer",
                                  b"upgrade"})
_REQUEST_ID: Final = b"x-request-id"
# A body that holds its own request id holds this; only such a body is parsed on the path.
_ID_MARKERS: Final = {"v2": b'"id"', "seldon": b'"puid"'}
_BAD_GATEWAY: Final = json.dumps({"error": "driftline proxy: the upstream model server cannot "
                                            "be reached"}).encode()
# A larger response is passed on but not kept for logging (counted as too_large).
DEFAULT_MAX_LOGGED_BYTES: Final = 8 * 1024 * 1024


class ProxyApp:
    """Forwards to one upstream and records inference exchanges.

    Args:
        upstream: The pooled client of the model server.
        worker: The log worker exchanges are handed to; None forwards only.
        max_logged_bytes: Requests or responses longer than this are forwarded, not logged.
        requests_counter: A Prometheus counter with a ``kind`` label (``infer``, ``other``).
        failures_counter: A Prometheus counter of requests answered 502 (upstream unreachable).
        close_timeout_seconds: How long the worker may flush at shutdown.
    """

    def __init__(self, upstream: Upstream, worker: LogWorker | None, *,
                 max_logged_bytes: int = DEFAULT_MAX_LOGGED_BYTES, requests_counter: Any = None,
                 failures_counter: Any = None, close_timeout_seconds: float = 10.0) -> None:
        self._upstream = upstream
        self._worker = worker
        self._max_logged = max_logged_bytes
        self._infer_count = requests_counter.labels("infer") if requests_counter else None
        self._other_count = requests_counter.labels("other") if requests_counter else None
        self._failures = failures_counter
        self._close_timeout = close_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self._worker is not None:
                    await self._worker.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._upstream.close()
                if self._worker is not None:
                    await self._worker.stop(self._close_timeout)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the caller went away before its request was whole
            piece = message.get("body", b"")
            if piece:
                chunks.append(piece)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)

        method: str = scope["method"]
        request_id: bytes | None = None
        request_encoding: bytes | None = None
        framed = False
        forward: list[tuple[bytes, bytes]] = []
        listed: set[bytes] = set()
        for name, value in scope["headers"]:
            if name in _REQUEST_HOP:
                framed = framed or name in (b"content-length", b"transfer-encoding")
                if name == b"connection":  # the headers it names are this hop's too
                    listed.update(token.strip().lower() for token in value.split(b","))
                continue
            if name == _REQUEST_ID and value:  # an empty one names nothing
                request_id = value
            elif name == b"content-encoding":
                request_encoding = value
            forward.append((name, value))
        if listed:
            forward = [(name, value) for name, value in forward if name not in listed]
        if framed or body:
            forward.append((b"content-length", b"%d" % len(body)))
        target: bytes = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]

        where = route(method, scope["path"]) if method == "POST" and self._worker else None
        infer = where if where is not None and where.kind == "infer" else None
        if infer is not None:
            if self._infer_count is not None:
                self._infer_count.inc()
            started_at, began = time.time(), time.perf_counter()
            marker = _ID_MARKERS.get(infer.protocol)
            if request_id is None and marker is not None and marker in body:
                # The protocol's own id names the request when no header does; it is needed now,
                # for the response's x-request-id, so this body is parsed on the request path.
                request_id = _body_id(body)
        elif self._other_count is not None:
            self._other_count.inc()

        try:
            response = await self._upstream.request(method, target, forward, body)
        except UpstreamError as exc:
            if self._failures is not None:
                self._failures.inc()
            logger.warning("proxy upstream failed", extra={"error": str(exc)})
            await send({"type": "http.response.start", "status": 502,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", b"%d" % len(_BAD_GATEWAY))]})
            await send({"type": "http.response.body", "body": _BAD_GATEWAY})
            return

        headers = [(name, value) for name, value in response.headers
                   if name.lower() not in _RESPONSE_HOP]
        if infer is not None:
            if request_id is None:
                request_id = next((value for name, value in response.headers
                                   if name.lower() == _REQUEST_ID), None)
                if request_id is None:
                    request_id = uuid.uuid4().hex.encode()
                    headers.append((_REQUEST_ID, request_id))
            elif not any(name.lower() == _REQUEST_ID for name, _ in response.headers):
                headers.append((_REQUEST_ID, request_id))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})

        kept: list[bytes] | None = [] if infer is not None else None
        size = 0
        try:
            while True:
                piece, done = await response.read()
                if kept is not None and piece:
                    size += len(piece)
                    if size > self._max_logged:
                        kept = None
                    else:
                        kept.append(piece)
                await send({"type": "http.response.body", "body": piece, "more_body": not done})
                if done:
                    break
        except UpstreamError as exc:
            # Headers are out: all that can be done is to end the caller's response short, and
            # uvicorn closes the connection on a body shorter than its Content-Length.
            logger.warning("proxy upstream broke mid-body", extra={"error": str(exc)})
            response.close()
            return
        if infer is not None and self._worker is not None and request_id is not None:
            if len(body) > self._max_logged:  # not kept either: the worker counts it too_large
                body, kept = b"", None
            response_encoding = next((value for name, value in response.headers
                                      if name.lower() == b"content-encoding"), None)
            self._worker.send(encode_frame(
                infer, request_id=request_id.decode("latin-1"),
                status=response.status, started_at=started_at,
                latency_ms=(time.perf_counter() - began) * 1000.0, request_body=body,
                response_body=None if kept is None else b"".join(kept),
                request_encoding=None if request_encoding is None
                else request_encoding.decode("latin-1"),
                response_encoding=None if response_encoding is None
                else response_encoding.decode("latin-1")))


def _body_id(body: bytes) -> bytes | None:
    """The body's own request id (v2 ``id``, Seldon ``meta.puid``), or None when it has none.

    Examples:
        >>> _body_id(b'{"id": "r-1", "inputs": []}'), _body_id(b'{"meta": {"puid": "p"}}')
        (b'r-1', b'p')
        >>> _body_id(b'{"inputs": [{"name": "id"}]}') is None
        True
    """
    try:
        parsed = json.loads(body, parse_constant=lambda _name: None)
    except (ValueError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    meta = parsed.get("meta")
    value = parsed.get("id") if "id" in parsed else (
        meta.get("puid") if isinstance(meta, dict) else None)
    if isinstance(value, str) and value and len(value) <= 200:
        return value.encode("latin-1", "replace")
    return None
