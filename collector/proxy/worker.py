"""The proxy's log worker: a child process that turns exchanges into events and sends them.

    python -m collector.proxy.worker '<settings as JSON>'

Why a process, not a thread: parsing the bodies and the sidecar's encoding and kafka-python's
sending cost about 300 us of CPU per row, and in the proxy's own process every microsecond of it
holds the GIL the event loop needs for the next request (measured: a four-row request's median
added latency went from about 0.25 ms to over 1 ms with logging in a thread). In a child process
it runs on another core and the request path only writes one frame to a pipe.

Reads frames from stdin until EOF (`encode_frame` is the one writer), then flushes the logger
and exits; SIGINT and SIGTERM are ignored, so that the proxy alone ends it (its pipe closes when
the proxy exits, however it exits). Every `REPORT_SECONDS` it writes one JSON line of counts to
stdout, which the proxy exposes on its /metrics (collector/proxy/handoff.py).
"""

from __future__ import annotations

import http.client
import json
import logging
import signal
import struct
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, BinaryIO, Final, cast
from urllib.parse import urlsplit

from collector.proxy.recorder import Exchange, Recorder
from driftline_sidecar import PredictionLogger
from driftline_sidecar.payloads import Route

logger = logging.getLogger(__name__)

REPORT_SECONDS: Final = 0.5
_HEAD: Final = struct.Struct("<III")  # the lengths of meta, request body, response body


def encode_frame(route: Route, *, request_id: str, status: int, started_at: float,
                 latency_ms: float, request_body: bytes, response_body: bytes | None,
                 request_encoding: str | None = None,
                 response_encoding: str | None = None) -> bytes:
    """One exchange as the worker reads it (`started_at` in seconds since the epoch).

    The bodies go as they were sent; their Content-Encoding, if any, goes with them.

    Examples:
        >>> frame = encode_frame(Route("v1", "iris", None, "infer"), request_id="r1", status=200,
        ...                      started_at=0.0, latency_ms=1.5, request_body=b"{}",
        ...                      response_body=b"{}")
        >>> import io
        >>> read_frame(io.BytesIO(frame)).request_id
        'r1'
    """
    meta = json.dumps([route.protocol, route.model, route.version, request_id, status,
                       started_at, latency_ms, response_body is None, request_encoding,
                       response_encoding]).encode()
    response = b"" if response_body is None else response_body
    return b"".join((_HEAD.pack(len(meta), len(request_body), len(response)), meta,
                     request_body, response))


def read_frame(stream: BinaryIO) -> Exchange | None:
    """The next exchange on `stream`, or None at its end."""
    head = stream.read(_HEAD.size)
    if len(head) < _HEAD.size:
        return None
    meta_size, request_size, response_size = _HEAD.unpack(head)
    meta = stream.read(meta_size)
    request_body = stream.read(request_size)
    response_body = stream.read(response_size)
    if len(meta) + len(request_body) + len(response_body) < meta_size + request_size + \
            response_size:
        return None
    (protocol, model, version, request_id, status, started_at, latency_ms, too_large,
     request_encoding, response_encoding) = json.loads(meta)
    return Exchange(route=Route(protocol, model, version, "infer"), request_id=request_id,
                    request_body=request_body,
                    response_body=None if too_large else response_body, status=status,
                    started_at=datetime.fromtimestamp(started_at, UTC), latency_ms=latency_ms,
                    request_encoding=request_encoding, response_encoding=response_encoding)


def _fetcher(upstream: str) -> Any:
    parts = urlsplit(upstream)
    prefix = parts.path.rstrip("/")

    def fetch(path: str) -> bytes | None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                                timeout=5)
        try:
            connection.request("GET", prefix + path, headers={"accept": "application/json"})
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()
        return body if response.status == 200 else None

    return fetch


def _report(out: BinaryIO, sidecar: PredictionLogger, recorder: Recorder,
            lock: threading.Lock, frames: int) -> None:
    stats = sidecar.stats
    line = json.dumps({"frames": frames, "rows_logged": recorder.rows_logged,
                       "unlogged": recorder.unlogged,
                       "sent": stats.sent, "dropped": dict(stats.dropped),
                       "pending": stats.pending}).encode() + b"\n"
    with lock:
        try:
            out.write(line)
            out.flush()
        except (OSError, ValueError):  # the proxy went away; the frames' EOF ends this process
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker with the settings given as one JSON argument."""
    args = sys.argv[1:] if argv is None else list(argv)
    settings: dict[str, Any] = json.loads(args[0])
    # The proxy decides when this ends, by closing the frames' pipe (also when it dies): a
    # Ctrl-C or a SIGTERM sent to the whole process group must not cut the flush short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=settings.get("log_level", "WARNING"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)
    sidecar = PredictionLogger(settings["bootstrap_servers"], model=settings["model"],
                               predictions_topic=settings["predictions_topic"],
                               labels_topic=settings["labels_topic"],
                               buffer_size=settings["buffer_size"],
                               max_unsent_seconds=settings["max_unsent_seconds"])
    recorder = Recorder(sidecar, model=settings["model"],
                        feature_names=settings.get("feature_names"),
                        fetch_metadata=_fetcher(settings["upstream"]),
                        output=settings.get("output"))
    out = cast(BinaryIO, sys.stdout.buffer)
    lock = threading.Lock()
    done = threading.Event()

    frames = [0]  # read so far: the proxy counts what it handed over beyond it, if this dies

    def report_forever() -> None:
        while not done.wait(REPORT_SECONDS):
            _report(out, sidecar, recorder, lock, frames[0])

    reporter = threading.Thread(target=report_forever, name="driftline-proxy-report",
                                daemon=True)
    reporter.start()
    stream = cast(BinaryIO, sys.stdin.buffer)
    try:
        while (exchange := read_frame(stream)) is not None:
            frames[0] += 1
            recorder.record(exchange)
    finally:
        sidecar.close(float(settings.get("close_timeout_seconds", 10.0)))
        done.set()
        _report(out, sidecar, recorder, lock, frames[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
