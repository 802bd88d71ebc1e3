"""The detectors' exception hierarchy."""

from __future__ import annotations


class DetectorError(Exception):
    """Root of every error the detectors raise on purpose."""


class UnknownMethodError(DetectorError, ValueError):
    """A drift method name is not known for that kind of column."""


class ProfileFormatError(DetectorError, ValueError):
    """Serialised profile bytes are not a profile this version can read."""


class SchemaError(DetectorError, ValueError):
    """A schema names a column the data lacks, or a kind that is not numeric or categorical."""


class OptionsError(DetectorError, ValueError):
    """A drift option is out of range (threshold, drift share, minimum samples...)."""


class StreamValueError(DetectorError, ValueError):
    """A streaming detector was given a value it cannot take (not a finite number...)."""


class MissingDependencyError(DetectorError, ImportError):
    """An optional dependency a detector needs is not installed (the message says what)."""


class PerformanceInputError(DetectorError, ValueError):
    """Labels, predictions or scores a performance metric cannot take (the message says which)."""


class EstimationError(DetectorError, ValueError):
    """Performance estimation (CBPE) was given data it cannot use (labels, scores, shapes...)."""


class QualityOptionsError(DetectorError, ValueError):
    """A data-quality threshold is outside [0, 1], or an argument does not fit the window."""
