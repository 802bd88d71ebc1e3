"""`driftline check-config`: all that can be known of a configuration without services.

No broker, database server or webhook receiver is contacted.

Pydantic validation (`collector.config`) catches what one key can say about itself; the
checks here read the reference files and the environment: the reference exists, has rows
and every configured feature, each feature's kind fits its column, the database driver is
installed, the secrets' variables are set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from collector.config import ModelSettings, Settings
from collector.errors import ConfigError, ReferenceDataError
from collector.reference import read_table
from detectors.columns import kind_mismatch

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One finding of the check: where, what, and whether it stops the service."""

    level: Level
    where: str
    message: str

    def line(self) -> str:
        """The one line printed for this problem."""
        return f"{self.level}: {self.where}: {self.message}"


def check_database(url: str) -> list[Problem]:
    """The URL's dialect and driver are installed (nothing is connected to)."""
    try:
        dialect = make_url(url).get_dialect()
        dialect.import_dbapi()
    except (ArgumentError, NoSuchModuleError) as exc:
        return [Problem("error", "database_url", f"{exc}")]
    except ImportError as exc:
        return [Problem("error", "database_url",
                        f"the driver of {make_url(url).drivername} is not installed "
                        f"({exc.name or exc}); install it or use another URL")]
    return []


def check_model(model: ModelSettings, index: int) -> list[Problem]:
    """The reference of one model: readable, with rows, every feature, kinds that fit."""
    where = f"models[{index}] ({model.name}).reference"
    path = model.reference.path
    try:
        frame = read_table(path, model.reference.format)
    except ReferenceDataError as exc:
        return [Problem("error", where, str(exc))]
    columns = {str(c): c for c in frame.columns}
    problems = []
    kinds = dict(model.features)
    if model.prediction is not None and "prediction" in columns:
        kinds["prediction"] = model.prediction
    for feature, kind in kinds.items():
        if feature not in columns:
            problems.append(Problem("error", where, f"{path} lacks the feature {feature!r} "
                                                    f"(its columns: {sorted(columns)[:20]})"))
            continue
        column = frame[columns[feature]]
        if column.notna().sum() == 0:
            problems.append(Problem("warning", where, f"{feature!r} has no values in {path}"))
        elif kind == "numeric" and kind_mismatch(kind, column):
            # (A categorical column of numbers is a column of codes, which is fine.)
            problems.append(Problem(
                "error", where,
                f"feature {feature!r} is declared numeric but its column in {path} holds "
                "text; declare it categorical or fix the file"))
    problems.extend(_check_performance(model, frame, where))
    return problems


def _check_performance(model: ModelSettings, frame: pd.DataFrame, where: str) -> list[Problem]:
    """The reference columns performance and its estimate read (warnings: drift still runs)."""
    perf = model.performance
    problems = []
    wants_labels = model.label is not None or "performance" in model.model_fields_set
    if wants_labels and perf.reference_target not in frame.columns:
        problems.append(Problem(
            "warning", where, f"no label column {perf.reference_target!r} in the reference: "
            "no reference performance and no performance estimate (set "
            "performance.reference_target)"))
    named = list((perf.reference_scores or {}).values())
    if perf.reference_score:
        named.append(perf.reference_score)
    for column in named:
        if column not in frame.columns:
            problems.append(Problem("error", where, f"performance names the score column "
                                                    f"{column!r}, which the reference lacks"))
    for key in model.segments.by:
        if not key.startswith("tags.") and key not in frame.columns:
            problems.append(Problem("error", where, f"segments.by names {key!r}, which the "
                                                    "reference lacks"))
    return problems


def check_secrets(settings: Settings, environ: Mapping[str, str], *, strict: bool) -> list[Problem]:
    """Every secret variable named in the file is set (an error with `strict`)."""
    problems = []
    for index, model in enumerate(settings.models):
        hook = model.retraining_webhook
        if hook is not None and not environ.get(hook.secret_env):
            problems.append(Problem(
                "error" if strict else "warning",
                f"models[{index}] ({model.name}).retraining_webhook.secret_env",
                f"environment variable {hook.secret_env} is not set; `serve` refuses to start "
                "without it (set it to a Standard Webhooks secret such as whsec_<base64>)"))
    for name, channel in settings.channels.items():
        for variable in channel.secret_variables():
            if not environ.get(variable):
                problems.append(Problem(
                    "error" if strict else "warning", f"channels.{name}",
                    f"environment variable {variable} is not set; `serve` refuses to start "
                    "without it"))
    uses_rules = any(model.alerts for model in settings.models)
    if uses_rules and not environ.get(settings.api.token_env):
        problems.append(Problem(
            "warning", "api.token_env",
            f"environment variable {settings.api.token_env} is not set: the write endpoints "
            "(silencing an alert) answer 401 until it is"))
    return problems


def check_sources(settings: Settings) -> list[Problem]:
    """The sources' decoders load, their feature names fit, the loggers can reach the endpoint."""
    from collector.sources.registry import build_decoders

    problems = []
    for index, source in enumerate(settings.sources):
        where = f"sources[{index}] ({source.name})"
        try:
            build_decoders([source])
        except (ConfigError, ValueError) as exc:
            problems.append(Problem("error", where, str(exc).split(": ", 1)[-1]))
        for model, names in source.feature_names.items():
            declared = settings.model(model).features
            unknown = [n for n in names if n not in declared]
            if unknown:
                problems.append(Problem("warning", f"{where}.feature_names.{model}", (
                    f"{unknown} are not features of {model} (declared: {sorted(declared)}); "
                    "those columns are stored but not monitored")))
    loopback = settings.http.host in ("127.0.0.1", "localhost", "::1")
    if loopback and any(s.kind == "cloudevents" for s in settings.sources):
        problems.append(Problem("warning", "http.host", (
            f"the CloudEvents endpoint listens on {settings.http.host} only: the KServe and "
            "Seldon loggers post from other pods; set http.host to 0.0.0.0")))
    return problems


def check_settings(settings: Settings, environ: Mapping[str, str], *, strict: bool = False
                   ) -> list[Problem]:
    """Every problem found in a validated configuration, errors and warnings."""
    problems = check_database(settings.database_url)
    for index, model in enumerate(settings.models):
        problems.extend(check_model(model, index))
    problems.extend(check_secrets(settings, environ, strict=strict))
    problems.extend(check_sources(settings))
    return problems
