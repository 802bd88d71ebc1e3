"""`detect_drift`: every feature of a window against the fitted reference profile."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from detectors.categorical.counts import aligned_counts
from detectors.columns import (
    CategoricalWindow,
    NumericWindow,
    Window,
    kind_mismatch,
    text_counts,
)
from detectors.dataset import Correction, adjust_p_values, dataset_drifted
from detectors.errors import OptionsError, UnknownMethodError
from detectors.parallel import column_map
from detectors.profile import ColumnProfile, NumericProfile, ReferenceProfile
from detectors.report import (
    SCHEMA_STATUSES,
    ColumnKind,
    DriftReport,
    FeatureDrift,
    Status,
    finite_or_none,
)
from detectors.select import METHODS, Method, MethodFamily, auto_method, method, method_family

logger = logging.getLogger(__name__)


def _check_family_threshold(family: MethodFamily, value: float, name: str) -> None:
    if family == "p_value":
        if not (math.isfinite(value) and 0 < value < 1):
            raise OptionsError(
                f"{name} must be a p-value threshold in (0, 1), got {value} (a p-value test "
                "flags drift when p < threshold)"
            )
    elif not (math.isfinite(value) and value > 0):
        raise OptionsError(
            f"{name} must be a positive finite distance threshold, got {value} (a distance "
            "flags drift when statistic >= threshold)"
        )


@dataclass(frozen=True)
class DriftOptions:
    """How drift is decided.

    Thresholds mean one thing per method family: a p-value test flags drift when
    p < threshold (a threshold in (0, 1)); a distance or divergence when its statistic
    >= threshold (a positive number on the method's own scale). So there is one global
    threshold per family, and per-column overrides.

    Args:
        numeric_method: Method for numeric columns, or "auto" (Evidently's default choice).
        categorical_method: Method for categorical columns, or "auto".
        methods: Per-column method overrides.
        p_value_threshold: Threshold of every p-value test (None: each method's default).
        distance_threshold: Threshold of every distance (None: each method's default).
        threshold: Shorthand kept for existing callers: it applies to the family of the
            method it is given with (`numeric_method` and/or `categorical_method`, which
            must then be of one family); with both methods `auto` it is refused.
        thresholds: Per-column threshold overrides, in the family of that column's method.
        drift_share: Share of drifted features at which the dataset drifted.
        min_samples: Windows with fewer values in a column are `insufficient_data`.
        correction: Multiple-testing correction over the p-value tests.
        min_effect_size: When set, a p-value test flags drift only if |effect size| reaches it.

    Raises:
        OptionsError: naming the option and the valid range.
        UnknownMethodError: for a method that is unknown or wrong for the kind.

    Examples:
        >>> DriftOptions(numeric_method="ks", threshold=0.01).p_value_threshold
        0.01
        >>> DriftOptions(p_value_threshold=5)
        Traceback (most recent call last):
        ...
        detectors.errors.OptionsError: p_value_threshold must be a p-value threshold in (0, 1), \
got 5 (a p-value test flags drift when p < threshold)
    """

    numeric_method: str = "auto"
    categorical_method: str = "auto"
    methods: Mapping[str, str] = field(default_factory=dict)
    p_value_threshold: float | None = None
    distance_threshold: float | None = None
    threshold: float | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    drift_share: float = 0.5
    min_samples: int = 30
    correction: Correction | None = None
    min_effect_size: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.drift_share) and 0 < self.drift_share <= 1):
            raise OptionsError(f"drift_share must be in (0, 1], got {self.drift_share}")
        if isinstance(self.min_samples, bool) or not isinstance(self.min_samples, int) or \
                self.min_samples < 1:
            raise OptionsError(f"min_samples must be an integer of at least 1, "
                               f"got {self.min_samples!r}")
        if self.correction not in (None, "bonferroni", "holm", "bh"):
            raise OptionsError(
                f"correction must be bonferroni, holm or bh, got {self.correction!r}"
            )
        if self.numeric_method != "auto":
            method(self.numeric_method, "numeric")
        if self.categorical_method != "auto":
            method(self.categorical_method, "categorical")
        for column, name in self.methods.items():
            if name != "auto" and name not in METHODS:
                raise UnknownMethodError(
                    f"methods[{column!r}]: unknown drift method {name!r}; use auto or one of "
                    f"{', '.join(sorted(METHODS))}"
                )
        if self.p_value_threshold is not None:
            _check_family_threshold("p_value", self.p_value_threshold, "p_value_threshold")
        if self.distance_threshold is not None:
            _check_family_threshold("distance", self.distance_threshold, "distance_threshold")
        if self.threshold is not None:
            self._apply_shorthand(self.threshold)
        for name, value in self.thresholds.items():
            chosen = self.methods.get(name, "auto")
            if chosen != "auto":
                _check_family_threshold(method_family(chosen), value, f"threshold for {name!r}")
            elif not (math.isfinite(value) and value > 0):
                raise OptionsError(f"threshold for {name!r} must be positive and finite, "
                                   f"got {value}")
        if self.min_effect_size is not None and not (
                math.isfinite(self.min_effect_size) and self.min_effect_size >= 0):
            raise OptionsError(f"min_effect_size must be non-negative, got {self.min_effect_size}")

    def _apply_shorthand(self, value: float) -> None:
        chosen = [m for m in (self.numeric_method, self.categorical_method) if m != "auto"]
        families = {method_family(m) for m in chosen}
        if not families:
            raise OptionsError(
                "threshold applies to the family of the method it is given with, and both "
                "methods are auto: give p_value_threshold (p-value tests) or "
                "distance_threshold (distances) instead"
            )
        if len(families) > 1:
            raise OptionsError(
                f"threshold is ambiguous: {self.numeric_method} and {self.categorical_method} "
                "are of different families; give p_value_threshold and distance_threshold"
            )
        family = families.pop()
        key = "p_value_threshold" if family == "p_value" else "distance_threshold"
        if getattr(self, key) is not None:
            raise OptionsError(f"give threshold or {key}, not both")
        _check_family_threshold(family, value, "threshold")
        object.__setattr__(self, key, float(value))

    def threshold_for(self, column: str, chosen: Method) -> float:
        """The threshold that applies to `column` tested with `chosen`."""
        if column in self.thresholds:
            value = float(self.thresholds[column])
            _check_family_threshold(chosen.family, value, f"threshold for {column!r}")
            return value
        family_value = (self.p_value_threshold if chosen.family == "p_value"
                        else self.distance_threshold)
        return chosen.default_threshold if family_value is None else float(family_value)


def _cohens_d(reference: NumericProfile, window: NumericWindow) -> float | None:
    current = window.values
    n1, n2 = reference.n, current.size
    if n1 < 2 or n2 < 2:
        return None
    # numpy floats: overflow on huge values gives inf (then None), not OverflowError.
    var1 = np.float64(reference.std) ** 2 * n1 / (n1 - 1)
    var2 = np.float64(current.var(ddof=1))
    pooled = float(np.sqrt(((n1 - 1) * var1 + (n2 - 1) * var2) / (n1 + n2 - 2)))
    if not math.isfinite(pooled):
        return None
    if pooled == 0:
        return 0.0 if float(current.mean()) == reference.mean else None
    return (float(current.mean()) - reference.mean) / pooled


def _cramers_v(reference: ColumnProfile, current: Window) -> float | None:
    _keys, ref, cur = aligned_counts(reference, current)
    keep = (ref + cur) > 0
    table = np.vstack([ref[keep], cur[keep]])
    if table.shape[1] < 2:
        return 0.0
    chi2 = stats.chi2_contingency(table, correction=False).statistic
    return float(math.sqrt(chi2 / table.sum()))


@dataclass(frozen=True)
class _Partial:
    name: str
    kind: ColumnKind
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    effect_size: float | None
    n_reference: int
    n_current: int
    status: Status


def _spec(name: str, kind: ColumnKind, chosen: str) -> Method:
    """The method a user chose for a column, checked against the column's kind."""
    try:
        return method(chosen, kind)
    except UnknownMethodError as exc:
        raise UnknownMethodError(f"column {name!r}: {exc}") from exc


def _read_window(kind: ColumnKind, column: Any, n_rows: int,
                 reference: ColumnProfile) -> tuple[Window, Status | None]:
    """The window's usable values of a column, or the schema status that stops its test.

    A column of numbers for a numeric feature, or of text for a categorical one, is read
    once: its values also say whether any is present and that none is of the other kind.
    Other columns are checked first (`missing`, then `kind_mismatch`), then read.
    """
    empty: Window = (NumericWindow(np.zeros(0)) if kind == "numeric"
                     else CategoricalWindow((), np.zeros(0, np.int64)))
    if column is None:
        return empty, ("missing" if n_rows > 0 else None)
    window: Window | None = None
    if kind == "numeric":
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            window = NumericWindow.of(column)
    else:
        counted = text_counts(column)
        if counted is not None:
            window = CategoricalWindow(*counted)
    if window is not None and window.n > 0:
        return window, None
    if n_rows > 0 and not column.notna().any():
        return empty, "missing"  # no event of a non-empty window carried a value
    if reference.n > 0 and kind_mismatch(kind, column, getattr(reference, "categories", ())):
        return empty, "type_mismatch"
    if window is None:
        window = NumericWindow.of(column) if kind == "numeric" else CategoricalWindow.of(column)
    return window, None


def _one(profile: ReferenceProfile, name: str, column: Any, n_rows: int,
         options: DriftOptions) -> _Partial:
    kind = profile.kinds[name]
    reference = profile.column(name)
    requested = options.methods.get(
        name, options.numeric_method if kind == "numeric" else options.categorical_method
    )
    explicit = requested != "auto"
    spec = _spec(name, kind, requested) if explicit else None
    current, status = _read_window(kind, column, n_rows, reference)
    if spec is None and reference.n > 0:
        # Also for a window too small to test: the report names the method that would run.
        # auto may pick a count test for a numeric column with few values (Evidently's rule).
        spec = METHODS[auto_method(reference, current)]
    threshold = (options.threshold_for(name, spec) if spec is not None
                 else float(options.thresholds.get(name, 0.05)))
    chosen = spec.name if spec is not None else requested
    if status is not None:
        n_current = 0 if column is None else int(column.notna().sum())
        return _Partial(name, kind, chosen, None, None, threshold, None, reference.n,
                        n_current, status)
    if spec is None or current.n < options.min_samples or reference.n == 0:
        return _Partial(name, kind, chosen, None, None, threshold, None, reference.n,
                        current.n, "insufficient_data")
    # Huge values (near float max) overflow sums; results then fall back to None, never NaN.
    with np.errstate(all="ignore"):
        try:
            statistic, p_value = spec.function(reference, current)
        except (ArithmeticError, LookupError, ValueError):
            # scipy gives up on some extreme samples (a range beyond the float maximum):
            # the column is reported as not testable rather than failing the whole run.
            logger.warning("drift method failed on a column", extra={"method": chosen},
                           exc_info=True)
            return _Partial(name, kind, chosen, None, None, threshold, None, reference.n,
                            current.n, "insufficient_data")
        if isinstance(reference, NumericProfile) and isinstance(current, NumericWindow):
            effect = _cohens_d(reference, current)
        else:
            effect = _cramers_v(reference, current)
    return _Partial(name, kind, chosen, finite_or_none(statistic), finite_or_none(p_value),
                    threshold, finite_or_none(effect), reference.n, current.n, "ok")


def detect_drift(
    profile: ReferenceProfile, current: pd.DataFrame, options: DriftOptions | None = None
) -> DriftReport:
    """Compare every profiled column of `current` with the reference.

    A column absent from a non-empty `current`, or without a single value there, is
    `missing`; one whose values are mostly
    of the other kind is `type_mismatch`; both count as drifted in the dataset share (a
    schema change is the strongest drift there is). An empty window is
    `insufficient_data` throughout. Never mutates `profile`.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"x": rng.normal(0, 1, 500)})
        >>> cur = pd.DataFrame({"x": rng.normal(1, 1, 500)})
        >>> report = detect_drift(ReferenceProfile.fit(ref), cur, DriftOptions(numeric_method="ks"))
        >>> report.features["x"].drifted, report.dataset_drifted
        (True, True)
    """
    options = options or DriftOptions()
    by_name = {str(c): c for c in current.columns}
    partials = column_map(
        lambda name: _one(profile, name, current[by_name[name]] if name in by_name else None,
                          len(current), options),
        profile.columns,
    )
    ok = [p for p in partials if p.status == "ok"]
    counted = [p for p in partials if p.status == "ok" or p.status in SCHEMA_STATUSES]
    tested = [p for p in ok if p.p_value is not None]
    adjusted = dict(zip((p.name for p in tested),
                        adjust_p_values([p.p_value for p in tested  # type: ignore[misc]
                                         ], options.correction), strict=True))
    features: dict[str, FeatureDrift] = {}
    for p in partials:
        drifted = p.status in SCHEMA_STATUSES
        if p.status == "ok":
            if p.p_value is not None:
                drifted = adjusted[p.name] < p.threshold
                if drifted and options.min_effect_size is not None:
                    effect = p.effect_size
                    drifted = effect is not None and abs(effect) >= options.min_effect_size
            elif p.statistic is not None:
                drifted = p.statistic >= p.threshold
        features[p.name] = FeatureDrift(
            kind=p.kind, method=p.method, statistic=p.statistic, p_value=p.p_value,
            threshold=p.threshold, drifted=drifted, effect_size=p.effect_size,
            n_reference=p.n_reference, n_current=p.n_current, status=p.status,
        )
    n_drifted = sum(1 for f in features.values() if f.drifted)
    share = n_drifted / len(counted) if counted else 0.0
    return DriftReport(
        features=features,
        share_drifted=share,
        dataset_drifted=dataset_drifted(n_drifted, len(counted), options.drift_share),
        drift_share=options.drift_share,
        n_reference=profile.n_rows,
        n_current=len(current),
        status="ok" if counted else "insufficient_data",
    )
