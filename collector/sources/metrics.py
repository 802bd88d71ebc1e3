"""Prometheus metrics of the sources (the bridge and the CloudEvents endpoint).

Registered on the service's registry by the wiring code. Labels are bounded: `source` names
come from driftline.yaml, `reason` from the payload parser's and the codec's reason lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

from collector.sources.cloudevents import received_counter

MESSAGE_OUTCOMES: Final = ("decoded", "deadlettered", "forwarded")
PAIR_OUTCOMES: Final = ("paired", "duplicate", "unpaired_request", "unpaired_response")
FEEDBACK_OUTCOMES: Final = ("labelled", "no_truth")
EVENT_KINDS: Final = ("prediction", "label")


@dataclass(frozen=True)
class SourceMetrics:
    """Every metric of the sources, on one registry."""

    messages: Counter
    pairs: Counter
    feedback: Counter
    events: Counter
    deadletters: Counter
    pending: Gauge
    kafka_up: Gauge
    received: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> SourceMetrics:
        """Create the metrics on `registry`."""
        return cls(
            messages=Counter(
                "driftline_sources_messages_total",
                "Messages read from the sources' topics, by source and outcome (decoded, "
                "deadlettered, forwarded: copied to the source's pairing_topic).",
                ["source", "outcome"], registry=registry),
            pairs=Counter(
                "driftline_sources_pairs_total",
                "Request and response halves by outcome: paired, duplicate (seen before), "
                "unpaired_request / unpaired_response (the other half never came within "
                "pairing_timeout_seconds, or max_pending was passed).",
                ["source", "outcome"], registry=registry),
            feedback=Counter(
                "driftline_sources_feedback_total",
                "Seldon feedback messages, by outcome (labelled: it carried a truth; no_truth).",
                ["source", "outcome"], registry=registry),
            events=Counter(
                "driftline_sources_events_total",
                "Driftline events produced from the sources, by kind (prediction, label).",
                ["source", "kind"], registry=registry),
            deadletters=Counter(
                "driftline_sources_deadletters_total",
                "Source messages sent to the dead-letter topic, by source and reason.",
                ["source", "reason"], registry=registry),
            pending=Gauge(
                "driftline_sources_pending_halves",
                "Request or response halves waiting for their other half.",
                ["source"], registry=registry),
            kafka_up=Gauge(
                "driftline_sources_kafka_up",
                "1 when the sources bridge is connected to Kafka.", registry=registry),
            received=received_counter(registry),
        )

    def init_sources(self, names: Iterable[str]) -> None:
        """Start every series of each source at zero."""
        for name in names:
            for outcome in MESSAGE_OUTCOMES:
                self.messages.labels(name, outcome)
            for outcome in PAIR_OUTCOMES:
                self.pairs.labels(name, outcome)
            for outcome in FEEDBACK_OUTCOMES:
                self.feedback.labels(name, outcome)
            for kind in EVENT_KINDS:
                self.events.labels(name, kind)
            self.pending.labels(name).set(0)
