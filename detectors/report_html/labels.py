"""How the text and HTML reports print numbers and name a feature's state."""

from __future__ import annotations

from detectors.report import FeatureDrift

# Statuses that mean the window cannot be compared at all; they count as drift.
DRIFT_STATUSES = ("type_mismatch", "missing")


def format_number(value: float | None) -> str:
    """A statistic, p-value or threshold in at most a few characters ("-" when absent).

    Examples:
        >>> [format_number(v) for v in (None, 0.05, 1.234e-7, 123456.0)]
        ['-', '0.0500', '1.23e-07', '1.23e+05']
    """
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"


def is_drifted(feature: FeatureDrift) -> bool:
    """Whether the feature counts as drifted (a test said so, or the window cannot match)."""
    return feature.drifted or str(feature.status) in DRIFT_STATUSES


def status_label(feature: FeatureDrift) -> str:
    """The feature's status in words ("" when a test ran).

    Examples:
        >>> from detectors.report import FeatureDrift
        >>> status_label(FeatureDrift("numeric", "ks", None, None, 0.05, False, None, 10, 2,
        ...                           "insufficient_data"))
        'insufficient data'
    """
    status = str(feature.status)
    return "" if status == "ok" else status.replace("_", " ")


def verdict_label(feature: FeatureDrift) -> str:
    """"DRIFT", "ok" or "not tested" (a test did not run, whatever the reason)."""
    if is_drifted(feature):
        return "DRIFT"
    return "ok" if str(feature.status) == "ok" else "not tested"
