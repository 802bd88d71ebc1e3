"""Paired halves and feedback turned into driftline events, with deterministic ids.

One `PredictionEvent` per row of the request: features from the request, the prediction from
the response (None when a request is stored without one), model mapped by the source's
settings, version from the payloads when they carry one. The request id is the logger's
(`Part.request_id`, else the key); a batch of several rows gives its rows `"<id>:<row>"`
(row from 0), so that a label can name one row. Seldon feedback carrying a `truth` gives one
`LabelEvent` per truth row under the same request ids; a one-hot row becomes its class index.

Event ids are a digest of the source, the pairing key and the row (and, for labels, of the
label too, so that a corrected truth is a new label and the store keeps the last one), so a
message read twice, or logged twice, is stored once.

Examples:
    >>> from collector.sources.base import Part

_E = TypeVar("_E", PredictionEvent, LabelEvent)
    >>> from collector.config_sources import CloudEventsSource
    >>> source = SourceContext(CloudEventsSource(name="kserve", kind="cloudevents"), {})
    >>> request = Part("k", "request", "v1", {"instances": [[5.1, 3.5]]}, "iris", None, None,
    ...                request_id="r1")
    >>> response = Part("k", "response", "v1", {"predictions": [0]}, "iris", None, None)
    >>> [(e.model, e.request_id, dict(e.features), e.prediction)
    ...  for e in source.predictions(request, response, fallback_at=None)]
    [('iris', 'r1', {'x0': 5.1, 'x1': 3.5}, 0)]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from collector.config_sources import SourceSettings
from collector.errors import EventDecodeError
from collector.events import LabelEvent, PredictionEvent, decode_event, encode_event
from collector.sources.base import Part
from driftline_sidecar.payloads import PayloadError, parse_request, parse_response

_E = TypeVar("_E", PredictionEvent, LabelEvent)


class PartError(ValueError):
    """One half cannot become events; `part` says which, `reason` is a metric label."""

    def __init__(self, part: Part, reason: str, message: str) -> None:
        super().__init__(message)
        self.part = part
        self.reason = reason


def event_id(*parts: object) -> str:
    """32 hex digits of SHA-256 over the parts: the same inputs, the same id.

    Examples:
        >>> event_id("kserve", "k", 0, "prediction") == event_id("kserve", "k", 0, "prediction")
        True
    """
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _row_id(request_id: str, row: int, n_rows: int) -> str:
    return request_id if n_rows == 1 else f"{request_id}:{row}"


def label_value(value: Any) -> Any:
    """A truth row as one label: a scalar as is, a one-hot list as its index.

    Raises:
        ValueError: For a list that is not one-hot, or a nested value.

    Examples:
        >>> label_value([0, 0, 1]), label_value(2), label_value("setosa")
        (2, 2, 'setosa')
    """
    if isinstance(value, list):
        if (value and all(v in (0, 1) and not isinstance(v, str) for v in value)
                and sum(1 for v in value if v == 1) == 1):
            return next(i for i, v in enumerate(value) if v == 1)
        raise ValueError("a truth row must be one value or a one-hot list")
    if isinstance(value, dict):
        raise ValueError("a truth row must be one value, not an object")
    return value


class SourceContext:
    """One configured source's rules for turning Parts into events."""

    def __init__(self, settings: SourceSettings, model_features: Mapping[str, Sequence[str]]):
        """`model_features`: each driftline model's configured features, in order."""
        self.settings = settings
        self.name = settings.name
        self._model_features = model_features

    def model(self, part: Part) -> str:
        """The driftline model of a Part: mapped, the source's model, or the server's name."""
        settings = self.settings
        if part.model is not None and part.model in settings.models:
            return settings.models[part.model]
        if settings.model is not None:
            return settings.model
        if part.model:
            return part.model
        raise PartError(part, "missing_model", "the message names no model and the source "
                                               "sets no 'model'")

    def _feature_names(self, model: str) -> Sequence[str] | None:
        given = self.settings.feature_names.get(model)
        return given if given is not None else self._model_features.get(model)

    def _prediction(self, part: Part, value: Any) -> Any:
        if isinstance(value, dict):
            wanted = self.settings.output
            if wanted is None or wanted not in value:
                raise PartError(part, "ambiguous_output", "the response has several outputs "
                                f"{sorted(value)[:10]}; set the source's 'output' to one")
            return value[wanted]
        return value

    def predictions(self, request: Part, response: Part | None, *,
                    fallback_at: datetime | None) -> list[PredictionEvent]:
        """The events of a request and its response (None: stored without a prediction).

        Raises:
            PartError: Naming the half that cannot be read.
        """
        return [event for event, _ in self.encoded_predictions(request, response,
                                                               fallback_at=fallback_at)]

    def encoded_predictions(self, request: Part, response: Part | None, *,
                            fallback_at: datetime | None) -> list[tuple[PredictionEvent, bytes]]:
        """`predictions`, each with its wire bytes (checked by the collector's decoder)."""
        model = self.model(request)
        try:
            inputs = parse_request(request.protocol, request.body,
                                   feature_names=self._feature_names(model))
        except PayloadError as exc:
            raise PartError(request, exc.reason, str(exc)) from exc
        n_rows = len(inputs.rows)
        if n_rows == 0:
            raise PartError(request, "missing_inputs", "the request has no rows")
        predictions: list[Any] = [None] * n_rows
        version = request.version or inputs.version
        if response is not None:
            try:
                outputs = parse_response(response.protocol, response.body, n_rows=n_rows)
            except PayloadError as exc:
                raise PartError(response, exc.reason, str(exc)) from exc
            predictions = [self._prediction(response, p) for p in outputs.predictions]
            version = response.version or outputs.version or version
        at = request.at or (response.at if response else None) or fallback_at or _epoch()
        request_id = request.request_id or request.key
        events = [
            PredictionEvent(
                event_id=event_id(self.name, request.key, row, "prediction"),
                model=model,
                timestamp=at,
                features=features,
                prediction=prediction,
                model_version=version,
                request_id=_row_id(request_id, row, n_rows),
                tags=dict(request.tags),
            )
            for row, (features, prediction) in enumerate(zip(inputs.rows, predictions,
                                                             strict=True))
        ]
        return [_checked(request if response is None else response, e) for e in events]

    def labels(self, feedback: Part) -> list[LabelEvent]:
        """The labels of a Seldon feedback's `truth` (none when it carries no truth data).

        Raises:
            PartError: For a truth that is not readable as one label per row.
        """
        return [event for event, _ in self.encoded_labels(feedback)]

    def encoded_labels(self, feedback: Part) -> list[tuple[LabelEvent, bytes]]:
        """`labels`, each with its wire bytes (checked by the collector's decoder)."""
        body = feedback.body
        truth = body.get("truth") if isinstance(body, dict) else None
        if not isinstance(truth, dict) or not any(
                key in truth for key in ("data", "jsonData", "strData")):
            return []
        model = self.model(feedback)
        try:
            rows = parse_response("seldon", truth).predictions
            values = [label_value(row) for row in rows]
        except PayloadError as exc:
            raise PartError(feedback, exc.reason, f"truth: {exc}") from exc
        except ValueError as exc:
            raise PartError(feedback, "invalid_label", str(exc)) from exc
        request_id = feedback.request_id or feedback.key
        at = feedback.at or _epoch()
        events = [
            LabelEvent(
                event_id=event_id(self.name, feedback.key, row, "label",
                                  json.dumps(value, sort_keys=True)),
                model=model,
                request_id=_row_id(request_id, row, len(values)),
                timestamp=at,
                label=value,
            )
            for row, value in enumerate(values)
        ]
        return [_checked(feedback, e) for e in events]


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)


def _checked(part: Part, event: _E) -> tuple[_E, bytes]:
    """`event` and its bytes if the collector's own decoder takes them; else the half is refused."""
    try:
        value = encode_event(event)
        decode_event(value)
    except EventDecodeError as exc:
        raise PartError(part, exc.reason, f"the event would be refused: {exc}") from exc
    return event, value
