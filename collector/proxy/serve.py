"""Wiring of the logging proxy: settings in; the app, log worker, registry, metrics listener.

The only place of the proxy that builds long-lived objects; `run_proxy` blocks until SIGINT or
SIGTERM, then lets the log worker flush (up to `close_timeout_seconds`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import uvicorn
from prometheus_client import CollectorRegistry, Counter, start_http_server

from collector.proxy.app import DEFAULT_MAX_LOGGED_BYTES, ProxyApp
from collector.proxy.handoff import LogWorker
from collector.proxy.upstream import Upstream

logger = logging.getLogger(__name__)

DEFAULT_METRICS_LISTEN: Final = "0.0.0.0:9109"


def split_host_port(value: str, *, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as a pair.

    Raises:
        ValueError: Naming `what` when the value is not ``HOST:PORT`` with a port 0 to 65535.

    Examples:
        >>> split_host_port("0.0.0.0:8080", what="--listen")
        ('0.0.0.0', 8080)
        >>> split_host_port("[::1]:9", what="--listen")
        ('::1', 9)
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{what} must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Everything `driftline proxy` is told."""

    upstream: str
    listen: str
    model: str
    bootstrap_servers: str
    predictions_topic: str = "driftline.predictions"
    labels_topic: str = "driftline.labels"
    feature_names: Sequence[str] | None = None
    metrics_listen: str | None = DEFAULT_METRICS_LISTEN
    output: str | None = None
    max_logged_bytes: int = DEFAULT_MAX_LOGGED_BYTES
    buffer_size: int = 10_000
    max_unsent_seconds: float = 30.0
    close_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Proxy:
    """A built proxy: the ASGI app, its log worker and the registry of its counters."""

    app: ProxyApp
    worker: LogWorker
    registry: CollectorRegistry


def worker_settings(settings: ProxySettings) -> dict[str, Any]:
    """What the log worker process is told (collector/proxy/worker.py)."""
    return {"upstream": settings.upstream, "model": settings.model,
            "bootstrap_servers": settings.bootstrap_servers,
            "predictions_topic": settings.predictions_topic,
            "labels_topic": settings.labels_topic,
            "feature_names": list(settings.feature_names) if settings.feature_names else None,
            "output": settings.output, "buffer_size": settings.buffer_size,
            "max_unsent_seconds": settings.max_unsent_seconds,
            "close_timeout_seconds": settings.close_timeout_seconds,
            "log_level": logging.getLevelName(logging.getLogger().getEffectiveLevel())}


def build_proxy(settings: ProxySettings, registry: CollectorRegistry | None = None) -> Proxy:
    """The app and its log worker (started with the app), counters in `registry` (new if None).

    Raises:
        ValueError: When the upstream URL is not an http:// URL.
    """
    registry = registry if registry is not None else CollectorRegistry()
    upstream = Upstream(settings.upstream)
    worker = LogWorker(worker_settings(settings), registry)
    requests = Counter("driftline_proxy_requests_total",
                       "Requests the proxy forwarded, by kind (infer, other).", ["kind"],
                       registry=registry)
    failures = Counter("driftline_proxy_upstream_failures_total",
                       "Requests answered 502 because the upstream could not be reached.",
                       registry=registry)
    app = ProxyApp(upstream, worker, max_logged_bytes=settings.max_logged_bytes,
                   requests_counter=requests, failures_counter=failures,
                   close_timeout_seconds=settings.close_timeout_seconds)
    return Proxy(app, worker, registry)


def run_proxy(settings: ProxySettings) -> None:
    """Serve until interrupted: the proxy on `settings.listen`, /metrics on `metrics_listen`."""
    host, port = split_host_port(settings.listen, what="--listen")
    proxy = build_proxy(settings)
    if settings.metrics_listen:
        metrics_host, metrics_port = split_host_port(settings.metrics_listen,
                                                     what="--metrics-listen")
        start_http_server(metrics_port, addr=metrics_host, registry=proxy.registry)
    config = uvicorn.Config(proxy.app, host=host, port=port, http="httptools", loop="auto",
                            lifespan="on", ws="none", access_log=False, server_header=False,
                            proxy_headers=False,
                            date_header=False, log_level="warning", timeout_keep_alive=75)
    logger.info("proxy listening", extra={"listen": settings.listen,
                                          "upstream": settings.upstream, "model": settings.model})
    # The log worker is started and stopped (flushed) by the app's lifespan.
    uvicorn.Server(config).run()
