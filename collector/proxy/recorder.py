"""The logging proxy's recorder: an inference exchange in, one prediction event per row out.

Runs after the response has gone to the caller, and never raises into the proxy: a body that
is not JSON, a shape the parser does not know, an error status or a body too large to log is
counted in ``driftline_proxy_unlogged_total{reason}`` and passed over. Events go through the
sidecar's `PredictionLogger`, whose own counters (``driftline_sidecar_dropped_total{reason}``)
count what cannot reach Kafka.

Feature names, in order: the payload's own (`driftline_sidecar.payloads`), then the names given
(``--features`` or the model's ``features`` in driftline.yaml), then the names the model's
metadata endpoint declares (fetched once per model and version, then cached).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from driftline_sidecar.payloads import (
    PayloadError,
    Route,
    feature_names_from_metadata,
    parse_request,
    parse_response,
    row_event_id,
)

logger = logging.getLogger(__name__)

# Why an exchange was not logged (the `reason` label): the payload parser's reasons, and these.
UNLOGGED_REASONS: Final = (
    "error_status", "too_large", "invalid_json", "not_an_object", "missing_inputs",
    "ambiguous_inputs", "wrong_type", "shape_mismatch", "unsupported_value", "no_features",
    "too_many_features", "error_response", "row_count_mismatch", "unknown_protocol",
    "internal_error")


class Logger(Protocol):
    """What the recorder needs of `driftline_sidecar.PredictionLogger`."""

    def log(self, *, features: Any, prediction: Any, request_id: str | None = None,
            tags: Any = None, latency_ms: float | None = None, timestamp: datetime | None = None,
            model: str | None = None, model_version: str | None = None,
            event_id: str | None = None) -> str | None:
        """Log one prediction without blocking; the event id, or None when dropped."""


MetadataFetcher = Callable[[str], Awaitable[bytes | None]]


@dataclass(frozen=True, slots=True)
class Exchange:
    """One inference request and its response, as the proxy saw them."""

    route: Route
    request_id: str
    request_body: bytes
    response_body: bytes | None  # None when it was too large to keep
    status: int
    started_at: datetime
    latency_ms: float
    parsed_request: Any = None  # the request body already parsed on the request path, if it was


def _lenient_json(body: bytes) -> Any:
    # NaN and Infinity (which TF Serving accepts) become missing values: the event schema has no
    # non-finite numbers, and a missing value is what a NaN input means to a model.
    return json.loads(body, parse_constant=lambda _name: None)


class Recorder:
    """Turns inference exchanges into prediction events of one driftline model.

    Args:
        sidecar: The prediction logger.
        model: The driftline model the events belong to.
        feature_names: Names for the columns the payloads leave unnamed, or None.
        fetch_metadata: Fetches a path from the upstream (None on any failure); used when
            `feature_names` is None.
        output: The output to log as the prediction when a response has several; the first
            one when None.
        rows_counter: A Prometheus counter of the rows handed to the logger, or None.
        unlogged_counter: A Prometheus counter with a ``reason`` label, of the exchanges not
            logged, or None.
    """

    def __init__(self, sidecar: Logger, *, model: str, feature_names: Sequence[str] | None = None,
                 fetch_metadata: MetadataFetcher | None = None, output: str | None = None,
                 rows_counter: Any = None, unlogged_counter: Any = None) -> None:
        self._sidecar = sidecar
        self._model = model
        self._given = list(feature_names) if feature_names else None
        self._fetch = fetch_metadata
        self._output = output
        self._metadata: dict[tuple[str, str | None, str | None], list[str] | None] = {}
        self._pending: dict[tuple[str, str | None, str | None], asyncio.Task[None]] = {}
        self._rows = rows_counter
        self._unlogged = ({reason: unlogged_counter.labels(reason) for reason in UNLOGGED_REASONS}
                          if unlogged_counter is not None else {})
        self.rows_logged = 0
        self.unlogged: dict[str, int] = dict.fromkeys(UNLOGGED_REASONS, 0)

    def record(self, exchange: Exchange) -> Awaitable[None] | None:
        """Log an exchange now, or return an awaitable when the model's metadata is on its way."""
        try:
            names, waiting = self._names(exchange.route)
            if waiting is not None:
                return self._after(waiting, exchange)
            self._record(exchange, names)
        except Exception:  # the proxy must never fail because of logging
            logger.exception("proxy recorder failed")
            self._count("internal_error")
        return None

    async def _after(self, waiting: asyncio.Task[None], exchange: Exchange) -> None:
        try:
            await waiting
            self._record(exchange, self._names(exchange.route)[0])
        except Exception:
            logger.exception("proxy recorder failed")
            self._count("internal_error")

    def _names(self, route: Route) -> tuple[list[str] | None, asyncio.Task[None] | None]:
        if self._given is not None or self._fetch is None or route.protocol not in ("v1", "v2"):
            return self._given, None
        key = (route.protocol, route.model, route.version)
        if key in self._metadata:
            return self._metadata[key], None
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load_metadata(key))
            self._pending[key] = task
        return None, task

    async def _load_metadata(self, key: tuple[str, str | None, str | None]) -> None:
        protocol, model, version = key
        names: list[str] | None = None
        if model is not None and self._fetch is not None:
            if protocol == "v2":
                path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "")
            else:
                path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "")
                path += "/metadata"
            try:
                body = await self._fetch(path)
                names = None if body is None else feature_names_from_metadata(protocol, body)
            except PayloadError:
                names = None
        self._metadata[key] = names
        self._pending.pop(key, None)
        logger.info("proxy feature names from metadata",
                    extra={"protocol": protocol, "model": model, "found": names is not None})

    def _count(self, reason: str) -> None:
        self.unlogged[reason] = self.unlogged.get(reason, 0) + 1
        counter = self._unlogged.get(reason)
        if counter is not None:
            counter.inc()

    def _record(self, exchange: Exchange, names: list[str] | None) -> None:
        if not 200 <= exchange.status < 300:
            self._count("error_status")
            return
        if exchange.response_body is None:
            self._count("too_large")
            return
        route = exchange.route
        try:
            request = exchange.parsed_request
            if request is None:
                request = _lenient_json(exchange.request_body)
            inputs = parse_request(route.protocol, request, feature_names=names)
            outputs = parse_response(route.protocol, _lenient_json(exchange.response_body),
                                     n_rows=len(inputs.rows))
        except PayloadError as exc:
            self._count(exc.reason)
            return
        except (ValueError, RecursionError):  # not JSON (json.JSONDecodeError is a ValueError)
            self._count("invalid_json")
            return
        version = outputs.version or inputs.version or route.version
        tags = {"upstream_model": route.model} if route.model and route.model != self._model \
            else None
        log = self._sidecar.log
        logged = 0
        for row, (features, prediction) in enumerate(
                zip(inputs.rows, outputs.predictions, strict=True)):
            if isinstance(prediction, dict):
                prediction = prediction.get(self._output) if self._output in prediction \
                    else next(iter(prediction.values()))
            if log(features=features, prediction=prediction, request_id=exchange.request_id,
                   tags=tags, latency_ms=exchange.latency_ms, timestamp=exchange.started_at,
                   model=self._model, model_version=version,
                   event_id=row_event_id(self._model, exchange.request_id, row)) is not None:
                logged += 1
        self.rows_logged += logged
        if self._rows is not None and logged:
            self._rows.inc(logged)

