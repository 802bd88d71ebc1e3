"""A cheap reachability probe for Kafka bootstrap servers.

It lives in `driftline_sidecar` (the sidecar probes before it builds a producer); the collector
imports it from here.
"""

from __future__ import annotations

from driftline_sidecar import kafka_reachable

__all__ = ["kafka_reachable"]
