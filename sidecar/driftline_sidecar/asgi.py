"""An ASGI middleware that logs a Python model server's predictions (Starlette, FastAPI).

`PredictionLoggingMiddleware` wraps the server's ASGI app. On the paths it logs, it copies the
request body as the app reads it and the response body as the app sends it, passing every
message on at once and unchanged (a streaming response still streams), and once the response's
last byte is handed to the server it queues both bodies for a background thread. That thread
parses them with `driftline_sidecar.payloads` and logs one prediction per row through the
`PredictionLogger`. Nothing in logging can fail a request or hold it up: a full queue, a body
over `max_body_bytes`, an error status or a payload that does not parse is skipped and counted
(`stats`), and the logger itself never blocks or raises.

What is logged, by path:

- with ``standard_routes`` (the default), the model servers' inference paths:
  ``POST /v1/models/{name}[/versions/{v}]:predict`` (TF Serving / KServe v1),
  ``POST /v2/models/{name}[/versions/{v}]/infer`` (Open Inference Protocol),
  ``POST /invocations`` (MLflow), ``POST /api/v1.0/predictions`` (Seldon Core v1);
- the exact paths named in `paths`, each with its protocol: one of
  `driftline_sidecar.payloads.PROTOCOLS`, or ``"json"`` for a plain JSON API whose request is
  one object of features (or a list of such objects) and whose response is
  ``{"prediction": ...}``, ``{"predictions": [...]}`` or the bare value (or list of values).

Request ids: the caller's ``x-request-id`` header is passed on; without one the middleware makes
one up (32 hex digits), adds it to the request's headers, so that the app sees it, and to the
response's headers (unless the app answers with an id of its own). The id logged is the caller's
header, else the one the app answered with, else the payload's own id (v2 ``id``, Seldon
``meta.puid``), else the one made up. A request of several rows logs ``{id}:{row}``
for each row, so that each row's label can be joined.

The middleware needs no web framework itself: it speaks ASGI 3 with the standard library only.

Examples:
    >>> from driftline_sidecar import PredictionLogger
    >>> async def app(scope, receive, send):  # any ASGI app: Starlette(), FastAPI(), ...
    ...     pass
    >>> with PredictionLogger("127.0.0.1:1", model="fraud", max_unsent_seconds=0.1) as sidecar:
    ...     logged = PredictionLoggingMiddleware(app, logger=sidecar, paths={"/score": "json"})
    ...     logged.protocol_for("POST", "/score"), logged.protocol_for("POST", "/v2/models/a/infer")
    (('json', None, None), ('v2', 'a', None))
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from driftline_sidecar.codec import MAX_EVENT_BYTES
from driftline_sidecar.payloads import PROTOCOLS, PayloadError, parse_request, parse_response, route

if TYPE_CHECKING:
    from driftline_sidecar.logger import PredictionLogger

logger = logging.getLogger(__name__)

__all__ = ["JSON_PROTOCOL", "SKIP_REASONS", "MiddlewareStats", "PredictionLoggingMiddleware",
           "parse_json_request", "parse_json_response", "row_request_id"]

# ASGI 3 (asgiref's spec) in plain types, so that no framework is imported here.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON_PROTOCOL: Final = "json"
_YIELD_EVERY_SECONDS: Final = 0.0005
REQUEST_ID_HEADER: Final = b"x-request-id"

SkipReason = Literal["queue_full", "body_too_large", "error_status", "event_stream",
                     "payload", "internal_error"]
SKIP_REASONS: Final[tuple[SkipReason, ...]] = (
    "queue_full", "body_too_large", "error_status", "event_stream", "payload", "internal_error")

# What the worker thread receives: protocol, the path's model and version, the request id the
# client knows (sent, or answered by the app), the one made up for this request, the request and
# response bodies, the latency in ms.
_Exchange = tuple[str, str | None, str | None, str | None, str, bytes, bytes, float]


class _Copy:
    """What one request's receive and send wrappers have seen so far."""

    __slots__ = ("answered", "request", "response", "skip", "status", "too_large")

    def __init__(self) -> None:
        self.request = bytearray()
        self.response = bytearray()
        self.status = 0
        self.too_large = False
        self.skip: SkipReason | None = None
        self.answered: str | None = None


@dataclass(frozen=True, slots=True)
class MiddlewareStats:
    """Counts since the middleware was created.

    Attributes:
        requests: Requests on a logged path whose response completed.
        logged_requests: Requests whose rows were all handed to the logger.
        rows: Rows handed to the logger (each one `PredictionLogger.log()` call; the logger's
            own `stats` say whether it was sent).
        skipped: Requests not logged, by reason; every reason in `SKIP_REASONS` is present.
        payload_errors: Of the ``payload`` skips, the count by `PayloadError.reason`.
    """

    requests: int
    logged_requests: int
    rows: int
    skipped: Mapping[str, int]
    payload_errors: Mapping[str, int]


def row_request_id(request_id: str | None, row: int, n_rows: int) -> str | None:
    """The request id logged for row `row` of a request of `n_rows` rows.

    Examples:
        >>> row_request_id("42", 0, 1), row_request_id("42", 1, 2), row_request_id(None, 0, 2)
        ('42', '42:1', None)
    """
    if request_id is None or n_rows == 1:
        return request_id
    return f"{request_id}:{row}"


def _one_output(value: Any, output: str | None) -> Any:
    """The prediction of a row whose response has several outputs: `output`, else the first.

    The event schema takes a scalar or a flat list, so one output is chosen, as the logging
    proxy's ``--output`` does.
    """
    if isinstance(value, Mapping) and value:
        return value[output] if output in value else next(iter(value.values()))
    return value


def parse_json_request(body: bytes) -> list[dict[str, Any]]:
    """The rows of a plain JSON request: one object of features, or a list of them.

    Raises:
        PayloadError: When the body is not an object or a list of objects of scalars.

    Examples:
        >>> parse_json_request(b'{"amount": 12.5, "country": "DE"}')
        [{'amount': 12.5, 'country': 'DE'}]
        >>> parse_json_request(b'[{"a": 1}, {"a": 2}]')
        [{'a': 1}, {'a': 2}]
    """
    try:
        loaded = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PayloadError("invalid_json", "body is not valid JSON") from exc
    records = loaded if isinstance(loaded, list) else [loaded]
    if not records:
        raise PayloadError("missing_inputs", "the request holds no rows")
    for record in records:
        if not isinstance(record, dict):
            raise PayloadError("not_an_object", "each row must be a JSON object of features")
        if any(isinstance(value, dict | list) for value in record.values()):
            raise PayloadError("unsupported_value", "a feature holds a nested value")
    return records


def parse_json_response(body: bytes, n_rows: int) -> list[Any]:
    """One prediction per row from a plain JSON response.

    ``{"prediction": value}`` or a bare value is one row's; ``{"predictions": [...]}`` or a
    bare list holds one per row (a one-row request's bare list of scalars is its class scores).

    Raises:
        PayloadError: When the body has another number of predictions than `n_rows`.

    Examples:
        >>> parse_json_response(b'{"prediction": 0.93}', 1)
        [0.93]
        >>> parse_json_response(b'{"predictions": [1, 0]}', 2)
        [1, 0]
        >>> parse_json_response(b'[0.2, 0.8]', 1)
        [[0.2, 0.8]]
    """
    try:
        loaded = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise PayloadError("invalid_json", "body is not valid JSON") from exc
    if isinstance(loaded, dict) and "predictions" in loaded:
        predictions = loaded["predictions"]
        predictions = predictions if isinstance(predictions, list) else [predictions]
    elif isinstance(loaded, dict) and "prediction" in loaded:
        predictions = [loaded["prediction"]]
    elif isinstance(loaded, dict):
        raise PayloadError("missing_inputs", "a JSON response needs 'prediction' or "
                                             "'predictions'")
    elif isinstance(loaded, list) and not (n_rows == 1 and len(loaded) != 1):
        predictions = loaded
    else:
        predictions = [loaded]
    if n_rows == 1 and len(predictions) > 1 and not any(
            isinstance(p, list | dict) for p in predictions):
        predictions = [predictions]
    if len(predictions) != n_rows:
        raise PayloadError("row_count_mismatch",
                           f"{len(predictions)} predictions for {n_rows} rows")
    return predictions


def _header(headers: Iterable[Sequence[bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


class PredictionLoggingMiddleware:
    """Logs the predictions an ASGI model server serves, one event per row.

    Args:
        app: The ASGI application to wrap.
        logger: The sidecar logger that sends the events; the caller creates and closes it.
        paths: Exact request paths to log (``POST`` only), each with its protocol: ``"v1"``,
            ``"v2"``, ``"mlflow"``, ``"seldon"`` or ``"json"``.
        standard_routes: Also log the model servers' standard inference paths (see the module).
        model: The model name for events whose path and payload name none; the logger's default
            when None.
        model_version: The model version, likewise.
        feature_names: Names for the columns a payload leaves unnamed, in order.
        output: The output logged as the prediction when a response has several (a v2
            response's output tensors); the first when None or absent.
        max_body_bytes: A request or response body over this many bytes is not logged (the
            event codec refuses events over 1 MiB anyway).
        queue_size: Responses waiting for the parsing thread; beyond it they are skipped.

    Raises:
        ValueError: When a protocol in `paths` is unknown or a size is not positive.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: PredictionLogger,
        paths: Mapping[str, str] | None = None,
        standard_routes: bool = True,
        model: str | None = None,
        model_version: str | None = None,
        feature_names: Sequence[str] | None = None,
        output: str | None = None,
        max_body_bytes: int = MAX_EVENT_BYTES,
        queue_size: int = 1000,
    ) -> None:
        known = (*PROTOCOLS, JSON_PROTOCOL)
        for path, protocol in (paths or {}).items():
            if protocol not in known:
                raise ValueError(f"paths[{path!r}] = {protocol!r}: the protocol must be one of "
                                 f"{known}")
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be at least 1, got {queue_size}")
        self.app = app
        self._logger = logger
        self._paths = dict(paths or {})
        self._standard_routes = standard_routes
        self._model = model
        self._version = model_version
        self._feature_names = None if feature_names is None else list(feature_names)
        self._output = output
        self._max_body = max_body_bytes
        self._queue: queue.Queue[_Exchange | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._requests = 0
        self._logged_requests = 0
        self._rows = 0
        self._skipped: dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        self._payload_errors: dict[str, int] = {}
        self._worker: threading.Thread | None = None

    # -- which requests ---------------------------------------------------------------------
    def protocol_for(self, method: str, path: str) -> tuple[str, str | None, str | None] | None:
        """The protocol, model and version a request is logged with, or None if it is not."""
        if method == "POST" and path in self._paths:
            return self._paths[path], None, None
        if self._standard_routes:
            found = route(method, path)
            if found is not None and found.kind == "infer":
                return found.protocol, found.model, found.version
        return None

    # -- the request path: copy, never wait -------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection, copying the bodies of the requests that are logged."""
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        target = None
        if scope["type"] == "http":
            target = self.protocol_for(scope.get("method", ""), scope.get("path", ""))
        if target is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        protocol, route_model, route_version = target
        headers = list(scope.get("headers") or ())
        sent_id = _header(headers, REQUEST_ID_HEADER)
        caller_id = None if sent_id is None else sent_id.decode("latin-1")
        made_up = caller_id or uuid.uuid4().hex
        if caller_id is None:  # the app sees the id it will be logged and answered with
            scope = dict(scope)
            scope["headers"] = [*headers, (REQUEST_ID_HEADER, made_up.encode("latin-1"))]
        limit = self._max_body
        copy = _Copy()

        async def receive_copy() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not copy.too_large:
                chunk = message.get("body", b"")
                if len(copy.request) + len(chunk) > limit:
                    copy.too_large = True
                    copy.request.clear()
                else:
                    copy.request.extend(chunk)
            return message

        async def send_copy(message: Message) -> None:
            kind = message["type"]
            last = False
            if kind == "http.response.start":
                copy.status = message["status"]
                out_headers = list(message.get("headers") or ())
                answered = _header(out_headers, REQUEST_ID_HEADER)
                if answered is None:
                    message = {**message, "headers": [
                        *out_headers, (REQUEST_ID_HEADER, made_up.encode("latin-1"))]}
                elif caller_id is None:  # the app chose its own id: the one its client sees
                    copy.answered = answered.decode("latin-1")
                content_type = _header(out_headers, b"content-type") or b""
                if content_type.startswith(b"text/event-stream"):
                    copy.skip = "event_stream"  # a stream of events is not one prediction
            elif kind == "http.response.body":
                last = not message.get("more_body", False)
                if copy.skip is None and not copy.too_large:
                    chunk = message.get("body", b"")
                    if len(copy.response) + len(chunk) > limit:
                        copy.too_large = True
                        copy.response.clear()
                    else:
                        copy.response.extend(chunk)
            await send(message)
            if last:
                latency_ms = (time.perf_counter() - started) * 1000
                known = caller_id or (copy.answered if copy.answered != made_up else None)
                self._finished(copy, (protocol, route_model, route_version, known, made_up,
                                      bytes(copy.request), bytes(copy.response), latency_ms))

        await self.app(scope, receive_copy, send_copy)

    def _finished(self, copy: _Copy, exchange: _Exchange) -> None:
        with self._lock:
            self._requests += 1
        if copy.skip is not None:
            self._skip(copy.skip)
        elif copy.too_large:
            self._skip("body_too_large")
        elif not 200 <= copy.status < 300:
            self._skip("error_status")
        else:
            self._start_worker()
            try:
                self._queue.put_nowait(exchange)
            except queue.Full:
                self._skip("queue_full")

    def _skip(self, reason: SkipReason, payload_reason: str | None = None) -> None:
        with self._lock:
            self._skipped[reason] += 1
            if payload_reason is not None:
                self._payload_errors[payload_reason] = (
                    self._payload_errors.get(payload_reason, 0) + 1)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        """`receive` for the lifespan scope, draining the parsing queue at shutdown.

        The queue drains before the app's own shutdown handlers run, where the logger is
        usually closed, so that no parsed row arrives after `close()`.
        """

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                self.drain()
            return message

        return lifespan_receive

    # -- the worker thread: parse and log ---------------------------------------------------
    def _start_worker(self) -> None:
        if self._worker is not None:
            return
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, daemon=True,
                                                name="driftline-asgi-logging")
                self._worker.start()

    def _work(self) -> None:
        yielded_at = time.perf_counter()
        while True:
            exchange = self._queue.get()
            try:
                if exchange is not None:
                    self._log(exchange)
            except Exception:  # never expected; the thread must outlive any one exchange
                logger.exception("driftline middleware could not log an exchange")
                self._skip("internal_error")
            finally:
                self._queue.task_done()
            if time.perf_counter() - yielded_at > _YIELD_EVERY_SECONDS:
                # With a backlog this thread never waits on the queue, and the event loop would
                # wait for the GIL up to the interpreter's switch interval (5 ms): hand it over,
                # as the logger's own sending thread does.
                os.sched_yield()
                yielded_at = time.perf_counter()

    def _log(self, exchange: _Exchange) -> None:
        protocol, route_model, route_version, caller_id, made_up, request, response, latency = \
            exchange
        try:
            if protocol == JSON_PROTOCOL:
                rows = parse_json_request(request)
                predictions = parse_json_response(response, len(rows))
                body_id = model = version = None
            else:
                inputs = parse_request(protocol, request, feature_names=self._feature_names)
                outputs = parse_response(protocol, response, n_rows=len(inputs.rows))
                rows, predictions = inputs.rows, outputs.predictions
                body_id = inputs.request_id or outputs.request_id
                model = outputs.model or inputs.model
                version = outputs.version or inputs.version
        except PayloadError as exc:
            self._skip("payload", exc.reason)
            return
        request_id = caller_id or body_id or made_up
        name = route_model or model or self._model
        version = route_version or version or self._version
        n_rows = len(rows)
        for i, (row, prediction) in enumerate(zip(rows, predictions, strict=True)):
            self._logger.log(features=row, prediction=_one_output(prediction, self._output),
                             request_id=row_request_id(request_id, i, n_rows),
                             latency_ms=latency, model=name, model_version=version)
        with self._lock:
            self._logged_requests += 1
            self._rows += n_rows

    # -- reading the counts, flushing -------------------------------------------------------
    def drain(self, timeout_seconds: float = 5.0) -> bool:
        """Wait until every queued response is parsed and handed to the logger.

        Returns:
            True when the queue is empty, False when the time ran out.
        """
        deadline = time.monotonic() + timeout_seconds
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    @property
    def stats(self) -> MiddlewareStats:
        """Counts so far: requests, logged requests and rows, skips by reason."""
        with self._lock:
            return MiddlewareStats(self._requests, self._logged_requests, self._rows,
                                   dict(self._skipped), dict(self._payload_errors))
