"""The `sources:` part of driftline.yaml: model servers' own loggers read as prediction sources.

Each source names the kind of logger it reads and where its messages arrive; the bridge
(`collector.sources.bridge`) pairs their requests and responses and produces driftline
events to `kafka.predictions_topic` / `kafka.labels_topic`. Kinds:

- `cloudevents`: KServe's InferenceService logger and Seldon Core v1's SeldonDeployment
  logger posting CloudEvents to `POST /v1/ingest/cloudevents[/<source name>]`; the endpoint
  writes each event to `topic` before answering, the bridge reads it from there.
- `seldon_kafka_logger`: Seldon Core v1's logger writing straight to Kafka
  (`LOGGER_KAFKA_TOPIC`), read from `topics`.
- `mlserver_kafka`: MLServer's Kafka server, its `input_topic` and `output_topic`.
- `seldon_v2`: Seldon Core v2's `<topic_prefix>.<namespace>.model.<name>.inputs|outputs`.

Every kind maps the server's model names to driftline models (`models`, else `model`, else
the server's name itself) and may name the features of positional inputs per driftline
model (`feature_names`; by default the model's configured features, in order, when their
number matches the payload's columns).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SourceKind = Literal["cloudevents", "seldon_kafka_logger", "mlserver_kafka", "seldon_v2"]
Protocol = Literal["auto", "v1", "v2", "seldon", "mlflow"]
_NAME = r"^[A-Za-z0-9_.\-]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SourceBase(_Strict):
    """What every kind of source shares."""

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=_NAME)]
    # The driftline model of every event from this source (when `models` does not map it).
    model: Annotated[str, Field(min_length=1, max_length=200, pattern=_NAME)] | None = None
    # The server's model name -> the driftline model name. For the loggers the name is the
    # InferenceService's or SeldonDeployment's (`inferenceservicename`), or `<name>/<part>` to
    # tell apart the nodes of a Seldon graph (`modelid`) or KServe's components (`component`:
    # predictor, transformer) that log for one service.
    models: dict[str, str] = Field(default_factory=dict)
    # A driftline model -> the names of its positional input columns, in order.
    feature_names: dict[str, list[str]] = Field(default_factory=dict)
    # The body protocol when the message does not say (`auto`: recognised by its shape).
    protocol: Protocol = "auto"
    # Which output tensor is the prediction when a v2 response carries several.
    output: str | None = None
    # How long a request waits for its response (and a response for its request).
    pairing_timeout_seconds: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    # Requests waiting at most; past it the oldest is given up (and counted).
    max_pending: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    # `store`: a request whose response never came is stored with prediction null (a logger
    # in `request` mode sends no responses); `drop`: it is counted and dropped.
    unpaired_requests: Literal["drop", "store"] = "drop"

    def kafka_topics(self) -> list[str]:
        """The Kafka topics this source's messages arrive on."""
        raise NotImplementedError


class CloudEventsSource(_SourceBase):
    """KServe's and Seldon Core v1's HTTP loggers, through the CloudEvents endpoint."""

    kind: Literal["cloudevents"]
    topic: Annotated[str, Field(min_length=1, max_length=249)] = "driftline.cloudevents"
    # Larger events are refused with 413 (the raw topic must take them: broker
    # message.max.bytes and the topic's max.message.bytes, 1 MiB by default).
    max_event_bytes: Annotated[int, Field(gt=0, le=64 * 1024 * 1024)] = 1_000_000
    # How long the endpoint waits for the broker's acknowledgement before answering 503.
    write_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 5.0

    def kafka_topics(self) -> list[str]:
        """The raw topic the endpoint writes to."""
        return [self.topic]


class SeldonKafkaLoggerSource(_SourceBase):
    """Seldon Core v1's logger writing straight to Kafka (`LOGGER_KAFKA_TOPIC`)."""

    kind: Literal["seldon_kafka_logger"]
    topics: Annotated[list[Annotated[str, Field(min_length=1, max_length=249)]],
                      Field(min_length=1)]
    # The logger writes without a key, so a request and its response land on any partitions.
    # With `pairing_topic`, the bridge first copies each message there keyed by its request id,
    # and pairs from it: any number of bridge processes then pair every inference. Without it,
    # run one bridge process for this source (halves read by different processes never pair).
    pairing_topic: Annotated[str, Field(min_length=1, max_length=249)] | None = None

    def kafka_topics(self) -> list[str]:
        """The logger topics, and the pairing topic when there is one."""
        return [*self.topics, *([self.pairing_topic] if self.pairing_topic else [])]


class MLServerKafkaSource(_SourceBase):
    """MLServer's Kafka server: requests on `input_topic`, responses on `output_topic`."""

    kind: Literal["mlserver_kafka"]
    input_topic: str = "mlserver-input"
    output_topic: str = "mlserver-output"

    def kafka_topics(self) -> list[str]:
        """The input and output topics."""
        return [self.input_topic, self.output_topic]


class SeldonV2Source(_SourceBase):
    """Seldon Core v2's per-model topics."""

    kind: Literal["seldon_v2"]
    topic_prefix: str = "seldon"
    namespace: str = "default"
    # The Seldon model names whose inputs and outputs topics are read.
    seldon_models: Annotated[list[str], Field(min_length=1)]

    def kafka_topics(self) -> list[str]:
        """`<prefix>.<namespace>.model.<name>.inputs|outputs` of each model."""
        base = f"{self.topic_prefix}.{self.namespace}.model"
        return [f"{base}.{name}.{side}" for name in self.seldon_models
                for side in ("inputs", "outputs")]


SourceSettings = Annotated[
    CloudEventsSource | SeldonKafkaLoggerSource | MLServerKafkaSource | SeldonV2Source,
    Field(discriminator="kind"),
]


def check_sources(sources: list[SourceSettings], *, reserved_topics: set[str],
                  model_names: set[str]) -> None:
    """Cross-source rules: unique names, no topic read twice or shared with driftline's own.

    Raises:
        ValueError: Naming the source and the problem.
    """
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"sources: names must be unique, repeated: {repeated}")
    owner: dict[str, str] = {}
    for source in sources:
        for topic in source.kafka_topics():
            if topic in reserved_topics:
                raise ValueError(f"sources ({source.name}): topic {topic!r} is one of "
                                 "driftline's own topics (kafka.*_topic); give the source "
                                 "its own")
            if topic in owner:
                raise ValueError(f"sources ({source.name}): topic {topic!r} is read by "
                                 f"source {owner[topic]!r} too; a topic belongs to one source")
            owner[topic] = source.name
        targets = set(source.models.values()) | ({source.model} if source.model else set())
        unknown = sorted(t for t in targets | set(source.feature_names) if t not in model_names)
        if unknown:
            raise ValueError(f"sources ({source.name}): {unknown} are not models of this "
                             f"file (models: {sorted(model_names)})")
