"""Deprecated home of the sidecar logger: import it from `driftline_sidecar` instead.

The logger moved to its own distribution, `driftline-sidecar` (``pip install ./sidecar``), so
that a model server installs kafka-python and nothing else of driftline's (issue 13). These
names stay importable from here for existing model servers; new code writes
``from driftline_sidecar import PredictionLogger``.
"""

from __future__ import annotations

from driftline_sidecar import DROP_REASONS, DropReason, PredictionLogger, SidecarStats

__all__ = ["DROP_REASONS", "DropReason", "PredictionLogger", "SidecarStats"]
