"""The driftline.yaml configuration: models, Kafka, store, HTTP, metrics.

Validated with pydantic. A bad file yields one `ConfigError` whose message
names the file, the key path and the problem; the CLI prints it and exits 2.
Paths inside the file (reference datasets) are relative to the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from alerts.rules import AlertRule
from collector.config_alerts import ApiSettings, ChannelSettings, RuleSettings
from collector.config_sources import SourceSettings, check_sources
from collector.errors import ConfigError
from collector.events import MAX_EVENT_BYTES
from detectors import DetectorError, DriftOptions, UnknownMethodError, methods_for
from detectors.select import method

FeatureKind = Literal["numeric", "categorical"]
Task = Literal["classification", "regression"]
DEFAULT_DATABASE_URL = "sqlite+pysqlite:///.driftline/driftline.db"


def _method_problem(name: str, kind: str) -> str:
    """Why `name` is not a valid drift method for `kind` columns (one line)."""
    try:
        method(name, kind)  # type: ignore[arg-type]
    except UnknownMethodError as exc:
        return str(exc)
    return f"{name!r} is not a valid method for {kind} columns"


def _drift_options(drift: DriftSettings, kinds: Mapping[str, str],
                   methods: Mapping[str, str]) -> None:
    """Check the thresholds with the detectors' own rules, each in its method's family.

    Per-feature thresholds are checked in the family of the feature's method when it is
    known here: the feature's own method, or the global method of its kind.
    """
    explicit: dict[str, str] = {}
    for feature, kind in kinds.items():
        chosen = methods.get(feature) or (
            drift.numeric_method if kind == "numeric" else drift.categorical_method)
        if chosen != "auto":
            explicit[feature] = chosen
    try:
        DriftOptions(
            numeric_method=drift.numeric_method, categorical_method=drift.categorical_method,
            methods=explicit, p_value_threshold=drift.p_value_threshold,
            distance_threshold=drift.distance_threshold, threshold=drift.threshold,
            thresholds=dict(drift.thresholds), drift_share=drift.drift_share,
            min_samples=drift.min_samples, correction=drift.correction,
            min_effect_size=drift.min_effect_size,
        )
    except DetectorError as exc:
        raise ValueError(str(exc)) from exc


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_bootstrap_servers(value: str) -> str:
    """`host:port[,host:port...]`, each port in 1-65535."""
    servers = [part.strip() for part in value.split(",")]
    if not value.strip() or any(not part for part in servers):
        raise ValueError("give one or more host:port pairs separated by commas, "
                         f"got {value!r}")
    for server in servers:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{server!r} is not a host:port pair (e.g. 127.0.0.1:9092)")
    return value


def _check_http_url(value: str) -> str:
    """An absolute http(s) URL with a host."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an absolute http:// or https:// URL with a host, "
                         f"got {value!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"url {value!r} has an invalid port") from exc
    return value


def _check_database_url(value: str) -> str:
    """A URL SQLAlchemy can parse (whether its driver is installed is `check-config`'s)."""
    try:
        make_url(value)
    except ArgumentError as exc:
        raise ValueError(
            f"{value!r} is not a database URL; use e.g. sqlite+pysqlite:///path.db or "
            "postgresql+psycopg://user@host/db"
        ) from exc
    return value


class RetentionSettings(_Strict):
    """How long raw events are kept, and how the store keeps its size (docs/storage.md)."""

    # Prediction batches and labels older than this are deleted; runs and results stay.
    raw_days: Annotated[float, Field(gt=0, le=3650)] = 7.0
    # How often one of the collectors deletes, compacts and vacuums.
    every_seconds: Annotated[float, Field(ge=1, le=86_400)] = 300.0
    # Small batches are merged into batches of up to this many events ...
    compact_events: Annotated[int, Field(ge=1000, le=1_000_000)] = 50_000
    # ... once they are this old (the newest batches stay as ingest wrote them).
    compact_after_seconds: Annotated[float, Field(ge=0, le=86_400)] = 60.0


class KafkaSettings(_Strict):
    """Where ingest reads from and where dead letters go."""

    bootstrap_servers: Annotated[str, AfterValidator(_check_bootstrap_servers)] = "127.0.0.1:9092"
    predictions_topic: str = "driftline.predictions"
    labels_topic: str = "driftline.labels"
    deadletter_topic: str = "driftline.deadletter"
    group_id: str = "driftline-collector"
    max_event_bytes: Annotated[int, Field(gt=0)] = MAX_EVENT_BYTES
    # Events per poll, hence per stored batch and transaction (compaction merges small ones).
    max_poll_records: Annotated[int, Field(gt=0, le=100_000)] = 2000
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
    """How drift is decided for a model.

    Thresholds mean one thing per method family (see `detectors.DriftOptions`):
    `p_value_threshold` in (0, 1) for p-value tests, `distance_threshold` > 0 for distances,
    `thresholds` per feature in the family of that feature's method; `threshold` is the
    shorthand that applies to the family of the method it is given with.
    """

    numeric_method: str = "auto"
    categorical_method: str = "auto"
    methods: dict[str, str] = Field(default_factory=dict)
    p_value_threshold: float | None = None
    distance_threshold: float | None = None
    threshold: float | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_samples: Annotated[int, Field(ge=1)] = 30
    correction: Literal["bonferroni", "holm", "bh"] | None = None
    min_effect_size: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _methods_and_thresholds(self) -> DriftSettings:
        for key, kind in (("numeric_method", "numeric"), ("categorical_method", "categorical")):
            name = getattr(self, key)
            if name != "auto" and name not in methods_for(kind):  # type: ignore[arg-type]
                raise ValueError(f"{key}: {_method_problem(name, kind)}")
        _drift_options(self, {}, {})
        return self


class WebhookSettings(_Strict):
    """The retraining webhook called when a run's dataset verdict is drift."""

    url: Annotated[str, AfterValidator(_check_http_url)]
    secret_env: str = "DRIFTLINE_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a secret
    cooldown_seconds: Annotated[float, Field(ge=0)] = 3600.0
    timeout_seconds: Annotated[float, Field(gt=0)] = 10.0

    def secret(self, environ: Mapping[str, str] | None = None) -> str:
        """The signing secret, read from the environment variable named in the config."""
        value = (os.environ if environ is None else environ).get(self.secret_env)
        if not value:
            raise ConfigError(
                f"retraining_webhook.secret_env: environment variable {self.secret_env} is "
                "not set; set it to a Standard Webhooks secret such as whsec_<base64>"
            )
        return value


def _check_bucket(value: str) -> str:
    """A pandas frequency of fixed length: 15min, 1h, 6h, 1D..."""
    try:
        width = pd.Timedelta(value)
    except ValueError as exc:
        raise ValueError(f"bucket must be a duration such as 1h or 1D, got {value!r}") from exc
    if width <= pd.Timedelta(0):
        raise ValueError(f"bucket must be positive, got {value!r}")
    return value


class PerformanceSettings(_Strict):
    """How predictions and labels are read for realized and estimated performance.

    `prediction_type`: `score` (binary: the positive class's score), `class` (a predicted
    class), `scores` (a list of class scores in `classes` order), or `auto` (a list is
    `scores`; for classification, numbers other than the classes are a `score`; else
    `class`). In the reference dataset the label is the column `reference_target`, a
    binary score the column `reference_score` (default: `prediction` when numeric), class
    scores the columns `reference_scores` (class: column); CBPE is fitted on them.
    """

    prediction_type: Literal["auto", "score", "class", "scores"] = "auto"
    classes: list[Any] | None = None
    positive_label: Any = 1
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    bucket: Annotated[str, AfterValidator(_check_bucket)] = "1h"
    reference_target: str = "label"
    reference_score: str | None = None
    reference_scores: dict[str, str] | None = None
    estimate: bool = True

    @model_validator(mode="after")
    def _classes(self) -> PerformanceSettings:
        if self.classes is not None and len(self.classes) < 2:
            raise ValueError("classes must list at least two classes")
        if self.classes is not None and len({str(c) for c in self.classes}) != len(self.classes):
            raise ValueError("classes must be distinct")
        return self


class QualitySettings(_Strict):
    """Data-quality thresholds per check: a feature breaches when its share exceeds one."""

    missing_share: Annotated[float, Field(ge=0, le=1)] | None = 0.1
    type_mismatch_share: Annotated[float, Field(ge=0, le=1)] | None = 0.0
    non_finite_share: Annotated[float, Field(ge=0, le=1)] | None = 0.0
    out_of_range_share: Annotated[float, Field(ge=0, le=1)] | None = 0.05
    new_category_share: Annotated[float, Field(ge=0, le=1)] | None = 0.05


class SegmentSettings(_Strict):
    """Keys to split performance by (a feature, or `tags.<name>`), capped in groups."""

    by: list[str] = Field(default_factory=list)
    max_groups: Annotated[int, Field(ge=2, le=1000)] = 20


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
    performance: PerformanceSettings = PerformanceSettings()
    quality: QualitySettings = QualitySettings()
    segments: SegmentSettings = SegmentSettings()
    alerts: list[RuleSettings] = Field(default_factory=list)
    retraining_webhook: WebhookSettings | None = None

    def alert_rules(self) -> list[AlertRule]:
        """The model's rules as the alert engine takes them."""
        return [rule.to_rule(self.name) for rule in self.alerts]

    @model_validator(mode="after")
    def _features(self) -> ModelSettings:
        if not self.features:
            raise ValueError("features must name at least one feature")
        kinds: dict[str, str] = dict(self.features)
        if self.prediction is not None:
            kinds["prediction"] = self.prediction
        for key in ("methods", "thresholds"):
            unknown = set(getattr(self.drift, key)) - set(kinds)
            if unknown:
                raise ValueError(f"drift.{key} names unknown features: {sorted(unknown)} "
                                 f"(features: {sorted(kinds)})")
        for feature, name in self.drift.methods.items():
            if name != "auto" and name not in methods_for(kinds[feature]):  # type: ignore[arg-type]
                raise ValueError(f"drift.methods.{feature}: {feature} is {kinds[feature]}; "
                                 f"{_method_problem(name, kinds[feature])}")
        _drift_options(self.drift, kinds, self.drift.methods)
        names = [rule.name for rule in self.alerts]
        if len(set(names)) != len(names):
            raise ValueError(f"alerts: rule names must be unique within a model: {names}")
        for index, rule in enumerate(self.alerts):
            try:
                built = rule.to_rule(self.name)
            except ValueError as exc:
                raise ValueError(f"alerts[{index}]: {exc}") from exc
            strangers = [f for f in built.features if f not in kinds]
            if strangers:
                raise ValueError(f"alerts[{index}] ({rule.name}): features {strangers} are not "
                                 "features of the model")
            if built.retrain and self.retraining_webhook is None:
                raise ValueError(f"alerts[{index}] ({rule.name}): retrain needs the model's "
                                 "retraining_webhook")
        for key in self.segments.by:
            if not key.startswith("tags.") and key not in self.features:
                raise ValueError(f"segments.by: {key!r} is neither a feature nor tags.<name> "
                                 f"(features: {sorted(self.features)})")
        return self


class Settings(_Strict):
    """The whole configuration file."""

    database_url: Annotated[str, AfterValidator(_check_database_url)] = DEFAULT_DATABASE_URL
    kafka: KafkaSettings = KafkaSettings()
    retention: RetentionSettings = RetentionSettings()
    http: HttpSettings = HttpSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertsSettings = AlertsSettings()
    api: ApiSettings = ApiSettings()
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    models: list[ModelSettings] = Field(default_factory=list)
    # Model servers' own loggers read as sources (collector/config_sources.py).
    sources: list[SourceSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        if not self.models:
            raise ValueError("models: declare at least one model to monitor")
        for model in self.models:
            for rule in model.alerts:
                unknown = [c for c in rule.channels if c not in self.channels]
                if unknown:
                    raise ValueError(
                        f"model {model.name}, rule {rule.name}: unknown channels {unknown} "
                        f"(declared: {sorted(self.channels) or 'none'})")
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique, repeated: {duplicates}")
        check_sources(self.sources, model_names=set(names), reserved_topics={
            self.kafka.predictions_topic, self.kafka.labels_topic, self.kafka.deadletter_topic})
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


def database_url_from_environment(environ: Mapping[str, str]) -> str:
    """`DRIFTLINE_DATABASE_URL`, else the embedded SQLite file."""
    return environ.get("DRIFTLINE_DATABASE_URL") or DEFAULT_DATABASE_URL


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
        problems = []
        for error in exc.errors():
            where = _location(tuple(error["loc"]), data)
            problems.append(f"{source}: {where}: {error['msg'].removeprefix('Value error, ')}")
        more = len(problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ConfigError(problems[0] + suffix, problems) from exc
    updates: dict[str, Any] = {}
    try:
        if env.get("DRIFTLINE_DATABASE_URL"):
            updates["database_url"] = _check_database_url(env["DRIFTLINE_DATABASE_URL"])
        if env.get("KAFKA_BOOTSTRAP_SERVERS"):
            updates["kafka"] = settings.kafka.model_copy(update={
                "bootstrap_servers": _check_bootstrap_servers(env["KAFKA_BOOTSTRAP_SERVERS"])})
    except ValueError as exc:
        raise ConfigError(f"environment override of {source}: {exc}") from exc
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
