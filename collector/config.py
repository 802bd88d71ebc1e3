"""The driftline.yaml configuration: models, Kafka, store, HTTP, metrics.

Validated with pydantic. A bad file yields one `ConfigError` whose message
names the file, the key path and the problem; the CLI prints it and exits 2.
Paths inside the file (reference datasets) are relative to the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from collector.errors import ConfigError

FeatureKind = Literal["numeric", "categorical"]
Task = Literal["classification", "regression"]
NumericMethod = Literal[
    "auto", "ks", "wasserstein", "psi", "jensenshannon", "kl_div", "hellinger", "anderson",
    "cramer_von_mises", "energy", "mannwhitney", "t_test", "mmd",
]
CategoricalMethod = Literal[
    "auto", "chisquare", "z", "fisher_exact", "g_test", "jensenshannon", "psi", "tvd", "hellinger",
]
DEFAULT_DATABASE_URL = "sqlite+pysqlite:///.driftline/driftline.db"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Strict):
    """Where ingest reads from and where dead letters go."""

    bootstrap_servers: str = "127.0.0.1:9092"
    predictions_topic: str = "driftline.predictions"
    labels_topic: str = "driftline.labels"
    deadletter_topic: str = "driftline.deadletter"
    group_id: str = "driftline-collector"
    max_event_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    max_poll_records: Annotated[int, Field(gt=0, le=100_000)] = 500
    # A crashed collector's partitions move to the others after this long (broker minimum 6 s).
    session_timeout_ms: Annotated[int, Field(ge=6000, le=300_000)] = 10_000


class HttpSettings(_Strict):
    """The HTTP server of `driftline serve`."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000


class AlertsSettings(_Strict):
    """Delivery retries of the outbox (exponential backoff with jitter)."""

    retry_base_seconds: Annotated[float, Field(gt=0)] = 5.0
    retry_max_seconds: Annotated[float, Field(gt=0)] = 3600.0
    max_attempts: Annotated[int, Field(ge=1)] = 25

    @model_validator(mode="after")
    def _order(self) -> AlertsSettings:
        if self.retry_max_seconds < self.retry_base_seconds:
            raise ValueError("retry_max_seconds must be at least retry_base_seconds")
        return self


class MetricsSettings(_Strict):
    """Bounds on exported series."""

    max_features_per_model: Annotated[int, Field(gt=0)] = 250


class ReferenceSettings(_Strict):
    """The reference dataset a model's windows are compared with."""

    path: Path
    format: Literal["auto", "csv", "parquet"] = "auto"


class ScheduleSettings(_Strict):
    """How often a model is checked."""

    every_seconds: Annotated[float, Field(gt=0)] = 60.0


class WindowSettings(_Strict):
    """Which events form the current window: the last N, or the last T seconds."""

    last_events: Annotated[int, Field(gt=0)] | None = None
    last_seconds: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> WindowSettings:
        if (self.last_events is None) == (self.last_seconds is None):
            raise ValueError("give exactly one of last_events or last_seconds")
        return self


class DriftSettings(_Strict):
    """How drift is decided for a model."""

    numeric_method: NumericMethod = "auto"
    categorical_method: CategoricalMethod = "auto"
    methods: dict[str, str] = Field(default_factory=dict)
    threshold: Annotated[float, Field(gt=0)] | None = None
    thresholds: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_samples: Annotated[int, Field(ge=1)] = 30
    correction: Literal["bonferroni", "holm", "bh"] | None = None
    min_effect_size: Annotated[float, Field(ge=0)] | None = None


class WebhookSettings(_Strict):
    """The retraining webhook called when a run's dataset verdict is drift."""

    url: str
    secret_env: str = "DRIFTLINE_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a secret
    cooldown_seconds: Annotated[float, Field(ge=0)] = 3600.0
    timeout_seconds: Annotated[float, Field(gt=0)] = 10.0

    @model_validator(mode="after")
    def _http_url(self) -> WebhookSettings:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {self.url!r}")
        return self

    def secret(self) -> str:
        """The signing secret, read from the environment variable named in the config."""
        value = os.environ.get(self.secret_env)
        if not value:
            raise ConfigError(
                f"retraining_webhook.secret_env: environment variable {self.secret_env} is "
                "not set; set it to a Standard Webhooks secret such as whsec_<base64>"
            )
        return value


class ModelSettings(_Strict):
    """One monitored model."""

    name: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")]
    task: Task = "classification"
    features: dict[str, FeatureKind]
    prediction: FeatureKind | None = None
    label: FeatureKind | None = None
    reference: ReferenceSettings
    schedule: ScheduleSettings = ScheduleSettings()
    window: WindowSettings = WindowSettings(last_events=1000)
    drift: DriftSettings = DriftSettings()
    retraining_webhook: WebhookSettings | None = None

    @model_validator(mode="after")
    def _features(self) -> ModelSettings:
        if not self.features:
            raise ValueError("features must name at least one feature")
        unknown = set(self.drift.methods) - set(self.features) - {"prediction"}
        if unknown:
            raise ValueError(f"drift.methods names unknown features: {sorted(unknown)}")
        return self


class Settings(_Strict):
    """The whole configuration file."""

    database_url: str = DEFAULT_DATABASE_URL
    kafka: KafkaSettings = KafkaSettings()
    http: HttpSettings = HttpSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertsSettings = AlertsSettings()
    models: list[ModelSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique, repeated: {duplicates}")
        return self

    def model(self, name: str) -> ModelSettings:
        """The settings of the model called `name`."""
        for candidate in self.models:
            if candidate.name == name:
                return candidate
        raise ConfigError(f"no model named {name!r} in the configuration")


def _location(loc: tuple[Any, ...], data: Any) -> str:
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and 0 <= item < len(node):
                name = node[item].get("name") if isinstance(node[item], dict) else None
                label = f"[{item}]" if name is None else f"[{item}] ({name})"
                node = node[item]
            else:
                node = None
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"


def parse_settings(data: Any, *, source: str = "driftline.yaml", base_dir: Path | None = None,
                   environ: dict[str, str] | None = None) -> Settings:
    """Validate a parsed YAML document into `Settings`.

    Environment overrides: ``KAFKA_BOOTSTRAP_SERVERS`` and ``DRIFTLINE_DATABASE_URL``.

    Raises:
        ConfigError: Naming the file, the key and the problem.
    """
    env = os.environ if environ is None else environ
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _location(tuple(first["loc"]), data)
        message = first["msg"].removeprefix("Value error, ")
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(f"{source}: {where}: {message}{suffix}") from exc
    updates: dict[str, Any] = {}
    if env.get("DRIFTLINE_DATABASE_URL"):
        updates["database_url"] = env["DRIFTLINE_DATABASE_URL"]
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        updates["kafka"] = settings.kafka.model_copy(
            update={"bootstrap_servers": env["KAFKA_BOOTSTRAP_SERVERS"]}
        )
    if base_dir is not None:
        updates["models"] = [
            m.model_copy(update={"reference": m.reference.model_copy(
                update={"path": (base_dir / m.reference.path).resolve()})})
            for m in settings.models
        ]
    return settings.model_copy(update=updates) if updates else settings


def load_settings(path: str | Path, *, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate a configuration file.

    Raises:
        ConfigError: When the file is missing, not YAML, or invalid.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the configuration file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{file}: not valid YAML{where}") from exc
    return parse_settings(data, source=str(file), base_dir=file.parent.resolve(), environ=environ)
