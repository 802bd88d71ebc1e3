"""Streaming change detectors with river's shape: `update(x)`, then `drift_detected`.

`update(x)` returns the detector, and the read-only `drift_detected` says whether that
value completed a change.

One detector per module: `ADWIN` (adaptive windowing), `PageHinkley` (cumulative sum),
`DDM` (error rate of a model, with warnings) and `KSWIN` (Kolmogorov-Smirnov windows).
Their parameters are river's, with river's defaults, and on the same stream they detect
at the same points as `river.drift` (KSWIN for the same seed); river itself is not needed.

Examples:
    >>> from detectors.streaming import ADWIN
    >>> adwin = ADWIN(clock=1)
    >>> [i for i, x in enumerate([0.0] * 100 + [1.0] * 20) if adwin.update(x).drift_detected]
    [115]
"""

from detectors.streaming.adwin import ADWIN
from detectors.streaming.base import StreamingDetector
from detectors.streaming.ddm import DDM
from detectors.streaming.kswin import KSWIN
from detectors.streaming.page_hinkley import PageHinkley

__all__ = ["ADWIN", "DDM", "KSWIN", "PageHinkley", "StreamingDetector"]
