"""The interface between a foreign source's messages and the bridge that pairs them.

A source decoder reads one Kafka record of a model server's own logging format (a
CloudEvent written by the HTTP endpoint, a Seldon Core v1 Kafka logger message, an
MLServer or Seldon Core v2 Open Inference Protocol message) and returns the `Part`s it
carries: a request, a response or a feedback, each with the key that pairs it with the
others of the same inference. The bridge pairs Parts by (source name, key) and turns
each complete pair into driftline events with the parsers of `driftline_sidecar.payloads`.

Examples:
    >>> part = Part(key="r1", role="request", protocol="v2",
    ...             body={"inputs": []}, model="iris", version=None, at=None)
    >>> part.role, part.key
    ('request', 'r1')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

__all__ = ["Part", "PartRole", "SourceDecoder"]

PartRole = Literal["request", "response", "feedback"]


@dataclass(frozen=True)
class Part:
    """One side of an inference as a source logged it.

    Attributes:
        key: What pairs a request with its response and feedback (the logger's request
            id, the CloudEvent id, the Kafka message key).
        role: Which side of the inference this is.
        protocol: A `driftline_sidecar.payloads` protocol: "v1", "v2", "seldon" or "mlflow".
        body: The JSON-like body; protobuf is converted to the v2 JSON shape before this point.
        model: The model's name when the message names it.
        version: The model's version when the message names it.
        at: The event's time when the message carries one (timezone-aware UTC).
        request_id: The request id driftline stores on the events, when it differs from
            `key` (a key that also names a graph node, say); None means `key` itself.
        tags: Tags for the events (bounded values only, e.g. the serving endpoint `default`
            or `canary`); a request's tags go on its predictions.
    """

    key: str
    role: PartRole
    protocol: str
    body: Any
    model: str | None
    version: str | None
    at: datetime | None
    request_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class SourceDecoder(Protocol):
    """Decodes the records of one configured source into Parts.

    `name` is the source's name in driftline.yaml. `decode` receives a kafka-python
    `ConsumerRecord` from one of `topics()` and raises
    `collector.errors.EventDecodeError` for a message it cannot read (the bridge
    dead-letters it); it may return no Part for a message that carries none.
    """

    name: str

    def topics(self) -> list[str]:
        """The topics this source's messages arrive on."""
        ...

    def decode(self, record: Any) -> list[Part]:
        """The Parts one record carries."""
        ...
