"""The event schema v1 and its codec, as the collector imports them.

The codec is the wire contract shared with model servers, so it is written once, in the
`driftline-sidecar` distribution (`sidecar/driftline_sidecar/codec.py`): the sidecar checks every
event with the very decoder the collector's ingest runs. This module names what the collector
uses of it.
"""

from __future__ import annotations

from driftline_sidecar import (
    DEAD_LETTER_REASONS,
    LABEL_SCHEMA,
    MAX_EVENT_BYTES,
    PREDICTION_SCHEMA,
    DeadLetterReason,
    Event,
    EventDecodeError,
    LabelEvent,
    PredictionEvent,
    Scalar,
    decode_event,
    encode_event,
    label_to_dict,
    new_event_id,
    prediction_to_dict,
)

__all__ = [
    "DEAD_LETTER_REASONS",
    "LABEL_SCHEMA",
    "MAX_EVENT_BYTES",
    "PREDICTION_SCHEMA",
    "DeadLetterReason",
    "Event",
    "EventDecodeError",
    "LabelEvent",
    "PredictionEvent",
    "Scalar",
    "decode_event",
    "encode_event",
    "label_to_dict",
    "new_event_id",
    "prediction_to_dict",
]
