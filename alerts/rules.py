"""Alert rules, evaluated on every finished run (pure: no I/O, no clock).

A rule looks at a `RunSnapshot` (the run's result as its JSON, `collector.run.RunResult.
to_dict()`, plus the run's status and time) and says, per alert instance, whether the run
breaches it: `True`, `False`, or `None` when the run says nothing about it (a failed run, a
metric without labels yet). `None` leaves the instance's state alone: an empty window is not a
good run. The state machine (`alerts.state`) turns these observations into transitions.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from alerts.errors import AlertError

RuleKind = Literal[
    "dataset_drift", "feature_drift", "prediction_drift", "performance", "estimated_performance",
    "data_quality", "no_data", "labels_missing", "run_failed",
]
RULE_KINDS: tuple[str, ...] = (
    "dataset_drift", "feature_drift", "prediction_drift", "performance", "estimated_performance",
    "data_quality", "no_data", "labels_missing", "run_failed",
)
# Metrics where lower is better: "below" a threshold is good for them, "above" is a breach.
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "ece", "mae", "mse", "rmse", "mape", "msle",
                             "rmsle", "median_ae"})
CLASSIFICATION_METRICS = frozenset({
    "accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "log_loss",
    "brier", "ece", "precision_weighted", "recall_weighted", "f1_weighted"})
REGRESSION_METRICS = frozenset({"mae", "mse", "rmse", "mape", "msle", "rmsle", "median_ae",
                                "r2", "mean_error"})
ESTIMATED_METRICS = frozenset({"roc_auc", "f1", "precision", "recall", "accuracy"})
QUALITY_CHECKS = frozenset({"missing_share", "type_mismatch_share", "non_finite_share",
                            "out_of_range_share", "new_category_share"})
WINDOW_QUALITY_CHECKS = frozenset({"unknown_columns", "missing_columns"})


class RuleError(AlertError, ValueError):
    """A rule is not valid (unknown metric, threshold out of range, unknown template field)."""


@dataclass(frozen=True)
class RunSnapshot:
    """What rules see of a finished run."""

    model: str
    run_id: str
    at: datetime
    status: str  # ok, insufficient_data, failed
    result: Mapping[str, Any] | None  # RunResult.to_dict(); None for a failed run
    error: str | None = None


@dataclass(frozen=True)
class Observation:
    """One alert instance's reading in one run."""

    key: Mapping[str, str]  # extra identity labels (feature) beside rule and model
    breached: bool | None
    values: Mapping[str, Any]


@dataclass(frozen=True)
class AlertRule:
    """One rule of one model (see docs/alerts.md for every key)."""

    name: str
    kind: RuleKind
    model: str
    channels: tuple[str, ...] = ()
    for_runs: int = 1
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    description: str = ""
    repeat_interval_seconds: float | None = None
    notify_resolved: bool = True
    retrain: bool = False
    metric: str | None = None
    below: float | None = None
    above: float | None = None
    drop: float | None = None  # relative worsening from the reference's value
    bound: Literal["value", "lower", "upper"] = "value"  # estimated_performance only
    features: tuple[str, ...] = ()
    check: str | None = None
    threshold: float | None = None
    duration_seconds: float | None = None
    min_coverage: float | None = None

    def __post_init__(self) -> None:
        _validate(self)

    def evaluate(self, run: RunSnapshot) -> list[Observation]:
        """The rule's observations on one run (one per instance)."""
        if self.kind == "run_failed":
            return [Observation({}, run.status == "failed", {"error": run.error})]
        result = run.result
        if run.status == "failed" or result is None:
            return [] if self.kind in _PER_FEATURE else [Observation({}, None, {})]
        return _EVALUATORS[self.kind](self, run, result)


_PER_FEATURE = frozenset({"feature_drift"})


def _validate(rule: AlertRule) -> None:
    where = f"alert rule {rule.name!r}"
    if not rule.name or not re.fullmatch(r"[A-Za-z0-9_.\-]+", rule.name):
        raise RuleError(f"{where}: name must be letters, digits, _ . -")
    if rule.kind not in RULE_KINDS:
        raise RuleError(f"{where}: kind must be one of {', '.join(RULE_KINDS)}")
    if rule.for_runs < 1:
        raise RuleError(f"{where}: for_runs must be at least 1, got {rule.for_runs}")
    if rule.repeat_interval_seconds is not None and not rule.repeat_interval_seconds > 0:
        raise RuleError(f"{where}: repeat_interval_seconds must be positive")
    for value, label in ((rule.below, "below"), (rule.above, "above"), (rule.drop, "drop"),
                         (rule.threshold, "threshold")):
        if value is not None and not math.isfinite(value):
            raise RuleError(f"{where}: {label} must be a finite number, got {value}")
    if rule.kind in ("performance", "estimated_performance"):
        known = (ESTIMATED_METRICS if rule.kind == "estimated_performance"
                 else CLASSIFICATION_METRICS | REGRESSION_METRICS)
        if rule.metric not in known:
            raise RuleError(f"{where}: metric must be one of {', '.join(sorted(known))}, "
                            f"got {rule.metric!r}")
        if sum(v is not None for v in (rule.below, rule.above, rule.drop)) != 1:
            raise RuleError(f"{where}: give exactly one of below, above or drop")
        if rule.drop is not None and not 0 < rule.drop < 1:
            raise RuleError(f"{where}: drop is a relative worsening in (0, 1), got {rule.drop}")
        if rule.metric in _RATES and any(v is not None and not 0 <= v <= 1
                                         for v in (rule.below, rule.above)):
            raise RuleError(f"{where}: {rule.metric} is in [0, 1]; the threshold is out of range")
    if rule.kind == "data_quality":
        if rule.check not in QUALITY_CHECKS | WINDOW_QUALITY_CHECKS:
            raise RuleError(f"{where}: check must be one of "
                            f"{', '.join(sorted(QUALITY_CHECKS | WINDOW_QUALITY_CHECKS))}")
        if rule.threshold is None or (rule.check in QUALITY_CHECKS
                                      and not 0 <= rule.threshold < 1):
            raise RuleError(f"{where}: threshold must be a share in [0, 1)")
    if rule.kind == "no_data" and not (rule.duration_seconds or 0) > 0:
        raise RuleError(f"{where}: no_data needs duration_seconds > 0")
    if rule.kind == "labels_missing":
        if rule.min_coverage is None or not 0 < rule.min_coverage <= 1:
            raise RuleError(f"{where}: labels_missing needs min_coverage in (0, 1]")
        if rule.duration_seconds is None or rule.duration_seconds < 0:
            raise RuleError(f"{where}: labels_missing needs duration_seconds >= 0 (the delay "
                            "after which labels are expected)")
    for text, label in ((rule.summary, "summary"), (rule.description, "description")):
        unknown = unknown_template_fields(text)
        if unknown:
            raise RuleError(f"{where}: {label} names unknown fields {unknown}; use fields of "
                            "the run result (docs/alerts.md)")


_RATES = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "average_precision",
                    "ece", "precision_weighted", "recall_weighted", "f1_weighted"})


# -- evaluators -------------------------------------------------------------------------------
def _dataset_drift(rule: AlertRule, run: RunSnapshot, r: Mapping[str, Any]) -> list[Observation]:
    if r.get("status") != "ok":
        return [Observation({}, None, {})]
    drifted = sorted(k for k, v in (r.get("features") or {}).items()
                     if k != "prediction" and v.get("drifted"))
    return [Observation({}, bool(r.get("dataset_drifted")), {
        "share_drifted": r.get("share_drifted"), "drift_share": r.get("drift_share"),
        "drifted_features": ", ".join(drifted)})]


def _feature_drift(rule: AlertRule, run: RunSnapshot, r: Mapping[str, Any]) -> list[Observation]:
    features = r.get("features") or {}
    names = rule.features or tuple(k for k in features if k != "prediction")
    out = []
    for name in names:
        found = features.get(name)
        if found is None or found.get("status") == "insufficient_data":
            out.append(Observation({"feature": name}, None, {}))
            continue
        out.append(Observation({"feature": name}, bool(found.get("drifted")), {
            "status": found.get("status"), "method": found.get("method"),
            "statistic": found.get("statistic"), "p_value": found.get("p_value"),
            "threshold": found.get("threshold")}))
    return out


def _prediction_drift(rule: AlertRule, run: RunSnapshot,
                      r: Mapping[str, Any]) -> list[Observation]:
    found = (r.get("features") or {}).get("prediction")
    if found is None or found.get("status") != "ok":
        return [Observation({}, None, {})]
    return [Observation({}, bool(found.get("drifted")), {
        "method": found.get("method"), "statistic": found.get("statistic"),
        "p_value": found.get("p_value"), "threshold": found.get("threshold")})]


def _compare(rule: AlertRule, value: float | None, reference: float | None
             ) -> tuple[bool | None, dict[str, Any]]:
    metric = rule.metric or ""
    if value is None:
        return None, {}
    values: dict[str, Any] = {metric: value}
    if rule.below is not None:
        values["below"] = rule.below
        return value < rule.below, values
    if rule.above is not None:
        values["above"] = rule.above
        return value > rule.above, values
    if reference is None or reference == 0:
        return None, values
    worse = ((value - reference) if metric in LOWER_IS_BETTER else (reference - value))
    relative = worse / abs(reference)
    values.update(reference=reference, relative_drop=relative, drop=rule.drop)
    return relative >= (rule.drop or 0.0), values


def _performance(rule: AlertRule, run: RunSnapshot, r: Mapping[str, Any]) -> list[Observation]:
    perf = r.get("performance") or {}
    value = (perf.get("metrics") or {}).get(rule.metric)
    reference = ((r.get("reference_performance") or {}).get("metrics") or {}).get(rule.metric)
    breached, values = _compare(rule, value, reference)
    if breached is not None:
        values["n_labelled"] = perf.get("n_labelled")
    return [Observation({}, breached, values)]


def _estimated(rule: AlertRule, run: RunSnapshot, r: Mapping[str, Any]) -> list[Observation]:
    metrics = (r.get("estimated_performance") or {}).get("metrics") or {}
    found = metrics.get(rule.metric) or {}
    reference = ((r.get("reference_performance") or {}).get("metrics") or {}).get(rule.metric)
    breached, values = _compare(rule, found.get(rule.bound), reference)
    if breached is not None:
        values.update(lower=found.get("lower"), upper=found.get("upper"))
    return [Observation({}, breached, values)]


def _data_quality(rule: AlertRule, run: RunSnapshot, r: Mapping[str, Any]) -> list[Observation]:
    quality = r.get("data_quality")
    if quality is None:
        return [Observation({}, None, {})]
    threshold = rule.threshold if rule.threshold is not None else 0.0
    if rule.check in WINDOW_QUALITY_CHECKS:
        names = list(quality.get(rule.check or "") or [])
        return [Observation({}, len(names) > threshold, {
            rule.check or "": ", ".join(map(str, names)), "count": len(names),
            "threshold": threshold})]
    features = quality.get("features") or {}
    out = []
    for name in rule.features or tuple(features):
        share = (features.get(name) or {}).get(rule.check or "")
        if share is None:
            out.append(Observation({"feature": name}, None, {}))
            continue
        out.append(Observation({"feature": name}, share > threshold,
                               {rule.check or "": share, "threshold": threshold}))
    return out


def _no_data(rule: AlertRule, run: RunSnapshot, r: Mapping[str, Any]) -> list[Observation]:
    window = r.get("window") or {}
    last = window.get("last_at")
    if not window.get("n_events") or last is None:
        return [Observation({}, True, {"last_event_at": None})]
    age = (run.at - datetime.fromisoformat(str(last).replace("Z", "+00:00"))).total_seconds()
    return [Observation({}, age >= (rule.duration_seconds or 0.0), {
        "last_event_at": last, "seconds_since_last_event": round(age, 3),
        "duration_seconds": rule.duration_seconds})]


def _labels_missing(rule: AlertRule, run: RunSnapshot,
                    r: Mapping[str, Any]) -> list[Observation]:
    """Breach when too few of the predictions older than `duration_seconds` have labels.

    Those are the predictions whose labels have had the time to arrive; the run computes
    their coverage when a labels_missing rule asks for that age (`window.coverage_after`).
    Without predictions that old the rule says nothing.
    """
    window = r.get("window") or {}
    found = (window.get("coverage_after") or {}).get(f"{rule.duration_seconds or 0.0:g}")
    if found is None or not found.get("n"):
        return [Observation({}, None, {})]
    coverage = found.get("label_coverage")
    return [Observation({}, coverage < (rule.min_coverage or 0.0), {
        "label_coverage": coverage, "min_coverage": rule.min_coverage,
        "n_predictions": found.get("n"), "n_labelled": found.get("n_labelled"),
        "after_seconds": rule.duration_seconds})]


_EVALUATORS = {
    "dataset_drift": _dataset_drift, "feature_drift": _feature_drift,
    "prediction_drift": _prediction_drift, "performance": _performance,
    "estimated_performance": _estimated, "data_quality": _data_quality,
    "no_data": _no_data, "labels_missing": _labels_missing,
}


# -- templates ----------------------------------------------------------------------------------
_ROOTS = {
    "model", "rule", "severity", "status", "run_id", "feature", "values", "summary",
    "dataset_drifted", "share_drifted", "drift_share", "n_current", "n_reference",
    "window", "performance", "reference_performance", "estimated_performance",
    "data_quality", "features", "versions", "segments",
}


def unknown_template_fields(template: str) -> list[str]:
    """Fields a template names that a run result never has.

    Fields are dotted paths into the run result (`performance.metrics.accuracy`,
    `window.label_coverage`, `features.amount.statistic`) or the alert's own fields
    (`model`, `rule`, `severity`, `feature`, `values.<name>`).

    Examples:
        >>> unknown_template_fields("{model}: accuracy {performance.metrics.accuracy:.3f}")
        []
        >>> unknown_template_fields("{modle} {performance.metric.accuracy}")
        ['modle', 'performance.metric.accuracy']
    """
    unknown = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise RuleError(f"template {template!r} is not valid: {exc}") from exc
    for _text, name, _spec, _conversion in parsed:
        if name is None:
            continue
        if not _known_path(name):
            unknown.append(name)
    return unknown


_PATHS = [
    r"(model|rule|severity|status|run_id|feature|summary)",
    r"values\.\w+",
    r"(dataset_drifted|share_drifted|drift_share|n_current|n_reference)",
    r"window\.(n_events|first_at|last_at|n_labelled|label_coverage|label_delay_median_seconds"
    r"|label_delay_p95_seconds)",
    r"(performance|reference_performance)\.(task|n_labelled|label_coverage|status)",
    r"(performance|reference_performance)\.metrics\.\w+",
    r"estimated_performance\.metrics\.\w+\.(value|lower|upper|sampling_error)",
    r"data_quality\.(unknown_columns|missing_columns)",
    r"data_quality\.features\.[^.]+\.\w+",
    r"features\.[^.]+\.(kind|method|status|statistic|p_value|threshold|drifted|effect_size"
    r"|n_reference|n_current)",
]


def _known_path(name: str) -> bool:
    return any(re.fullmatch(pattern, name) for pattern in _PATHS)


class _PathFormatter(string.Formatter):
    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
                  ) -> tuple[Any, str]:
        node: Any = kwargs
        for part in field_name.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        return _Missing() if node is None else node, field_name


class _Missing:
    """Renders as "n/a" under any format spec (a metric without labels yet)."""

    def __format__(self, spec: str) -> str:
        return "n/a"


def render(template: str, fields: Mapping[str, Any]) -> str:
    """Fill a template from the run result and the alert's fields (missing → "n/a").

    Examples:
        >>> render("{model}: {performance.metrics.accuracy:.2f}",
        ...        {"model": "fraud", "performance": {"metrics": {"accuracy": 0.8123}}})
        'fraud: 0.81'
        >>> render("{window.label_coverage:.0%}", {"window": {}})
        'n/a'
    """
    try:
        return _PathFormatter().vformat(template, (), fields)
    except (ValueError, TypeError):
        return template  # a format spec that does not fit the value: the template as written
