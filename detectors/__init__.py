"""driftline detectors."""
