"""driftline detectors: pure, I/O-free drift statistics usable as a library.

Fit a `ReferenceProfile` once, then `detect_drift` each window against it with
`DriftOptions`; the result is a frozen `DriftReport` of `FeatureDrift`s whose
`to_dict()` is the `driftline.drift-report/v1` JSON. `report_to_text` and
`render_html` render it. `domain_classifier` and `PCAReconstruction` check the
joint distribution. `ADWIN`, `PageHinkley`, `DDM` and `KSWIN` watch a stream
value by value, with river's shape and detection points. Methods and their sources:
docs/drift-methods.md.

Examples:
    >>> import numpy as np, pandas as pd
    >>> from detectors import ReferenceProfile, detect_drift
    >>> rng = np.random.default_rng(1)
    >>> profile = ReferenceProfile.fit(pd.DataFrame({"x": rng.normal(size=800)}))
    >>> detect_drift(profile, pd.DataFrame({"x": rng.normal(size=800)})).dataset_drifted
    False
"""

from detectors.dataset import adjust_p_values
from detectors.drift import DriftOptions, detect_drift
from detectors.errors import (
    DetectorError,
    EstimationError,
    MissingDependencyError,
    OptionsError,
    PerformanceInputError,
    ProfileFormatError,
    QualityOptionsError,
    SchemaError,
    StreamValueError,
    UnknownMethodError,
)
from detectors.estimation import CBPE, EstimatedMetric, EstimatedPerformance
from detectors.multivariate.domain_classifier import domain_classifier
from detectors.multivariate.pca import PCAReconstruction
from detectors.multivariate.result import MultivariateDrift
from detectors.performance import (
    BucketPerformance,
    ConfusionMatrix,
    LabelDelay,
    PerformanceOptions,
    PerformanceReport,
    compute_performance,
    label_delay,
    performance_by_bucket,
)
from detectors.profile import ReferenceProfile
from detectors.quality import (
    FeatureQuality,
    QualityBreach,
    QualityReport,
    QualityThresholds,
    assess_quality,
)
from detectors.render import render_html, report_to_text
from detectors.report import DriftReport, FeatureDrift
from detectors.segments import Disparity, SegmentReport, compute_segments
from detectors.select import METHODS, auto_method, methods_for
from detectors.streaming import ADWIN, DDM, KSWIN, PageHinkley

__all__ = [
    "ADWIN",
    "CBPE",
    "DDM",
    "KSWIN",
    "METHODS",
    "BucketPerformance",
    "ConfusionMatrix",
    "DetectorError",
    "Disparity",
    "DriftOptions",
    "DriftReport",
    "EstimatedMetric",
    "EstimatedPerformance",
    "EstimationError",
    "FeatureDrift",
    "FeatureQuality",
    "LabelDelay",
    "MissingDependencyError",
    "MultivariateDrift",
    "OptionsError",
    "PCAReconstruction",
    "PageHinkley",
    "PerformanceInputError",
    "PerformanceOptions",
    "PerformanceReport",
    "ProfileFormatError",
    "QualityBreach",
    "QualityOptionsError",
    "QualityReport",
    "QualityThresholds",
    "ReferenceProfile",
    "SchemaError",
    "SegmentReport",
    "StreamValueError",
    "UnknownMethodError",
    "adjust_p_values",
    "assess_quality",
    "auto_method",
    "compute_performance",
    "compute_segments",
    "detect_drift",
    "domain_classifier",
    "label_delay",
    "methods_for",
    "performance_by_bucket",
    "render_html",
    "report_to_text",
]
