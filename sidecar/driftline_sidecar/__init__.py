"""driftline-sidecar: log a model server's predictions and labels to Kafka for driftline.

The logger (`PredictionLogger`) and the event schema v1 with its codec, the wire contract
that the driftline collector decodes with the very same functions. Depends on kafka-python and
the standard library only.

Examples:
    >>> from datetime import UTC, datetime
    >>> event = LabelEvent(new_event_id(), "fraud", "r-81", datetime(2026, 11, 24, tzinfo=UTC), 1)
    >>> decode_event(encode_event(event)) == event
    True
"""

from driftline_sidecar.codec import (
    DEAD_LETTER_REASONS,
    LABEL_SCHEMA,
    MAX_EVENT_BYTES,
    PREDICTION_SCHEMA,
    DeadLetterReason,
    Event,
    LabelEvent,
    PredictionEvent,
    Scalar,
    decode_event,
    encode_event,
    label_to_dict,
    new_event_id,
    prediction_to_dict,
)
from driftline_sidecar.errors import EventDecodeError, SidecarError
from driftline_sidecar.logger import DROP_REASONS, DropReason, PredictionLogger, SidecarStats
from driftline_sidecar.reach import kafka_reachable

__all__ = [
    "DEAD_LETTER_REASONS",
    "DROP_REASONS",
    "LABEL_SCHEMA",
    "MAX_EVENT_BYTES",
    "PREDICTION_SCHEMA",
    "DeadLetterReason",
    "DropReason",
    "Event",
    "EventDecodeError",
    "LabelEvent",
    "PredictionEvent",
    "PredictionLogger",
    "Scalar",
    "SidecarError",
    "SidecarStats",
    "decode_event",
    "encode_event",
    "kafka_reachable",
    "label_to_dict",
    "new_event_id",
    "prediction_to_dict",
]
