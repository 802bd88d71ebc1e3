"""What driftline_sidecar.asgi.PredictionLoggingMiddleware adds to a request, in the same run.

    python bench/asgi_middleware.py [--requests N] [--rows R] [--http] [--json]

Calls ASGI apps in process (no sockets, so that the network's noise does not hide
microseconds): a bare ASGI model endpoint and the same endpoint in a FastAPI app, each alone
(the baseline) and wrapped in the middleware, in interleaved blocks so that the machine's load
falls on both alike. A request is a JSON batch of R rows of six features, the answer one score
per row. Reports per-request median and p99 in microseconds, what the middleware adds, and how
fast its thread then parses and logs rows (the logger has no broker, as bench/sidecar.py's
first case: log() alone; with KAFKA_BOOTSTRAP_SERVERS set, also against that broker).

With --http, the latency a client sees instead: the FastAPI app bare, logging each row itself
with `PredictionLogger.log()` (what the middleware spares writing), and wrapped, each under
uvicorn in a process of its own, called over loopback with keep-alive by one client that
alternates between them in blocks (the logging servers log to KAFKA_BOOTSTRAP_SERVERS when set,
else to no broker). This includes what the middleware's thread costs the event loop between
requests, which the in-process numbers leave out when the client waits for nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
from fastapi import FastAPI, Request

from driftline_sidecar import PredictionLogger
from driftline_sidecar.asgi import PredictionLoggingMiddleware

Message = MutableMapping[str, Any]
App = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
               Awaitable[None]]
BLOCK = 200


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _score(row: dict[str, Any]) -> float:
    return round(min(row["amount"] / 1000, 1.0), 6)


async def bare_app(scope: Message, receive: Callable[[], Awaitable[Message]],
                   send: Callable[[Message], Awaitable[None]]) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    rows = json.loads(body)
    answer = json.dumps({"predictions": [_score(row) for row in rows]}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})


def fastapi_app(sidecar: PredictionLogger | None = None) -> FastAPI:
    """The model endpoint; with `sidecar` it logs each row itself, as a hand-written server does."""
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        rows = await request.json()
        predictions = [_score(row) for row in rows]
        if sidecar is not None:
            for row, prediction in zip(rows, predictions, strict=True):
                sidecar.log(features=row, prediction=prediction)
        return {"predictions": predictions}

    return app


def _payload(rows: int) -> bytes:
    return json.dumps([{"amount": 12.5 + i, "age": 41.0, "n_items": 3, "hour": 14.5,
                        "country": "DE", "device": "ios"} for i in range(rows)]).encode()


async def _call(app: App, body: bytes) -> None:
    scope: Message = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                      "method": "POST", "path": "/predict", "raw_path": b"/predict",
                      "query_string": b"", "root_path": "", "scheme": "http",
                      "headers": [(b"content-type", b"application/json"),
                                  (b"content-length", str(len(body)).encode())],
                      "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        return None

    await app(scope, receive, send)


async def _measure(apps: dict[str, App], body: bytes, requests: int) -> dict[str, np.ndarray]:
    samples: dict[str, list[int]] = {name: [] for name in apps}
    clock = time.perf_counter_ns
    for app in apps.values():  # warm up: lazy middleware stacks, first imports
        for _ in range(50):
            await _call(app, body)
    done = 0
    while done < requests:
        for name, app in apps.items():
            for _ in range(BLOCK):
                started = clock()
                await _call(app, body)
                samples[name].append(clock() - started)
        done += BLOCK
    return {name: np.array(values) / 1000.0 for name, values in samples.items()}


def _summary(values: np.ndarray) -> dict[str, float]:
    return {"median_us": round(float(np.median(values)), 1),
            "p99_us": round(float(np.percentile(values, 99)), 1)}


def run(requests: int, rows: int, bootstrap: str) -> dict[str, Any]:
    sidecar = PredictionLogger(bootstrap, model="bench", predictions_topic="driftline.bench.asgi",
                               buffer_size=1_000_000, max_unsent_seconds=5)
    body = _payload(rows)
    base_fastapi = fastapi_app()
    logged_bare = PredictionLoggingMiddleware(bare_app, logger=sidecar,
                                              paths={"/predict": "json"}, queue_size=1_000_000)
    logged_fastapi = PredictionLoggingMiddleware(fastapi_app(), logger=sidecar,
                                                 paths={"/predict": "json"},
                                                 queue_size=1_000_000)
    apps: dict[str, App] = {"asgi": bare_app, "asgi+middleware": logged_bare,
                            "fastapi": base_fastapi, "fastapi+middleware": logged_fastapi}
    samples = asyncio.run(_measure(apps, body, requests))
    drain_started = time.perf_counter()
    drained = logged_bare.drain(600) and logged_fastapi.drain(600)
    drain_seconds = time.perf_counter() - drain_started
    stats = [logged_bare.stats, logged_fastapi.stats]
    sidecar.close(timeout_seconds=10)
    result: dict[str, Any] = {name: _summary(values) for name, values in samples.items()}
    for base in ("asgi", "fastapi"):
        wrapped = samples[f"{base}+middleware"]
        result[f"{base}_added_us"] = {
            "median": round(float(np.median(wrapped) - np.median(samples[base])), 1),
            "p99": round(float(np.percentile(wrapped, 99) - np.percentile(samples[base], 99)), 1),
            "median_ratio": round(float(np.median(wrapped) / np.median(samples[base])), 2)}
    logged_rows = sum(s.rows for s in stats)
    result["rows_logged"] = logged_rows
    result["skipped"] = sum(sum(s.skipped.values()) for s in stats)
    result["drained"] = drained
    result["drain_seconds_after_requests"] = round(drain_seconds, 3)
    result["logger"] = {"sent": sidecar.stats.sent, "dropped": sidecar.stats.dropped_total}
    return result


def serve(port: int, kind: str, bootstrap: str) -> None:
    """One uvicorn server of the FastAPI app: bare, logging by hand, or wrapped (--http mode)."""
    import uvicorn

    sidecar = PredictionLogger(bootstrap, model="bench", predictions_topic="driftline.bench.asgi")
    app: Any = fastapi_app(sidecar if kind == "log()" else None)
    if kind == "middleware":
        app = PredictionLoggingMiddleware(app, logger=sidecar, paths={"/predict": "json"})
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def run_http(requests: int, rows: int, bootstrap: str) -> dict[str, Any]:
    import httpx

    ports = {"fastapi": _closed_port(), "fastapi+log()": _closed_port(),
             "fastapi+middleware": _closed_port()}
    servers = [subprocess.Popen([sys.executable, __file__, "--serve", str(port),
                                 "--bootstrap", bootstrap, "--kind", name.partition("+")[2]])
               for name, port in ports.items()]
    body = _payload(rows)
    samples: dict[str, list[int]] = {name: [] for name in ports}
    try:
        with httpx.Client(timeout=10) as client:
            deadline = time.monotonic() + 60
            for port in ports.values():
                while True:
                    try:
                        client.post(f"http://127.0.0.1:{port}/predict", content=body)
                        break
                    except httpx.TransportError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
            for port in ports.values():  # warm up
                for _ in range(100):
                    client.post(f"http://127.0.0.1:{port}/predict", content=body)
            clock = time.perf_counter_ns
            done = 0
            while done < requests:
                for name, port in ports.items():
                    url = f"http://127.0.0.1:{port}/predict"
                    for _ in range(BLOCK):
                        started = clock()
                        answer = client.post(url, content=body)
                        samples[name].append(clock() - started)
                        answer.raise_for_status()
                done += BLOCK
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
    values = {name: np.array(v) / 1000.0 for name, v in samples.items()}
    result: dict[str, Any] = {name: _summary(v) for name, v in values.items()}
    bare = values["fastapi"]
    for name in ("fastapi+log()", "fastapi+middleware"):
        result[f"{name}_added_us"] = {
            "median": round(float(np.median(values[name]) - np.median(bare)), 1),
            "p99": round(float(np.percentile(values[name], 99) - np.percentile(bare, 99)), 1),
            "median_ratio": round(float(np.median(values[name]) / np.median(bare)), 2)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.kind, args.bootstrap)
        return
    if args.http:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or f"127.0.0.1:{_closed_port()}"
        result = run_http(args.requests, args.rows, bootstrap)
        if args.json:
            print(json.dumps(result, indent=2))
            return
        print(f"{args.requests} requests of {args.rows} row(s) per server over HTTP "
              f"(uvicorn, one process each; shared machine: compare within a run)")
        for name in ("fastapi", "fastapi+log()", "fastapi+middleware"):
            print(f"  {name:20s} median {result[name]['median_us']:8.1f} us   "
                  f"p99 {result[name]['p99_us']:8.1f} us")
        for name in ("fastapi+log()", "fastapi+middleware"):
            added = result[f"{name}_added_us"]
            print(f"  {name:20s} adds median {added['median']:6.1f} us, p99 "
                  f"{added['p99']:6.1f} us (median x{added['median_ratio']})")
        return
    runs = {"no broker": run(args.requests, args.rows, f"127.0.0.1:{_closed_port()}")}
    broker = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if broker:
        runs["broker"] = run(args.requests, args.rows, broker)
    if args.json:
        print(json.dumps(runs, indent=2))
        return
    print(f"{args.requests} requests of {args.rows} row(s) per app, in process "
          f"(shared machine: compare within a run)")
    for case, result in runs.items():
        print(f"\n[{case}]")
        for name in ("asgi", "asgi+middleware", "fastapi", "fastapi+middleware"):
            print(f"  {name:20s} median {result[name]['median_us']:8.1f} us   "
                  f"p99 {result[name]['p99_us']:8.1f} us")
        for base in ("asgi", "fastapi"):
            added = result[f"{base}_added_us"]
            print(f"  middleware on {base:8s} adds median {added['median']:6.1f} us, "
                  f"p99 {added['p99']:6.1f} us (median x{added['median_ratio']})")
        print(f"  rows logged {result['rows_logged']}, skipped {result['skipped']}, queue "
              f"drained {result['drain_seconds_after_requests']} s after the last request; "
              f"logger sent {result['logger']['sent']}, dropped {result['logger']['dropped']}")


if __name__ == "__main__":
    main()
