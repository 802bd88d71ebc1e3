"""Latency the logging proxy adds, against direct calls to the same model server in the same run.

    python bench/proxy.py [--server kserve|mlserver] [--requests N] [--rows R] [--json]

Starts a real model server (scripts/model-servers: a KServe Python ModelServer with a small v1
model by default, or MLServer's v2 REST API serving scikit-learn) and a real `driftline proxy`
process in front of it, logging to KAFKA_BOOTSTRAP_SERVERS (127.0.0.1:9092 when unset; with no
broker the logger drops and counts, which the request path does not see). Then sends the same
inference request (R rows) N times to each, one after the other, alternating which goes first,
on one keep-alive connection each (http.client: the client costs the same on both sides).
Reports median, p99 and max of each side in microseconds and the added latency: proxied minus
direct, at the median and at the p99, and the median of the per-pair differences. The goal is
p99 under 1 ms added.

The proxy, the server, the client and the logger's sending thread share the machine's cores:
on a loaded machine the p99 of both sides is mostly scheduling, which the report says.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import model_servers  # noqa: E402 - after the path is set

RESULTS = ROOT / "bench" / "results" / "proxy.json"


def _request(server: str, rows: int) -> tuple[str, bytes]:
    rng = np.random.default_rng(7)
    values = np.round(rng.uniform(1.0, 7.0, size=(rows, 4)), 1).tolist()
    if server == "kserve":
        return "/v1/models/iris:predict", json.dumps({"instances": values}).encode()
    body = {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [rows, 4],
                        "data": [v for row in values for v in row]}]}
    return "/v2/models/iris/infer", json.dumps(body).encode()


def _call(connection: http.client.HTTPConnection, path: str, body: bytes, request_id: str
          ) -> float:
    started = time.perf_counter()
    connection.request("POST", path, body=body, headers={
        "content-type": "application/json", "x-request-id": request_id})
    response = connection.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}")
    return elapsed


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc), whatever else runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    return [int(child) for child in
            Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _stats(seconds: list[float]) -> dict[str, float]:
    micro = np.asarray(seconds) * 1e6
    return {"median_us": float(np.median(micro)), "p99_us": float(np.percentile(micro, 99)),
            "max_us": float(micro.max())}


def measure(server_name: str, requests: int, rows: int, workdir: Path) -> dict[str, Any]:
    """Start the server and the proxy, time both sides, stop them."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    server = model_servers.start(server_name, workdir)
    proxy = None
    try:
        proxy = model_servers.start_proxy(server.url, model=f"bench-{server_name}",
                                          bootstrap=bootstrap, topic="driftline.bench.proxy",
                                          workdir=workdir)
        path, body = _request(server_name, rows)
        direct_host = server.url.removeprefix("http://").split(":")
        proxy_host = proxy.url.removeprefix("http://").split(":")
        direct = http.client.HTTPConnection(direct_host[0], int(direct_host[1]), timeout=30)
        proxied = http.client.HTTPConnection(proxy_host[0], int(proxy_host[1]), timeout=30)
        for i in range(200):  # warm-up: connections, the metadata fetch, caches
            _call(direct, path, body, f"warm-{i}")
            _call(proxied, path, body, f"warm-{i}")
        direct_times: list[float] = []
        proxied_times: list[float] = []
        pid = proxy.process.pid
        (worker,) = _children(pid)
        cpu_before, worker_before = _cpu_seconds(pid), _cpu_seconds(worker)
        for i in range(requests):
            if i % 2:
                direct_times.append(_call(direct, path, body, f"d-{i}"))
                proxied_times.append(_call(proxied, path, body, f"p-{i}"))
            else:
                proxied_times.append(_call(proxied, path, body, f"p-{i}"))
                direct_times.append(_call(direct, path, body, f"d-{i}"))
        time.sleep(1.0)  # the logger's thread sends what is left
        cpu_per_request_us = (_cpu_seconds(pid) - cpu_before) / requests * 1e6
        worker_per_request_us = (_cpu_seconds(worker) - worker_before) / requests * 1e6
        metrics = proxy.metrics()
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()
    d, p = _stats(direct_times), _stats(proxied_times)
    pairs = (np.asarray(proxied_times) - np.asarray(direct_times)) * 1e6
    return {
        "server": server_name, "requests": requests, "rows_per_request": rows,
        "direct": d, "proxied": p,
        "added_median_us": p["median_us"] - d["median_us"],
        "added_p99_us": p["p99_us"] - d["p99_us"],
        "added_pairwise_median_us": float(np.median(pairs)),
        "ratio_median": p["median_us"] / d["median_us"],
        "proxy_cpu_per_request_us": cpu_per_request_us,
        "log_worker_cpu_per_request_us": worker_per_request_us,
        "ratio_p99": p["p99_us"] / d["p99_us"],
        "events_sent": metrics.get(
            'driftline_sidecar_events_total{kind="prediction",outcome="sent"}', 0.0),
        "events_dropped": sum(v for k, v in metrics.items()
                              if k.startswith("driftline_sidecar_dropped_total")),
        "rows_logged": metrics.get("driftline_proxy_rows_logged_total", 0.0),
        "cpus": os.cpu_count(), "load_average_1m": os.getloadavg()[0],
    }


def main() -> None:
    """Run the bench and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["kserve", "mlserver"], default="kserve")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rows", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="driftline-bench-proxy-") as tmp:
        result = measure(args.server, args.requests, args.rows, Path(tmp))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"proxy in front of {result['server']}: {result['requests']} requests of "
          f"{result['rows_per_request']} rows each side (microseconds)")
    print(f"{'':<10} {'median':>9} {'p99':>9} {'max':>10}")
    for side in ("direct", "proxied"):
        s = result[side]
        print(f"{side:<10} {s['median_us']:9.0f} {s['p99_us']:9.0f} {s['max_us']:10.0f}")
    print(f"added: median {result['added_median_us']:.0f} us, p99 {result['added_p99_us']:.0f} us"
          f" (pairwise median {result['added_pairwise_median_us']:.0f} us); ratio "
          f"{result['ratio_median']:.2f}x median, {result['ratio_p99']:.2f}x p99")
    print(f"CPU per request: proxy process {result['proxy_cpu_per_request_us']:.0f} us "
          f"(forwarding, on the request path), log worker process "
          f"{result['log_worker_cpu_per_request_us']:.0f} us (parsing and sending, off it)")
    print(f"logged {result['rows_logged']:.0f} rows: {result['events_sent']:.0f} sent, "
          f"{result['events_dropped']:.0f} dropped; {result['cpus']} cores, load average "
          f"{result['load_average_1m']:.1f} (a loaded machine inflates both sides' p99)")


if __name__ == "__main__":
    main()
