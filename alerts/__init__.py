"""driftline alerts."""
