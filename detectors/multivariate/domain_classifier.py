"""Domain classifier: how well can a model tell the current window from the reference?

A gradient-boosted classifier (scikit-learn's HistGradientBoostingClassifier, which
takes missing values and categorical codes natively) is trained to label rows as
reference (0) or current (1); its out-of-fold ROC AUC over stratified folds is the
statistic. 0.5 means the two are indistinguishable, 1.0 perfectly separable.

Threshold: drift when AUC >= `threshold` (default 0.55, the level NannyML's domain
classifier documents as a useful start), and only when the AUC also clears chance by
more than three standard errors of the AUC under no drift (Hanley & McNeil 1982:
sqrt((n1 + n2 + 1) / (12 n1 n2))), so small windows do not flag noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from detectors.errors import MissingDependencyError, OptionsError
from detectors.multivariate.encode import category_codes, encode, infer_kinds
from detectors.multivariate.result import MultivariateDrift
from detectors.report import ColumnKind

DEFAULT_THRESHOLD = 0.55
MAX_ROWS_PER_SIDE = 20_000
FOLDS = 3
SEED = 0


def domain_classifier(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    kinds: Mapping[str, ColumnKind] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    min_samples: int = 30,
    max_rows_per_side: int = MAX_ROWS_PER_SIDE,
) -> MultivariateDrift:
    """ROC AUC of a classifier separating `current` from `reference`.

    Each side is subsampled (seeded) to at most `max_rows_per_side` rows.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> ref = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
        >>> same = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
        >>> domain_classifier(ref, same).drifted
        False
        >>> moved = same.assign(b=same["a"] * 0.9 + rng.normal(0, 0.3, 400))  # joint change
        >>> domain_classifier(ref, moved).drifted
        True
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise MissingDependencyError(
            "the domain classifier needs scikit-learn: pip install scikit-learn") from exc
    if not 0.5 < threshold <= 1.0:
        raise OptionsError(f"threshold must be in (0.5, 1], got {threshold}")
    names = list(columns) if columns is not None else [c for c in reference.columns]
    kinds = dict(kinds) if kinds is not None else infer_kinds(reference, names)
    rng = np.random.default_rng(SEED)
    ref = _subsample(reference, max_rows_per_side, rng)
    cur = _subsample(current, max_rows_per_side, rng)
    n_ref, n_cur = len(ref), len(cur)
    if min(n_ref, n_cur) < max(min_samples, FOLDS) or not names:
        return MultivariateDrift("domain_classifier", None, threshold, False, len(reference),
                                 len(current), "insufficient_data")
    codes = category_codes(ref, names, kinds)
    features = np.vstack([encode(ref, names, kinds, codes), encode(cur, names, kinds, codes)])
    labels = np.concatenate([np.zeros(n_ref, np.int64), np.ones(n_cur, np.int64)])
    categorical = np.array([kinds[name] == "categorical" for name in names])
    # Unseen categories (code -1) are treated as missing by the model; keep them apart.
    features[:, categorical] = np.where(features[:, categorical] < 0, np.nan,
                                        features[:, categorical])
    model = HistGradientBoostingClassifier(
        max_iter=100, categorical_features=categorical if categorical.any() else None,
        random_state=SEED)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    scores = cross_val_predict(model, features, labels, cv=folds, method="predict_proba")[:, 1]
    auc = float(roc_auc_score(labels, scores))
    chance = 3.0 * math.sqrt((n_ref + n_cur + 1) / (12.0 * n_ref * n_cur))
    drifted = auc >= threshold and auc - 0.5 > chance
    return MultivariateDrift("domain_classifier", auc, threshold, drifted, len(reference),
                             len(current))


def _subsample(frame: pd.DataFrame, limit: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= limit:
        return frame
    rows = np.sort(rng.choice(len(frame), limit, replace=False))
    return frame.iloc[rows]
