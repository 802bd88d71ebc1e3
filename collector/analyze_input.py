"""What `driftline analyze` computes on: a model's settings and a run's input, from files and flags.

Without `--config` the settings are made from the flags (model name `analyze`): the
features are the reference's columns (or `--columns`) other than the target, prediction
and score columns, their kinds inferred as `ReferenceProfile.fit` infers them. With
`--config` they are the model's own. Either way the flags override the drift and
performance settings where given, and the run is `collector.run.compute_run`, the
service's own computation.

Column roles, the same name in both files: `--target` (the labels; an empty cell is an
unlabelled row), `--prediction` (a class, or a value for regression), `--score` (the
positive class's score), `--scores` (one score column per class), `--segment`
(performance per group of a column). The prediction or score column is read as the
service's `prediction` column, and drift-tested beside the features as the prediction.
With `--config` the current file's columns are named as in the service: the features,
`prediction`, and the label column `performance.reference_target` (default `label`); a
segment `tags.<name>` reads the column `tags.<name>`, else `<name>`. A current column that
is neither a feature, nor a role, nor in the reference is an unknown column of the data
quality.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from collector.config import (
    DriftSettings,
    ModelSettings,
    PerformanceSettings,
    ReferenceSettings,
    SegmentSettings,
)
from collector.errors import CollectorError, ConfigError, ReferenceDataError
from collector.reference import (
    PREDICTION_COLUMN,
    ModelReference,
    canonical_classes,
    class_key,
    fit_model_profile,
    read_table,
)
from collector.run import RunInput
from detectors import DetectorError, DriftOptions
from detectors.profile import infer_kind

ANALYZE_MODEL = "analyze"
_DRIFT_FLAGS = ("numeric_method", "categorical_method", "p_value_threshold",
                "distance_threshold", "threshold", "drift_share", "min_samples")


class AnalyzeInputError(CollectorError):
    """The files or options given to `driftline analyze` cannot be used."""


@dataclass(frozen=True)
class Roles:
    """The columns given a role, as the files name them (before `prediction` renaming)."""

    target: str | None = None
    prediction: str | None = None
    scores: Mapping[str, str] = field(default_factory=dict)
    segments: Mapping[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> set[str]:
        """Every column with a role other than segment (those stay features)."""
        named = {self.target, self.prediction, *self.scores.values()}
        return {c for c in named if c is not None}


@dataclass(frozen=True)
class Analysis:
    """The model's settings, its fitted reference and the run's input."""

    model: ModelSettings
    reference: ModelReference
    data: RunInput


def flag_names(message: str) -> str:
    """Name the options as the command line spells them."""
    for option in ("p_value_threshold", "distance_threshold", "drift_share", "min_samples",
                   "positive_label", "threshold"):
        if message.startswith(option):
            return "--" + option.replace("_", "-") + message[len(option):]
    return message


def _read(path_text: str, role: str, file_format: Any = "auto") -> pd.DataFrame:
    try:
        frame = read_table(Path(path_text), file_format)
    except ReferenceDataError as exc:
        raise AnalyzeInputError(f"--{role}: {exc}") from exc
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _config_model(args: argparse.Namespace) -> ModelSettings | None:
    if args.config is None:
        if args.model is not None:
            raise AnalyzeInputError("--model needs --config (the file that declares it)")
        return None
    from collector.config import load_settings

    settings = load_settings(args.config)
    if args.model is None:
        if len(settings.models) != 1:
            raise ConfigError(f"{args.config}: name the model with --model (it has "
                              f"{len(settings.models)}: "
                              f"{', '.join(m.name for m in settings.models)})")
        return settings.models[0]
    return settings.model(args.model)


def drift_settings(args: argparse.Namespace, base: DriftSettings) -> DriftSettings:
    """The drift settings with the flags given, checked as the detectors check them."""
    flags = {k: getattr(args, k) for k in _DRIFT_FLAGS if getattr(args, k) is not None}
    merged = base.model_copy(update=flags)
    try:
        DriftOptions(
            numeric_method=merged.numeric_method, categorical_method=merged.categorical_method,
            methods=dict(merged.methods), p_value_threshold=merged.p_value_threshold,
            distance_threshold=merged.distance_threshold, threshold=merged.threshold,
            thresholds=dict(merged.thresholds), drift_share=merged.drift_share,
            min_samples=merged.min_samples, correction=merged.correction,
            min_effect_size=merged.min_effect_size)
    except DetectorError as exc:
        raise AnalyzeInputError(flag_names(str(exc))) from exc
    return merged


def parse_scores(text: str) -> dict[str, str]:
    """`CLASS=COLUMN,...` as {class: column}, in the order given.

    Examples:
        >>> parse_scores("a=p_a, b=p_b")
        {'a': 'p_a', 'b': 'p_b'}
    """
    pairs: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        name, _, column = (s.strip() for s in item.partition("="))
        if not name or not column:
            raise AnalyzeInputError(f"--scores: {item!r} is not CLASS=COLUMN (e.g. "
                                    "--scores setosa=p_setosa,versicolor=p_versicolor)")
        if name in pairs:
            raise AnalyzeInputError(f"--scores names the class {name!r} twice")
        pairs[name] = column
    if len(pairs) < 2:
        raise AnalyzeInputError("--scores needs a column for each of at least two classes")
    return pairs


def _roles(args: argparse.Namespace, config: ModelSettings | None) -> Roles:
    if args.task == "regression" and (args.score or args.scores):
        raise AnalyzeInputError("--score and --scores are for classification; give "
                                "--prediction for regression")
    target = args.target or (config.performance.reference_target if config else None)
    prediction = args.prediction or args.score
    if prediction is None and config is not None and not args.scores:
        prediction = PREDICTION_COLUMN
    segments = {c: c for c in args.segment or ()}
    if config is not None and not segments:
        segments = {key: key for key in config.segments.by}
    return Roles(target, prediction, parse_scores(args.scores) if args.scores else {},
                 segments)


def _check_columns(args: argparse.Namespace, roles: Roles, reference: pd.DataFrame,
                   current: pd.DataFrame) -> dict[str, str]:
    """Refuse role columns the files lack; returns {segment key: current column}."""
    def listing() -> str:
        names = list(current.columns)
        return ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")

    if args.target and args.target not in reference and args.target not in current:
        raise AnalyzeInputError(f"--target: column {args.target!r} is in neither file")
    flagged = [("--prediction", args.prediction), ("--score", args.score)]
    flagged += [("--scores", column) for column in roles.scores.values()]
    for flag, column in flagged:
        if column is not None and column not in current:
            raise AnalyzeInputError(f"{flag}: column {column!r} is not in the current file "
                                    f"(its columns: {listing()})")
    found: dict[str, str] = {}
    for key in roles.segments:
        column = key if key in current or not key.startswith("tags.") else key[5:]
        if column in current:
            found[key] = column
        elif args.segment:
            raise AnalyzeInputError(f"--segment: column {key!r} is not in the current file "
                                    f"(its columns: {listing()})")
    return found


def _as_prediction(column: str | None, frames: list[pd.DataFrame]) -> list[pd.DataFrame]:
    """The frames with the prediction or score column named as the service names it."""
    if column is None or column == PREDICTION_COLUMN:
        return frames
    renamed = []
    for frame in frames:
        if column in frame and PREDICTION_COLUMN in frame:
            raise AnalyzeInputError(f"the files have a column {PREDICTION_COLUMN!r} besides "
                                    f"the prediction column {column!r}; rename one of them")
        renamed.append(frame.rename(columns={column: PREDICTION_COLUMN}))
    return renamed


def _positive_label(text: str, target: str | None, frames: list[pd.DataFrame]) -> Any:
    """The label `--positive-label` names, typed as the labels are (1, not "1")."""
    observed: list[Any] = []
    for frame in frames:
        if target is not None and target in frame:
            observed += canonical_classes(pd.unique(frame[target].dropna()))
    for value in observed:
        if class_key(value) == text:
            return value
    if observed:
        shown = sorted({class_key(v) for v in observed})
        raise AnalyzeInputError(f"--positive-label {text!r} is not one of the labels "
                                f"{shown[:10]}{' ...' if len(shown) > 10 else ''}")
    return int(text) if text.lstrip("-").isdigit() else text


def _performance(args: argparse.Namespace, base: PerformanceSettings, roles: Roles,
                 task: str, frames: list[pd.DataFrame]) -> PerformanceSettings:
    update: dict[str, Any] = {}
    if args.target:
        update["reference_target"] = args.target
    if args.score:
        update.update(prediction_type="score", reference_score=None, reference_scores=None)
    elif args.prediction and task == "classification":
        update["prediction_type"] = "class"
    elif roles.scores:
        update.update(prediction_type="scores", reference_score=None,
                      reference_scores=dict(roles.scores))
        if roles.target is None or roles.target not in frames[0]:
            # No labels in the reference: the class order is the order given.
            update["classes"] = base.classes or list(roles.scores)
    if args.positive_label is not None and task == "classification":
        update["positive_label"] = _positive_label(args.positive_label, roles.target, frames)
    return base.model_copy(update=update)


def _features(args: argparse.Namespace, config: ModelSettings | None, roles: Roles,
              reference: pd.DataFrame) -> dict[str, Any]:
    wanted = [c.strip() for c in (args.columns or "").split(",") if c.strip()]
    unknown = [c for c in wanted if c not in reference.columns]
    if unknown:
        raise AnalyzeInputError(f"--columns: {unknown} not in the reference")
    if config is not None:
        return {c: k for c, k in config.features.items() if not wanted or c in wanted}
    taken = roles.columns | ({PREDICTION_COLUMN} if roles.prediction else set())
    chosen = [c for c in (wanted or list(reference.columns)) if c not in taken]
    if not chosen:
        raise AnalyzeInputError("no feature left to compare: every column is the target, "
                                "a prediction or a score")
    return {c: infer_kind(reference[c]) for c in chosen}


def _settings(args: argparse.Namespace, config: ModelSettings | None, roles: Roles,
              features: dict[str, Any], frames: list[pd.DataFrame], source: str,
              drift: DriftSettings, segments: list[str]) -> ModelSettings:
    task = args.task or (config.task if config else "classification")
    reference, _ = frames
    if config is None:
        kind = None
        if roles.prediction and PREDICTION_COLUMN in reference:
            kind = ("categorical" if task == "classification" and args.prediction
                    else infer_kind(reference[PREDICTION_COLUMN]))
        try:
            base = ModelSettings(name=ANALYZE_MODEL, task=task, features=features,
                                 prediction=kind,
                                 reference=ReferenceSettings(path=Path(source)))
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise AnalyzeInputError(f"cannot model the files: {problem}") from exc
    else:
        base = config
    return base.model_copy(update={
        "task": task, "features": features,
        "drift": drift,
        "performance": _performance(args, base.performance, roles, task, frames),
        "segments": SegmentSettings(by=segments, max_groups=base.segments.max_groups),
    })


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and value != value)


def _values(column: pd.Series) -> list[Any]:
    return [None if _missing(v) else v for v in column.tolist()]


def _score_rows(model: ModelSettings, reference: ModelReference, roles: Roles,
                current: pd.DataFrame) -> list[Any]:
    """Rows of the class score columns in the reference's class order."""
    classes = list(reference.classes or ())
    keys = {class_key(c) for c in classes}
    given = {class_key(k): column for k, column in roles.scores.items()}
    unknown = [k for k in roles.scores if class_key(k) not in keys]
    lacking = [c for c in classes if class_key(c) not in given]
    where = ("performance.classes" if model.performance.classes is not None
             else f"the reference's labels in {model.performance.reference_target!r}")
    shown = [class_key(c) for c in classes]
    if unknown:
        raise AnalyzeInputError(f"--scores: the classes {unknown} are not among the "
                                f"classes {shown} ({where})")
    if lacking:
        raise AnalyzeInputError(f"--scores: no column for the classes "
                                f"{[class_key(c) for c in lacking]} (the classes {shown}, "
                                f"{where})")
    columns = [given[class_key(c)] for c in classes]
    scores = current[columns].apply(pd.to_numeric, errors="coerce")
    return [list(row) for row in scores.to_numpy(dtype=float)]


def run_input(model: ModelSettings, reference: ModelReference, roles: Roles,
              current: pd.DataFrame, reference_columns: set[str],
              segments: Mapping[str, str]) -> RunInput:
    """The current file as a run's window (see the module docstring for the columns)."""
    present = [c for c in model.features if c in current]
    if roles.scores:
        predictions = _score_rows(model, reference, roles, current)
    elif PREDICTION_COLUMN in current:
        predictions = _values(current[PREDICTION_COLUMN])
    else:
        predictions = [None] * len(current)
    target = roles.target
    labels = _values(current[target]) if target is not None and target in current else None
    known = set(present) | roles.columns | {PREDICTION_COLUMN} | reference_columns
    unknown = {c: int(current[c].notna().sum()) for c in current.columns
               if c not in known and c not in segments.values()}
    return RunInput(features=current[present], predictions=predictions, labels=labels,
                    segment_values={k: current[c].tolist() for k, c in segments.items()},
                    unknown_fields={c: n for c, n in unknown.items() if n})


def _fit(model: ModelSettings, frame: pd.DataFrame, source: str, *, labelled: bool
         ) -> ModelReference:
    """The fitted reference; without a target, its drift profile only.

    A column that happens to be called `label` is then a feature like any other, never
    the labels of a performance nobody asked for.
    """
    if labelled:
        return ModelReference.fit(model, frame, source)
    classes = model.performance.classes
    return ModelReference(fit_model_profile(model, frame, source),
                          tuple(canonical_classes(classes)) if classes else None)


def prepare(args: argparse.Namespace) -> Analysis:
    """Read the files, make the settings, fit the reference, build the run's input.

    Raises:
        AnalyzeInputError: A file, flag or column cannot be used (one line).
        ConfigError: `--config` cannot be read or names no such model.
    """
    config = _config_model(args)
    drift = drift_settings(args, config.drift if config is not None else DriftSettings())
    if args.reference is not None:
        reference_frame, source = _read(args.reference, "reference"), args.reference
    elif config is not None:
        source = str(config.reference.path)
        reference_frame = _read(source, "reference", config.reference.format)
    else:
        raise AnalyzeInputError("give --reference (or --config, whose model names its reference)")
    current = _read(args.current, "current")
    roles = _roles(args, config)
    segments = _check_columns(args, roles, reference_frame, current)
    features = _features(args, config, roles, reference_frame)
    if not set(features) & set(current.columns):
        names = list(features)
        raise AnalyzeInputError(
            f"the current file has none of the columns to compare ({', '.join(names[:10])}"
            f"{', ...' if len(names) > 10 else ''}): the files share no columns to compare")
    reference_frame, current = _as_prediction(roles.prediction, [reference_frame, current])
    model = _settings(args, config, roles, features, [reference_frame, current], source,
                      drift, list(segments))
    try:
        fitted = _fit(model, reference_frame, source, labelled=roles.target is not None)
    except ReferenceDataError as exc:
        raise AnalyzeInputError(str(exc)) from exc
    except DetectorError as exc:
        raise AnalyzeInputError(f"the reference's labels: {flag_names(str(exc))}") from exc
    data = run_input(model, fitted, roles, current, set(reference_frame.columns), segments)
    return Analysis(model, fitted, data)
