"""Headless Chromium for the report tests: a DevTools session and a screenshot's pixels.

The DevTools protocol runs over a WebSocket; the few frames a test needs (masked text
out, text in, ping, close; RFC 6455) are written here on the standard library, so the
test needs nothing beyond Debian's `chromium` package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--no-default-browser-check", "--hide-scrollbars"]
_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class BrowserError(RuntimeError):
    """Chromium could not be found, started or driven."""


def find_chromium() -> str:
    """The chromium executable (Debian's package), or BrowserError with the install hint."""
    path = shutil.which("chromium")
    if path is None:
        raise BrowserError("chromium is not installed; run scripts/test-services install "
                           "(as root: apt-get install chromium)")
    return path


class DevTools:
    """One DevTools protocol connection: commands in order, events kept as they arrive."""

    def __init__(self, websocket_url: str, timeout_seconds: float = 30) -> None:
        url = urllib.parse.urlsplit(websocket_url)
        self._socket = socket.create_connection((url.hostname, url.port),
                                                timeout=timeout_seconds)
        key = base64.b64encode(os.urandom(16)).decode()
        self._socket.sendall((
            f"GET {url.path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._receive_some()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        # RFC 6455 section 4.2.2: the server proves the upgrade with SHA-1 of key + GUID.
        accept = base64.b64encode(hashlib.sha1((key + _WEBSOCKET_GUID).encode(),
                                               usedforsecurity=False).digest()).decode()
        if b" 101 " not in head.split(b"\r\n")[0] or accept.encode() not in head:
            raise BrowserError(f"DevTools refused the WebSocket: {head[:300]!r}")
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _receive_some(self) -> bytes:
        chunk = self._socket.recv(1 << 16)
        if not chunk:
            raise BrowserError("DevTools closed the connection")
        return chunk

    def _take(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._buffer += self._receive_some()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _send(self, opcode: int, payload: bytes) -> None:
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._socket.sendall(header + mask + masked)

    def _message(self) -> dict[str, Any]:
        parts: list[bytes] = []
        while True:
            first, second = self._take(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._take(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._take(8))[0]
            mask = self._take(4) if second & 0x80 else b""
            payload = self._take(size)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = first & 0x0F
            if opcode == 0x8:
                raise BrowserError("DevTools closed the WebSocket")
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode in (0x0, 0x1):
                parts.append(payload)
                if first & 0x80:
                    message: dict[str, Any] = json.loads(b"".join(parts))
                    return message

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send a command and return its result (events that arrive meanwhile are kept)."""
        self._next_id += 1
        self._send(0x1, json.dumps({"id": self._next_id, "method": method,
                                    "params": params}).encode())
        while True:
            message = self._message()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str) -> dict[str, Any]:
        """The first event called `event` (already received, or the next to arrive)."""
        for message in self.events:
            if message["method"] == event:
                return message
        while True:
            message = self._message()
            if "method" in message:
                self.events.append(message)
                if message["method"] == event:
                    return message

    def close(self) -> None:
        """Close the connection."""
        self._socket.close()


@contextmanager
def devtools_page(chromium: str, *, width: int, height: int) -> Iterator[DevTools]:
    """A headless Chromium with one page, its DevTools session open; stopped on exit."""
    # Chromium's helper processes may still write to the profile as the browser exits.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        log = Path(profile) / "chromium.log"
        with log.open("wb") as stderr:
            process = subprocess.Popen(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 "--remote-debugging-port=0", f"--window-size={width},{height}", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise BrowserError(f"chromium did not start: {log.read_text()[-2000:]}")
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = json.load(r)
            page = next(t for t in targets if t["type"] == "page")
            session = DevTools(page["webSocketDebuggerUrl"])
            try:
                yield session
            finally:
                session.close()
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def console_errors(events: list[dict[str, Any]]) -> list[str]:
    """Uncaught exceptions, console.error/assert calls and error log entries, as text."""
    errors = []
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            errors.append(details.get("exception", {}).get("description") or details["text"])
        elif event["method"] == "Runtime.consoleAPICalled" and params["type"] in ("error",
                                                                                   "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description")))
                                   for a in params["args"]))
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            errors.append(params["entry"]["text"])
    return errors


def _unfilter(raw: bytes, width: int, height: int, channels: int) -> np.ndarray:
    """Undo the per-row PNG filters (None, Sub, Up, Average, Paeth; PNG spec section 9)."""
    stride = width * channels
    rows = np.frombuffer(raw, np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    previous = np.zeros(stride, np.uint8)
    for y in range(height):
        kind, line = int(rows[y, 0]), rows[y, 1:]
        if kind == 0:
            current = line.copy()
        elif kind == 1:
            current = (np.cumsum(line.reshape(width, channels), axis=0, dtype=np.int64)
                       % 256).astype(np.uint8).ravel()
        elif kind == 2:
            current = line + previous
        elif kind in (3, 4):
            up, data = previous.tolist(), line.tolist()
            row = [0] * stride
            for i in range(stride):
                left = row[i - channels] if i >= channels else 0
                if kind == 3:
                    row[i] = (data[i] + (left + up[i]) // 2) & 0xFF
                    continue
                corner = up[i - channels] if i >= channels else 0
                estimate = left + up[i] - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up[i]), abs(estimate - corner)
                best = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
                row[i] = (data[i] + best) & 0xFF
            current = np.array(row, np.uint8)
        else:
            raise BrowserError(f"PNG row {y}: unknown filter {kind}")
        out[y] = current
        previous = current
    return out.reshape(height, width, channels)


def read_png(path: Path) -> np.ndarray:
    """The pixels (height x width x 3 or 4, uint8) of an 8-bit, non-interlaced RGB(A) PNG."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise BrowserError(f"{path} is not a PNG")
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        size, kind = struct.unpack("!I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + size]
        if zlib.crc32(kind + body) != struct.unpack("!I", data[offset + 8 + size:
                                                               offset + 12 + size])[0]:
            raise BrowserError(f"{path}: damaged {kind!r} chunk")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + size
    width, height, depth, colour, _, _, interlace = struct.unpack("!IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise BrowserError(f"{path}: unsupported PNG (depth {depth}, colour type {colour})")
    return _unfilter(zlib.decompress(b"".join(chunks)), width, height, 3 if colour == 2 else 4)
