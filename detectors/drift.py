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
from detectors.columns import CategoricalWindow, NumericWindow, Window
from detectors.dataset import Correction, adjust_p_values, dataset_drifted
from detectors.errors import OptionsError
from detectors.parallel import column_map
from detectors.profile import ColumnProfile, NumericProfile, ReferenceProfile
from detectors.report import DriftReport, FeatureDrift
from detectors.select import auto_method, method, methods_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftOptions:
    """How drift is decided.

    Args:
        numeric_method: Method for numeric columns, or "auto" (Evidently's default choice).
        categorical_method: Method for categorical columns, or "auto".
        methods: Per-column method overrides.
        threshold: Threshold for every column (None: each method's default).
        thresholds: Per-column threshold overrides.
        drift_share: Share of drifted features at which the dataset drifted.
        min_samples: Windows with fewer values in a column are `insufficient_data`.
        correction: Multiple-testing correction over the p-value tests.
        min_effect_size: When set, a p-value test flags drift only if |effect size| reaches it.
    """

    numeric_method: str = "auto"
    categorical_method: str = "auto"
    methods: Mapping[str, str] = field(default_factory=dict)
    threshold: float | None = None
    thresholds: Mapping[str, float] = field(default_factory=dict)
    drift_share: float = 0.5
    min_samples: int = 30
    correction: Correction | None = None
    min_effect_size: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.drift_share <= 1:
            raise OptionsError(f"drift_share must be in (0, 1], got {self.drift_share}")
        if self.threshold is not None and not self.threshold > 0:
            raise OptionsError(f"threshold must be positive, got {self.threshold}")
        if self.min_samples < 1:
            raise OptionsError(f"min_samples must be at least 1, got {self.min_samples}")
        if self.correction not in (None, "bonferroni", "holm", "bh"):
            raise OptionsError(
                f"correction must be bonferroni, holm or bh, got {self.correction!r}"
            )
        if self.numeric_method != "auto":
            method(self.numeric_method, "numeric")
        if self.categorical_method != "auto":
            method(self.categorical_method, "categorical")
        for name in self.methods.values():
            if name != "auto":
                method(name, "numeric" if name in methods_for("numeric") else "categorical")
        for name, value in self.thresholds.items():
            if not value > 0:
                raise OptionsError(f"threshold for {name!r} must be positive, got {value}")
        if self.min_effect_size is not None and not self.min_effect_size >= 0:
            raise OptionsError(f"min_effect_size must be non-negative, got {self.min_effect_size}")


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


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
    kind: Any
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    effect_size: float | None
    n_reference: int
    n_current: int
    status: Any


def _one(profile: ReferenceProfile, name: str, column: Any, options: DriftOptions) -> _Partial:
    kind = profile.kinds[name]
    reference = profile.column(name)
    empty = np.zeros(0)
    current: Window
    if kind == "numeric":
        current = NumericWindow.of(column) if column is not None else NumericWindow(empty)
    else:
        current = (CategoricalWindow.of(column) if column is not None
                   else CategoricalWindow((), empty.astype(np.int64)))
    requested = options.methods.get(
        name, options.numeric_method if kind == "numeric" else options.categorical_method
    )
    too_small = current.n < options.min_samples or reference.n == 0
    chosen = requested
    if chosen == "auto" and reference.n > 0:
        # Also for a window too small to test: the report names the method that would run.
        chosen = auto_method(reference, current)
    threshold = options.thresholds.get(name, options.threshold)
    if too_small:
        default = method(chosen, kind).default_threshold if chosen != "auto" else 0.05
        return _Partial(name, kind, chosen, None, None,
                        threshold if threshold is not None else default, None, reference.n,
                        current.n, "insufficient_data")
    spec = method(chosen, kind)
    # Huge values (near float max) overflow sums; results then fall back to None, never NaN.
    with np.errstate(all="ignore"):
        try:
            statistic, p_value = spec.function(reference, current)
        except (ArithmeticError, LookupError, ValueError):
            # scipy gives up on some extreme samples (a range beyond the float maximum):
            # the column is reported as not testable rather than failing the whole run.
            logger.warning("drift method failed on a column", extra={"method": chosen},
                           exc_info=True)
            return _Partial(name, kind, chosen, None, None,
                            threshold if threshold is not None else spec.default_threshold,
                            None, reference.n, current.n, "insufficient_data")
        if isinstance(reference, NumericProfile) and isinstance(current, NumericWindow):
            effect = _cohens_d(reference, current)
        else:
            effect = _cramers_v(reference, current)
    return _Partial(name, kind, chosen, _finite_or_none(statistic), _finite_or_none(p_value),
                    threshold if threshold is not None else spec.default_threshold,
                    _finite_or_none(effect), reference.n, current.n, "ok")


def detect_drift(
    profile: ReferenceProfile, current: pd.DataFrame, options: DriftOptions | None = None
) -> DriftReport:
    """Compare every profiled column of `current` with the reference.

    Columns absent from `current` are `insufficient_data`. Never mutates `profile`.

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
                          options),
        profile.columns,
    )
    ok = [p for p in partials if p.status == "ok"]
    tested = [p for p in ok if p.p_value is not None]
    adjusted = dict(zip((p.name for p in tested),
                        adjust_p_values([p.p_value for p in tested  # type: ignore[misc]
                                         ], options.correction), strict=True))
    features: dict[str, FeatureDrift] = {}
    for p in partials:
        drifted = False
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
    share = n_drifted / len(ok) if ok else 0.0
    return DriftReport(
        features=features,
        share_drifted=share,
        dataset_drifted=dataset_drifted(n_drifted, len(ok), options.drift_share),
        drift_share=options.drift_share,
        n_reference=profile.n_rows,
        n_current=len(current),
        status="ok" if ok else "insufficient_data",
    )
