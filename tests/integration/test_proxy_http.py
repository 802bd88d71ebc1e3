"""The logging proxy's HTTP behaviour against a raw upstream written here, byte by byte.

The upstream is an asyncio server in a thread of the test process that answers per path with
exactly the bytes the case needs (chunked and streamed, EOF-delimited, HEAD, 204, a keep-alive
connection it closes behind the proxy's back, 10 MB); the proxy is the real `driftline proxy`
process. Real servers are in test_proxy_servers.py.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration import model_servers
from tests.integration.model_servers import ModelServerError, ProxyProcess

pytestmark = pytest.mark.integration

BIG = b"x" * (10 * 1024 * 1024)
V1_RESPONSE = b'{"predictions": [1, 0]}'
GZIPPED = gzip.compress(V1_RESPONSE, mtime=0)


class RawUpstream:
    """An HTTP/1.1 server answering with hand-written bytes; records what it received."""

    def __init__(self) -> None:
        self.port = model_servers.free_port()
        self.received: list[tuple[bytes, bytes]] = []  # (head, body)
        self.second_chunk = threading.Event()
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port))
        ready.set()
        self._loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                self.received.append((head, body))
                method, target = head.split(b" ")[:2]
                if not await self._answer(method, target, head, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def _answer(self, method: bytes, target: bytes, head: bytes,
                      writer: asyncio.StreamWriter) -> bool:
        """Write the response; False to close the connection after it."""
        path = target.split(b"?")[0]
        if path == b"/stream":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                         b"transfer-encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
            await writer.drain()
            await asyncio.get_running_loop().run_in_executor(None, self.second_chunk.wait, 10)
            writer.write(b"7\r\nsecond\n\r\n0\r\n\r\n")
        elif path == b"/echo":
            body = json.dumps({"head": head.decode("latin-1")}).encode()
            writer.write(b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
                         b"x-custom: one\r\nset-cookie: a=1\r\nset-cookie: b=2\r\n"
                         b"content-length: %d\r\n\r\n" % len(body) + body)
        elif path == b"/empty":
            writer.write(b"HTTP/1.1 204 No Content\r\nx-custom: none\r\n\r\n")
        elif path == b"/eof":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n"
                         b"\r\nuntil the end")
            await writer.drain()
            return False
        elif path == b"/big":
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(BIG)
                         + (b"" if method == b"HEAD" else BIG))
        elif path == b"/drop-after":  # keep-alive promised, then closed behind the proxy's back
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            return False
        elif path == b"/api/v1.0/predictions":
            payload = b'{"data": {"names": ["p"], "ndarray": [[0.25]]}, "meta": {"puid": "s-1"}}'
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n" % len(payload) + payload)
        elif path.startswith(b"/v1/models/") and b"x-gzip-please" in head.lower():
            payload = GZIPPED
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-encoding: gzip\r\ncontent-length: %d\r\n\r\n"
                         % len(payload) + payload)
        elif path.startswith(b"/v1/models/"):
            payload = b"not json" if b"x-plain" in head.lower() else V1_RESPONSE
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n" % len(payload) + payload)
        else:
            writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        return True

    def close(self) -> None:
        """Stop the server's loop."""
        self.second_chunk.set()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    server = RawUpstream()
    yield server
    server.close()


@pytest.fixture(scope="module")
def proxy(upstream: RawUpstream, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[ProxyProcess]:
    try:
        running = model_servers.start_proxy(
            f"http://127.0.0.1:{upstream.port}", model="raw", bootstrap="127.0.0.1:1",
            topic="unused", workdir=tmp_path_factory.mktemp("proxy"),
            extra=["--features", "a,b"])
    except ModelServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield running
    running.stop()


def _wait_metric(proxy: ProxyProcess, key: str, value: float) -> dict[str, float]:
    deadline = time.monotonic() + 10
    metrics = proxy.metrics()
    while metrics.get(key) != value and time.monotonic() < deadline:
        time.sleep(0.2)
        metrics = proxy.metrics()
    return metrics


def test_a_streamed_response_stays_streamed(proxy: ProxyProcess, upstream: RawUpstream) -> None:
    with httpx.Client(timeout=20) as client, client.stream("GET", f"{proxy.url}/stream") as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "text/event-stream"
        pieces = resp.iter_bytes()
        # The first chunk arrives while the upstream still holds the second one back.
        assert next(pieces) == b"first\n"
        upstream.second_chunk.set()
        assert b"".join(pieces) == b"second\n"


def test_request_and_response_pass_unchanged(proxy: ProxyProcess, upstream: RawUpstream) -> None:
    target = "/echo?q=a%20b&q=2"
    response = httpx.post(proxy.url + target, content=b'{"k": 1}',
                          headers={"x-trace": "t-1", "content-type": "application/json",
                                   "connection": "keep-alive, x-hop", "x-hop": "not forwarded"})
    assert response.status_code == 201
    assert response.headers["x-custom"] == "one"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    head, body = upstream.received[-1]
    assert body == b'{"k": 1}'
    lines = head.decode().split("\r\n")
    assert lines[0] == f"POST {target} HTTP/1.1"
    headers = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines[1:] if line}
    assert headers["x-trace"] == "t-1"
    assert headers["content-length"] == "8"
    assert "x-request-id" not in headers  # not an inference request: not touched
    assert "x-hop" not in headers  # named by Connection: one hop's (RFC 9110 section 7.6.1)
    assert "x-request-id" not in response.headers


def test_a_chunked_request_body_is_forwarded_whole(proxy: ProxyProcess,
                                                   upstream: RawUpstream) -> None:
    def pieces() -> Iterator[bytes]:
        yield b'{"instances": '
        yield b"[[1, 2], [3, 4]]}"

    response = httpx.post(proxy.url + "/echo", content=pieces())
    assert response.status_code == 201
    head, body = upstream.received[-1]
    assert body == b'{"instances": [[1, 2], [3, 4]]}'
    assert b"transfer-encoding" not in head.lower()


def test_head_204_and_eof_delimited_bodies(proxy: ProxyProcess) -> None:
    with httpx.Client(timeout=20) as client:
        head = client.head(proxy.url + "/big")
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(BIG))
        assert head.content == b""
        empty = client.get(proxy.url + "/empty")
        assert (empty.status_code, empty.content, empty.headers["x-custom"]) == (204, b"", "none")
        eof = client.get(proxy.url + "/eof")
        assert (eof.status_code, eof.content) == (200, b"until the end")
        big = client.get(proxy.url + "/big")
        assert big.content == BIG
        missing = client.get(proxy.url + "/nothing-here")
        assert missing.status_code == 404


def test_a_connection_the_upstream_closed_while_idle_is_retried(proxy: ProxyProcess,
                                                                upstream: RawUpstream) -> None:
    before = upstream.connections
    with httpx.Client(timeout=20) as client:
        for _ in range(5):
            response = client.get(proxy.url + "/drop-after")
            assert (response.status_code, response.content) == (200, b"ok")
            time.sleep(0.05)  # the upstream's close reaches the proxy's pooled connection
    # Each request after the first needs a new connection: the pooled one is found closed.
    assert upstream.connections - before >= 4
    # ... and none was sent twice: the stale connection had answered nothing.
    assert sum(head.startswith(b"GET /drop-after ") for head, _ in upstream.received) == 5


def test_inference_gets_a_request_id_and_odd_bodies_are_counted(proxy: ProxyProcess) -> None:
    with httpx.Client(timeout=20) as client:
        given = client.post(proxy.url + "/v1/models/m:predict", json={"instances": [[1, 2]] * 2},
                            headers={"x-request-id": "mine"})
        made_up = client.post(proxy.url + "/v1/models/m:predict", json={"instances": [[1, 2]] * 3})
        plain = client.post(proxy.url + "/v1/models/m:predict", content=b"[[1, 2]]",
                            headers={"x-plain": "1"})
    assert given.headers["x-request-id"] == "mine"
    assert given.content == V1_RESPONSE
    assert len(made_up.headers["x-request-id"]) == 32
    assert plain.status_code == 200
    assert plain.content == b"not json"
    # The upstream answers two predictions: right for two rows (logged), not for three
    # (counted); the non-JSON request is counted too; none failed.
    metrics = _wait_metric(proxy, "driftline_proxy_rows_logged_total", 2.0)
    assert metrics["driftline_proxy_rows_logged_total"] == 2.0
    assert metrics['driftline_proxy_unlogged_total{reason="row_count_mismatch"}'] == 1.0
    assert metrics['driftline_proxy_unlogged_total{reason="not_an_object"}'] == 1.0


def test_a_seldon_request_is_named_by_its_puid(proxy: ProxyProcess) -> None:
    before = proxy.metrics()["driftline_proxy_rows_logged_total"]
    response = httpx.post(proxy.url + "/api/v1.0/predictions", json={
        "meta": {"puid": "s-1"}, "data": {"names": ["a", "b"], "ndarray": [[1, 2]]}})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "s-1"
    key = "driftline_proxy_rows_logged_total"
    assert _wait_metric(proxy, key, before + 1)[key] == before + 1


def test_a_compressed_response_passes_compressed_and_is_logged(proxy: ProxyProcess) -> None:
    key = "driftline_proxy_rows_logged_total"
    before = proxy.metrics()[key]
    with httpx.Client(timeout=20) as client, client.stream(
            "POST", proxy.url + "/v1/models/m:predict", json={"instances": [[1, 2], [3, 4]]},
            headers={"accept-encoding": "gzip", "x-gzip-please": "1"}) as response:
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert raw == GZIPPED  # the bytes as the upstream sent them
    assert _wait_metric(proxy, key, before + 2)[key] == before + 2


def test_a_request_too_large_to_log_passes_and_is_counted(proxy: ProxyProcess) -> None:
    key = 'driftline_proxy_unlogged_total{reason="too_large"}'
    before = proxy.metrics()[key]
    rows = [[1.0, 2.0]] * 1_000_000  # 10 MB of JSON, over the 8 MiB kept for logging
    response = httpx.post(proxy.url + "/v1/models/m:predict", json={"instances": rows},
                          timeout=60)
    assert (response.status_code, response.content) == (200, V1_RESPONSE)
    assert _wait_metric(proxy, key, before + 1)[key] == before + 1


def test_concurrent_requests_each_get_their_own_answer(proxy: ProxyProcess) -> None:
    async def run() -> list[tuple[int, bytes]]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=40)) as client:
            async def one(i: int) -> tuple[int, bytes]:
                response = await client.post(f"{proxy.url}/echo?n={i}", content=b"%d" % i)
                return i, response.content

            return await asyncio.gather(*(one(i) for i in range(200)))

    for i, content in asyncio.run(run()):
        # The upstream echoes the request line it got: no answer went to another request.
        assert f"POST /echo?n={i} HTTP/1.1" in json.loads(content)["head"]


def test_an_unreachable_upstream_is_a_502_and_counted(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{model_servers.free_port()}"
    try:
        proxy = model_servers.start_proxy(dead, model="raw", bootstrap="127.0.0.1:1",
                                          topic="unused", workdir=tmp_path)
    except ModelServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        response = httpx.post(proxy.url + "/v2/models/m/infer", json={"inputs": []})
        assert response.status_code == 502
        body: Any = response.json()
        assert "cannot be reached" in body["error"]
        assert proxy.metrics()["driftline_proxy_upstream_failures_total"] == 1.0
    finally:
        proxy.stop()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def test_a_killed_log_worker_is_restarted_and_no_request_notices(proxy: ProxyProcess) -> None:
    import os
    import signal

    (worker,) = _children(proxy.process.pid)
    before = proxy.metrics()
    os.kill(worker, signal.SIGKILL)
    with httpx.Client(timeout=20) as client:
        for i in range(40):
            response = client.post(proxy.url + "/v1/models/m:predict",
                                   json={"instances": [[i, i]] * 2})
            assert response.status_code == 200
            assert response.content == V1_RESPONSE
            time.sleep(0.05)
    after = _wait_metric(proxy, "driftline_proxy_log_worker_restarts_total", 1.0)
    assert after["driftline_proxy_log_worker_restarts_total"] == 1.0
    (restarted,) = _children(proxy.process.pid)
    assert restarted != worker
    # Every exchange is either logged by a worker, or counted: handed to the dead one before the
    # proxy saw it die (worker_died), or sent while none ran (worker_down). The counts from
    # before the kill are kept.
    deadline = time.monotonic() + 10
    while True:
        after = proxy.metrics()
        logged = (after["driftline_proxy_rows_logged_total"]
                  - before["driftline_proxy_rows_logged_total"]) / 2
        lost = sum(after[key] - before[key] for key in (
            'driftline_proxy_exchanges_dropped_total{reason="worker_down"}',
            'driftline_proxy_exchanges_dropped_total{reason="worker_died"}'))
        if logged + lost >= 40 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert lost > 0
    assert logged > 0
    assert logged + lost == 40
