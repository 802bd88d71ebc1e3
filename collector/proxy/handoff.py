"""The proxy's side of its log worker: start and restart it, hand it exchanges, read its counts.

`LogWorker.send` is what the request path pays for logging: one frame appended to the pipe's
write buffer, never a wait. When the buffer holds more than `max_buffer_bytes` (the worker has
fallen behind: ``worker_busy``) or the worker is down (it died and is being restarted with a
backoff: ``worker_down``), the exchange is dropped and counted in
``driftline_proxy_exchanges_dropped_total{reason}``; requests never notice. When a worker dies,
the frames it was handed but had not reported reading are counted ``worker_died`` (an upper
bound: it may have logged the last few it read; events its logger still held are lost with it).

The worker's counts arrive as JSON lines on its stdout and are exposed by `WorkerMetrics` under
the names the sidecar and the recorder use, summed over the worker's restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.proxy.recorder import UNLOGGED_REASONS
from driftline_sidecar import DROP_REASONS

logger = logging.getLogger(__name__)

HANDOFF_REASONS: Final = ("worker_down", "worker_busy", "worker_died")
_BACKOFF_MIN_SECONDS: Final = 0.5
_BACKOFF_MAX_SECONDS: Final = 30.0


class WorkerMetrics(Collector):
    """The worker's counts as Prometheus counters, kept across its restarts."""

    def __init__(self) -> None:
        self._base: dict[str, float] = {}
        self._current: dict[str, float] = {}

    @staticmethod
    def _flatten(report: Mapping[str, Any]) -> dict[str, float]:
        flat = {"frames": float(report.get("frames", 0)),
                "rows_logged": float(report.get("rows_logged", 0)),
                "sent": float(report.get("sent", 0))}
        for reason, count in dict(report.get("unlogged", {})).items():
            flat[f"unlogged:{reason}"] = float(count)
        for reason, count in dict(report.get("dropped", {})).items():
            flat[f"dropped:{reason}"] = float(count)
        return flat

    def update(self, report: Mapping[str, Any]) -> None:
        """The worker's latest report (its counts since it started)."""
        self._current = self._flatten(report)

    def worker_exited(self) -> None:
        """Fold the exited worker's last counts into the base the next one adds to."""
        for key, value in self._current.items():
            self._base[key] = self._base.get(key, 0.0) + value
        self._current = {}

    def value(self, key: str) -> float:
        """A count so far over every worker (``rows_logged``, ``sent``, ``dropped:<reason>``...)."""
        return self._base.get(key, 0.0) + self._current.get(key, 0.0)

    def base(self, key: str) -> float:
        """The part of `value(key)` from workers that have exited."""
        return self._base.get(key, 0.0)

    def collect(self) -> Iterator[Metric]:
        """The counters, every label value present from the start."""
        rows = CounterMetricFamily("driftline_proxy_rows_logged",
                                   "Rows of inference requests handed to the prediction logger.")
        rows.add_metric([], self.value("rows_logged"))
        yield rows
        unlogged = CounterMetricFamily(
            "driftline_proxy_unlogged",
            "Inference exchanges forwarded but not logged, by reason.", labels=["reason"])
        for reason in UNLOGGED_REASONS:
            unlogged.add_metric([reason], self.value(f"unlogged:{reason}"))
        yield unlogged
        events = CounterMetricFamily(
            "driftline_sidecar_events",
            "Events the sidecar logger sent or dropped, by kind and outcome.",
            labels=["kind", "outcome"])
        dropped_total = sum(self.value(f"dropped:{reason}") for reason in DROP_REASONS)
        events.add_metric(["prediction", "sent"], self.value("sent"))
        events.add_metric(["prediction", "dropped"], dropped_total)
        yield events
        dropped = CounterMetricFamily("driftline_sidecar_dropped",
                                      "Events the sidecar logger dropped, by reason.",
                                      labels=["reason"])
        for reason in DROP_REASONS:
            dropped.add_metric([reason], self.value(f"dropped:{reason}"))
        yield dropped


class LogWorker:
    """Runs collector/proxy/worker.py as a child process and feeds it exchanges.

    Args:
        settings: The worker's settings (see worker.main), passed as one JSON argument.
        registry: Where its counters go.
        max_buffer_bytes: Frames waiting in the pipe beyond this are dropped (worker_busy).
    """

    def __init__(self, settings: Mapping[str, Any], registry: CollectorRegistry, *,
                 max_buffer_bytes: int = 64 * 1024 * 1024) -> None:
        self._argument = json.dumps(dict(settings))
        self._max_buffer = max_buffer_bytes
        self.metrics = WorkerMetrics()
        registry.register(self.metrics)
        dropped = Counter("driftline_proxy_exchanges_dropped_total",
                          "Inference exchanges not handed to the log worker, by reason "
                          "(worker_down, worker_busy).", ["reason"], registry=registry)
        self._dropped = {reason: dropped.labels(reason) for reason in HANDOFF_REASONS}
        self._handed = 0  # frames handed to the current worker
        self._restarts = Counter("driftline_proxy_log_worker_restarts_total",
                                 "Times the log worker exited and was started again.",
                                 registry=registry)
        self._stdin: asyncio.StreamWriter | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    async def start(self) -> None:
        """Start the worker (and keep it running) from the proxy's event loop."""
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await self._started.wait()

    async def _supervise(self) -> None:
        backoff = _BACKOFF_MIN_SECONDS
        while not self._stopping:
            try:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "collector.proxy.worker", self._argument,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            except OSError:
                logger.exception("proxy log worker could not start")
                self._started.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_SECONDS)
                continue
            self._process, self._stdin, self._handed = process, process.stdin, 0
            self._started.set()
            if process.stdout is not None:  # always, as PIPE was asked for
                await self._read_reports(process.stdout)
            code = await process.wait()
            self._stdin = None
            unread = self._handed - int(self.metrics.value("frames") - self.metrics.base("frames"))
            if unread > 0:
                self._dropped["worker_died"].inc(unread)
            self.metrics.worker_exited()
            if self._stopping:
                return
            self._restarts.inc()
            logger.warning("proxy log worker exited; restarting", extra={"exit_code": code})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_SECONDS)

    async def _read_reports(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            try:
                self.metrics.update(json.loads(line))
            except ValueError:
                logger.warning("proxy log worker wrote an unreadable report")

    def send(self, frame: bytes) -> bool:
        """Hand one frame to the worker without waiting; False (and counted) when dropped."""
        stdin = self._stdin
        if stdin is None or stdin.is_closing():
            self._dropped["worker_down"].inc()
            return False
        if stdin.transport.get_write_buffer_size() > self._max_buffer:
            self._dropped["worker_busy"].inc()
            return False
        stdin.write(frame)
        self._handed += 1
        return True

    async def stop(self, timeout_seconds: float) -> None:
        """End the frames (the worker flushes its logger and exits); kill it past the timeout."""
        self._stopping = True
        stdin, process = self._stdin, self._process
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()
        if process is not None and process.returncode is None:
            try:
                async with asyncio.timeout(timeout_seconds + 2):
                    await process.wait()
            except TimeoutError:
                process.kill()
        if self._supervisor is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(2):
                    await self._supervisor
