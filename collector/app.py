"""Wiring: builds the long-lived objects (engine, consumer, scheduler, registry, HTTP app).

Settings arrive already merged with the environment's overrides (`collector.config.
load_settings` reads DRIFTLINE_DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS); the only variables
read here are the secrets whose names the settings give, from `Service.environ` (the
process environment unless a caller passes its own).

`Service` owns the engine, the metrics registry, the ingest loop, the sources bridge, the
scheduler, the outbox dispatcher and the HTTP server, starts them in order and
stops them in reverse on SIGTERM.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Literal

import uvicorn
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from alerts.channels.base import Channel
from alerts.channels.retraining import RetrainingWebhookChannel
from alerts.clock import utcnow
from alerts.dispatcher import Dispatcher, RetryPolicy
from collector import __version__
from collector.api import ApiContext, create_app
from collector.channels import build_channels, channel_types
from collector.config import Settings
from collector.events import DEAD_LETTER_REASONS
from collector.ingest import IngestLoop
from collector.metrics import Metrics
from collector.monitor import ModelMonitor, retraining_channel_name
from collector.reach import kafka_reachable
from collector.scheduler import MonitorScheduler, ticks_missed_counter
from collector.sources.bridge import Bridge
from collector.sources.cloudevents import RawWriter, cloudevents_router
from collector.sources.metrics import SourceMetrics
from collector.store import make_engine, make_session_factory, upgrade
from collector.store.leases import RunLeases
from collector.store.retention import Maintenance, compact, delete_expired, vacuum

logger = logging.getLogger(__name__)

Role = Literal["ingest", "scheduler", "api", "sources"]
ALL_ROLES: frozenset[Role] = frozenset({"ingest", "scheduler", "api", "sources"})


@dataclass
class Service:
    """The running driftline service (`driftline serve`)."""

    settings: Settings
    roles: frozenset[Role] = ALL_ROLES
    retry_policy: RetryPolicy | None = None
    health_interval_seconds: float = 5.0
    metrics: Metrics = field(default_factory=Metrics.create)
    stop_event: threading.Event = field(default_factory=threading.Event)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def __post_init__(self) -> None:
        self.metrics.build_info.labels(__version__).set(1)
        self.metrics.init_reasons(DEAD_LETTER_REASONS)
        for model in self.settings.models:
            self.metrics.init_model(model.name, model.schedule.every_seconds)
        self.engine = make_engine(self.settings.database_url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.monitors = {
            m.name: ModelMonitor(
                m, self.sessions, self.metrics,
                max_features_exported=self.settings.metrics.max_features_per_model,
                channel_types=channel_types(self.settings),
                base_url=self.settings.api.base_url or self._default_base_url(),
            )
            for m in self.settings.models
        }
        self.ingest: IngestLoop | None = None
        # Model servers' loggers (issue 13): the bridge, and the CloudEvents endpoint's writers.
        self.source_metrics = (SourceMetrics.create(self.metrics.registry)
                               if self.settings.sources else None)
        self.bridge: Bridge | None = None
        self._raw_writers: dict[str, RawWriter] = {}
        self.scheduler: MonitorScheduler | None = None
        self.dispatcher: Dispatcher | None = None
        self._threads: list[threading.Thread] = []
        self._server: uvicorn.Server | None = None
        self._ready = {"kafka": False, "store": False}
        self.http_port: int | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Apply migrations, then start every role's components."""
        upgrade(self.engine)
        self._check_health()
        if "scheduler" in self.roles:
            self._start_dispatcher()
            for monitor in self.monitors.values():
                try:
                    monitor.profile()
                except Exception:  # a bad reference fails that model's runs, not the service
                    logger.exception("reference profile unavailable", extra={
                        "model": monitor.model.name})
            # Each tick is claimed in the store, so that several `serve` processes on one
            # database run it once between them (issue 12; docs/scaling.md).
            self.scheduler = MonitorScheduler(
                self.monitors, leases=RunLeases(self.sessions),
                ticks_missed=ticks_missed_counter(self.metrics.registry),
                maintenance=self.maintain,
                maintenance_every_seconds=self.settings.retention.every_seconds)
            self.scheduler.start()
        if "ingest" in self.roles:
            self.ingest = IngestLoop(self.settings.kafka, self.sessions, self.metrics)
            self._spawn("ingest", lambda: self.ingest.run(self.stop_event) if self.ingest else None)
        if "sources" in self.roles and self.source_metrics is not None:
            self.bridge = Bridge(
                self.settings.kafka, self.settings.sources, self.source_metrics,
                model_features={m.name: list(m.features) for m in self.settings.models})
            self._spawn("sources",
                        lambda: self.bridge.run(self.stop_event) if self.bridge else None)
        self._spawn("health", self._health_loop)
        self._start_http()
        logger.info("driftline started", extra={"roles": sorted(self.roles)})

    def _default_base_url(self) -> str:
        host = self.settings.http.host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:" \
               f"{self.settings.http.port}"

    def _start_dispatcher(self) -> None:
        channels: dict[str, Channel] = dict(build_channels(self.settings, self.environ))
        for name in channels:
            self.metrics.init_channel(name)
        for model in self.settings.models:
            if model.retraining_webhook is None:
                continue
            hook = model.retraining_webhook
            self.metrics.init_channel(retraining_channel_name(model.name))
            channels[retraining_channel_name(model.name)] = RetrainingWebhookChannel(
                hook.url, secret=hook.secret(self.environ), timeout_seconds=hook.timeout_seconds,
                name=retraining_channel_name(model.name),
            )
        self.dispatcher = Dispatcher(
            self.sessions,
            channels=channels,
            policy=self.retry_policy or RetryPolicy(
                base_seconds=self.settings.alerts.retry_base_seconds,
                max_backoff_seconds=self.settings.alerts.retry_max_seconds,
                max_attempts=self.settings.alerts.max_attempts,
            ),
            on_outcome=lambda channel, outcome: self.metrics.deliveries.labels(
                channel, outcome).inc(),
        )
        self.dispatcher.start()

    def maintain(self) -> Maintenance:
        """One pass of retention, compaction and vacuum over the store (docs/storage.md)."""
        retention = self.settings.retention
        now = utcnow()
        outcome = delete_expired(self.sessions, now=now, raw_days=retention.raw_days)
        compact(self.sessions, now=now, target_events=retention.compact_events,
                min_age_seconds=retention.compact_after_seconds, outcome=outcome)
        vacuum(self.engine)
        self.metrics.store_deleted.labels("prediction").inc(outcome.events_deleted)
        self.metrics.store_deleted.labels("label").inc(outcome.labels_deleted)
        self.metrics.store_compacted.inc(outcome.batches_merged)
        logger.info("store maintained", extra=dataclasses.asdict(outcome))
        return outcome

    def _start_http(self) -> None:
        context = ApiContext(
            registry=self.metrics.registry,
            session_factory=self.sessions,
            readiness=self.readiness,
            model_names=frozenset(self.monitors),
            performance_history=lambda name, bucket, limit: self.monitors[
                name].performance_history(bucket, limit),
            api_token=self.environ.get(self.settings.api.token_env) or None,
            token_env=self.settings.api.token_env,
        )
        app = create_app(context)
        cloudevents = [s for s in self.settings.sources if s.kind == "cloudevents"]
        if cloudevents and self.source_metrics is not None:
            self._raw_writers = {s.name: RawWriter(
                self.settings.kafka.bootstrap_servers, max_event_bytes=s.max_event_bytes,
                timeout_seconds=s.write_timeout_seconds) for s in cloudevents}
            app.include_router(cloudevents_router(cloudevents, self._raw_writers,
                                                  self.source_metrics.received))
        config = uvicorn.Config(
            app, host=self.settings.http.host, port=self.settings.http.port,
            log_level="warning", lifespan="off", access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._spawn("http", self._server.run)
        deadline = time.monotonic() + 15
        while not self._server.started and time.monotonic() < deadline:
            if not self._threads[-1].is_alive():
                raise OSError(f"HTTP server could not bind {config.host}:{config.port}")
            time.sleep(0.05)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.http_port = int(sockets[0].getsockname()[1]) if sockets else config.port
        if self.settings.api.base_url is None and self.settings.http.port == 0:
            # Links in notifications name the port actually bound.
            for monitor in self.monitors.values():
                monitor.set_base_url(f"http://127.0.0.1:{self.http_port}")

    def _spawn(self, name: str, target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target, name=f"driftline-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop in reverse order: ingest finishes its batch and commits first."""
        self.stop_event.set()
        for thread in self._threads:
            if thread.name in ("driftline-ingest", "driftline-sources"):
                thread.join(timeout=30)
        if self.scheduler is not None:
            self.scheduler.stop(wait=True)
        if self.dispatcher is not None:
            self.dispatcher.stop(timeout_seconds=10)
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=10)
        for writer in self._raw_writers.values():
            writer.close()
        self.engine.dispose()
        logger.info("driftline stopped")

    def serve_forever(self) -> None:
        """Start, then block until SIGTERM or SIGINT; then stop cleanly."""

        def _handle(signum: int, _frame: FrameType | None) -> None:
            logger.info("signal received, stopping", extra={"signal": signum})
            self.stop_event.set()

        signal.signal(signal.SIGTERM, _handle)
        signal.signal(signal.SIGINT, _handle)
        self.start()
        self.stop_event.wait()
        self.stop()

    # -- health ---------------------------------------------------------------------------------
    def readiness(self) -> dict[str, bool]:
        """What /readyz reports: the store, and Kafka when this process ingests."""
        checks = {"store": self._ready["store"]}
        if "ingest" in self.roles or self.bridge is not None or self._raw_writers:
            checks["kafka"] = self._ready["kafka"]
        return checks

    def _check_health(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            self._ready["store"] = True
        except Exception:
            self._ready["store"] = False
        self._ready["kafka"] = kafka_reachable(self.settings.kafka.bootstrap_servers)
        self.metrics.store_up.set(1 if self._ready["store"] else 0)
        self.metrics.kafka_up.set(1 if self._ready["kafka"] else 0)
        if self.dispatcher is not None:
            try:
                self.metrics.outbox_pending.set(self.dispatcher.pending_count())
            except Exception:
                logger.debug("outbox count unavailable", exc_info=True)

    def _health_loop(self) -> None:
        while not self.stop_event.wait(self.health_interval_seconds):
            self._check_health()


