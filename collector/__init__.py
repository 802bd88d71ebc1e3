"""driftline collector."""
