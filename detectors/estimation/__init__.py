"""Performance estimated without labels: CBPE (confidence-based performance estimation).

`CBPE.fit` on a labelled reference (labels, scores, predictions), then `estimate` each
window from its scores and predictions alone; the result is a frozen
`EstimatedPerformance` of `EstimatedMetric`s (ROC AUC, F1, precision, recall, accuracy,
each with NannyML's sampling error and band) whose `to_dict()` is the
`estimated_performance` JSON. Computed as NannyML 0.13.1 computes it, for binary and
multiclass models; differences are listed in `detectors/estimation/cbpe.py`.

Examples:
    >>> import numpy as np
    >>> from detectors.estimation import CBPE
    >>> rng = np.random.default_rng(3)
    >>> p = rng.uniform(size=3000)
    >>> cbpe = CBPE.fit((rng.uniform(size=3000) < p).astype(int), p, (p > 0.5).astype(int))
    >>> window = rng.uniform(0.5, 1.0, size=500)
    >>> cbpe.estimate(window, np.ones(500, dtype=int)).to_dict()["method"]
    'cbpe'
"""

from detectors.estimation.cbpe import CBPE
from detectors.estimation.estimates import METRICS, Metric
from detectors.estimation.result import EstimatedMetric, EstimatedPerformance

__all__ = ["CBPE", "METRICS", "EstimatedMetric", "EstimatedPerformance", "Metric"]
