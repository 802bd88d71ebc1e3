"""The logging proxy's recorder: an inference exchange in, one prediction event per row out.

Runs in the proxy's log worker process (collector/proxy/worker.py), never on the request path,
and never raises: a body that is not JSON, a shape the parser does not know, an error status or
a body too large to log is counted (``driftline_proxy_unlogged_total{reason}``) and passed over.
Events go through the sidecar's `PredictionLogger`, whose own counts
(``driftline_sidecar_dropped_total{reason}``) say what could not reach Kafka.

Feature names, in order: the payload's own (`driftline_sidecar.payloads`), then the names given
(``--features`` or the model's ``features`` in driftline.yaml), then the names the model's
metadata endpoint declares (fetched once per model and version, then cached).
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol
from urllib.parse import quote

from driftline_sidecar.asgi import row_request_id
from driftline_sidecar.payloads import (
    PayloadError,
    Route,
    feature_names_from_metadata,
    parse_request,
    parse_response,
    row_event_ids,
)

logger = logging.getLogger(__name__)

# Why an exchange was not logged (the `reason` label): the payload parser's reasons, and these.
UNLOGGED_REASONS: Final = (
    "error_status", "too_large", "invalid_json", "not_an_object", "missing_inputs",
    "ambiguous_inputs", "wrong_type", "shape_mismatch", "unsupported_value", "no_features",
    "too_many_features", "error_response", "row_count_mismatch", "unknown_protocol",
    "unsupported_encoding", "internal_error")

# Decompressed bodies past this are not parsed (a small gzip body can hold gigabytes).
MAX_DECODED_BYTES: Final = 8 * 1024 * 1024


class Logger(Protocol):
    """What the recorder needs of `driftline_sidecar.PredictionLogger`."""

    def log(self, *, features: Any, prediction: Any, request_id: str | None = None,
            tags: Any = None, latency_ms: float | None = None, timestamp: datetime | None = None,
            model: str | None = None, model_version: str | None = None,
            event_id: str | None = None) -> str | None:
        """Log one prediction without blocking; the event id, or None when dropped."""


MetadataFetcher = Callable[[str], bytes | None]


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
    request_encoding: str | None = None  # the body's Content-Encoding, as sent
    response_encoding: str | None = None


# NaN and Infinity (which TF Serving accepts) become missing values: the event schema has no
# non-finite numbers, and a missing value is what a NaN input means to a model. One decoder,
# built once (json.loads with an argument builds a new one on every call).
_DECODER: Final = json.JSONDecoder(parse_constant=lambda _name: None)


def _lenient_json(body: bytes) -> Any:
    return _DECODER.decode(body.decode("utf-8-sig"))


class _UndecodableError(Exception):
    """A body whose Content-Encoding cannot be undone here; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _decoded(body: bytes, encoding: str | None) -> bytes:
    """`body` without its Content-Encoding (gzip and deflate, which MLServer sends)."""
    if not encoding or encoding.strip().lower() == "identity":
        return body
    if encoding.strip().lower() not in ("gzip", "x-gzip", "deflate"):
        raise _UndecodableError("unsupported_encoding")
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: a gzip or a zlib header, found out
    try:
        plain = inflater.decompress(body, MAX_DECODED_BYTES)
    except zlib.error as exc:
        raise _UndecodableError("invalid_json") from exc
    if inflater.unconsumed_tail:
        raise _UndecodableError("too_large")
    return plain


class Recorder:
    """Turns inference exchanges into prediction events of one driftline model.

    Args:
        sidecar: The prediction logger.
        model: The driftline model the events belong to.
        feature_names: Names for the columns the payloads leave unnamed, or None.
        fetch_metadata: GETs a path from the upstream (None on any failure); used when
            `feature_names` is None, once per protocol, model and version.
        output: The output to log as the prediction when a response has several; the first
            one when None.
    """

    def __init__(self, sidecar: Logger, *, model: str, feature_names: Sequence[str] | None = None,
                 fetch_metadata: MetadataFetcher | None = None,
                 output: str | None = None) -> None:
        self._sidecar = sidecar
        self._model = model
        self._given = list(feature_names) if feature_names else None
        self._fetch = fetch_metadata
        self._output = output
        self._metadata: dict[tuple[str, str | None, str | None], list[str] | None] = {}
        self.rows_logged = 0
        self.unlogged: dict[str, int] = dict.fromkeys(UNLOGGED_REASONS, 0)

    def record(self, exchange: Exchange) -> None:
        """Log an exchange's rows, or count why not; never raises."""
        try:
            self._record(exchange, self._names(exchange.route))
        except Exception:  # the proxy must never fail because of logging
            logger.exception("proxy recorder failed")
            self._count("internal_error")

    def _names(self, route: Route) -> list[str] | None:
        if self._given is not None or self._fetch is None or route.protocol not in ("v1", "v2"):
            return self._given
        key = (route.protocol, route.model, route.version)
        if key not in self._metadata:
            self._metadata[key] = self._load_metadata(*key)
        return self._metadata[key]

    def _load_metadata(self, protocol: str, model: str | None,
                       version: str | None) -> list[str] | None:
        if model is None or self._fetch is None:
            return None
        quoted = quote(model, safe="")
        if protocol == "v2":
            path = f"/v2/models/{quoted}" + (f"/versions/{quote(version)}" if version else "")
        else:
            path = f"/v1/models/{quoted}" + (f"/versions/{quote(version)}" if version else "")
            path += "/metadata"
        body = self._fetch(path)
        try:
            names = None if body is None else feature_names_from_metadata(protocol, body)
        except PayloadError:
            names = None
        logger.info("proxy feature names from metadata",
                    extra={"protocol": protocol, "model": model, "found": names is not None})
        return names

    def _count(self, reason: str) -> None:
        self.unlogged[reason] = self.unlogged.get(reason, 0) + 1

    def _record(self, exchange: Exchange, names: list[str] | None) -> None:
        if not 200 <= exchange.status < 300:
            self._count("error_status")
            return
        if exchange.response_body is None:
            self._count("too_large")
            return
        route = exchange.route
        try:
            request = _decoded(exchange.request_body, exchange.request_encoding)
            response = _decoded(exchange.response_body, exchange.response_encoding)
            inputs = parse_request(route.protocol, _lenient_json(request), feature_names=names)
            outputs = parse_response(route.protocol, _lenient_json(response),
                                     n_rows=len(inputs.rows))
        except _UndecodableError as exc:
            self._count(exc.reason)
            return
        except PayloadError as exc:
            self._count(exc.reason)
            return
        except (ValueError, RecursionError):  # not JSON (json.JSONDecodeError is a ValueError)
            self._count("invalid_json")
            return
        version = outputs.version or inputs.version or route.version
        tags = ({"upstream_model": route.model} if route.model and route.model != self._model
                else None)
        log = self._sidecar.log
        event_ids = row_event_ids(self._model, exchange.request_id, len(inputs.rows))
        n_rows = len(inputs.rows)
        for row, (event_id, features, prediction) in enumerate(zip(
                event_ids, inputs.rows, outputs.predictions, strict=True)):
            if isinstance(prediction, dict):
                prediction = (prediction[self._output] if self._output in prediction
                              else next(iter(prediction.values())))
            # One id per row, as the sources and the ASGI middleware store them ({id}:{row}
            # for a request of several rows), so that a label can name one row.
            request_id = row_request_id(exchange.request_id, row, n_rows)
            if log(features=features, prediction=prediction, request_id=request_id,
                   tags=tags, latency_ms=exchange.latency_ms, timestamp=exchange.started_at,
                   model=self._model, model_version=version,
                   event_id=event_id) is not None:
                self.rows_logged += 1
