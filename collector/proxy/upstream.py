"""A pooled HTTP/1.1 client for the logging proxy's one upstream, on asyncio streams and httptools.

Why not httpx: its pure-Python HTTP/1.1 layer (h11, httpcore) costs a few hundred microseconds
per exchange, the whole budget the proxy has (issue 13: p99 under 1 ms added). httptools is the C
parser (llhttp) uvicorn already serves with, so parsing the upstream's responses costs a few
microseconds; the rest is one write and the reads.

The request goes out in one write (head and body, body framed by Content-Length: the proxy reads
the caller's body first), and the response is handed over as it arrives: status and headers as
the upstream sent them, then body pieces (chunked framing removed; the proxy's server frames them
again), so a streamed answer stays streamed. Idle keep-alive connections are pooled; a pooled
connection the upstream closed meanwhile is retried once on a new one, which is safe because
nothing of the response was read and the whole request is at hand.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

import httptools

from collector.errors import CollectorError

Headers = list[tuple[bytes, bytes]]

_READ_BYTES: Final = 65_536


class UpstreamError(CollectorError):
    """The upstream could not be reached, or broke the exchange before answering."""


class _Parsed:
    """httptools callbacks: what one response has delivered so far."""

    __slots__ = ("body", "complete", "headers", "headers_done", "keep_alive", "parser")

    def __init__(self) -> None:
        self.headers: Headers = []
        self.headers_done = False
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        # Asked now: once the message is complete, llhttp's flags are reset and it says False.
        self.keep_alive = self.parser is not None and self.parser.should_keep_alive()
        self.complete = True


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Response:
    """One upstream response: `status` and `headers` as sent, then `read()` the body pieces."""

    __slots__ = ("_connection", "_head_request", "_parsed", "_parser", "_pool", "headers",
                 "status")

    def __init__(self, pool: Upstream, connection: _Connection,
                 parser: httptools.HttpResponseParser, parsed: _Parsed, *,
                 head_request: bool) -> None:
        self._pool = pool
        self._connection: _Connection | None = connection
        self._parser = parser
        self._parsed = parsed
        self._head_request = head_request
        self.status: int = parser.get_status_code()
        self.headers: Headers = parsed.headers

    async def read(self) -> tuple[bytes, bool]:
        """The body received since the last call (waiting for some), and whether it is all in.

        Raises:
            UpstreamError: When the upstream closes the connection mid-body.
        """
        parsed = self._parsed
        if self._head_request:  # a HEAD answer has no body, whatever Content-Length says
            self._finish(reuse=False)
            return b"", True
        while not parsed.body and not parsed.complete:
            connection = self._connection
            if connection is None:
                return b"", True
            try:
                data = await connection.reader.read(_READ_BYTES)
            except OSError as exc:
                self._finish(reuse=False)
                raise UpstreamError(f"upstream connection broke mid-body: {exc}") from exc
            if not data:  # EOF: the end of a body delimited by the connection's close, or a cut
                self._feed_eof()
                break
            self._feed(data)
        chunks, parsed.body = parsed.body, []
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if parsed.complete:
            self._finish(reuse=parsed.keep_alive)
            return body, True
        return body, False

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(reuse=False)
            raise UpstreamError(f"upstream sent a malformed response: {exc}") from exc

    def _feed_eof(self) -> None:
        # llhttp completes a message whose body runs to EOF only when told; anything else is a cut.
        self._finish(reuse=False)
        if not self._parsed.complete and not self._body_to_eof():
            raise UpstreamError("upstream closed the connection mid-body")
        self._parsed.complete = True

    def _body_to_eof(self) -> bool:
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _finish(self, *, reuse: bool) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            self._pool.release(connection, reuse=reuse)

    def close(self) -> None:
        """Give the connection up (a body not read to the end makes it unusable)."""
        self._finish(reuse=False)


class Upstream:
    """Keep-alive connections to one HTTP server, sending requests as they are given.

    Args:
        url: ``http://host[:port][/prefix]``; the prefix is put before every request's target.
        max_idle: Idle connections kept for reuse.
        connect_timeout_seconds: The longest wait for a new connection.
        response_timeout_seconds: The longest wait for a response's status and headers.

    Raises:
        ValueError: When `url` is not an ``http://`` URL with a host.
    """

    def __init__(self, url: str, *, max_idle: int = 64, connect_timeout_seconds: float = 5.0,
                 response_timeout_seconds: float = 300.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be an http://host:port URL, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/").encode()
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout_seconds
        self._response_timeout = response_timeout_seconds
        self._idle: deque[_Connection] = deque()

    async def _connect(self) -> _Connection:
        try:
            async with asyncio.timeout(self._connect_timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect to the upstream {self.host}:{self.port}: "
                                f"{exc}") from exc
        return _Connection(reader, writer)

    def release(self, connection: _Connection, *, reuse: bool) -> None:
        """Return a connection whose exchange is over, to the pool or closed."""
        if reuse and len(self._idle) < self._max_idle and not connection.reader.at_eof():
            self._idle.append(connection)
        else:
            connection.close()

    async def request(self, method: str, target: bytes, headers: Sequence[tuple[bytes, bytes]],
                      body: bytes) -> Response:
        """Send one request and wait for the response's status and headers.

        Args:
            method: The HTTP method.
            target: The path and query, as the caller sent them.
            headers: Header lines to send (framing headers already set by the caller).
            body: The whole body.

        Raises:
            UpstreamError: When the upstream cannot be reached or answers with no valid response.
        """
        lines = [method.encode("ascii"), b" ", self.prefix, target, b" HTTP/1.1\r\n"]
        for name, value in headers:
            lines += (name, b": ", value, b"\r\n")
        lines.append(b"\r\n")
        lines.append(body)
        payload = b"".join(lines)
        head_request = method == "HEAD"
        while self._idle:
            connection = self._idle.pop()
            try:
                return await self._exchange(connection, payload, head_request=head_request)
            except _StaleConnection:
                continue  # closed by the upstream while idle: nothing was answered, try another
        try:
            return await self._exchange(await self._connect(), payload, head_request=head_request)
        except _StaleConnection as exc:
            raise UpstreamError("the upstream closed a new connection without answering") from exc

    async def _exchange(self, connection: _Connection, payload: bytes, *,
                        head_request: bool) -> Response:
        parsed = _Parsed()
        parser = httptools.HttpResponseParser(parsed)
        parsed.parser = parser
        received = False
        try:
            connection.writer.write(payload)
            async with asyncio.timeout(self._response_timeout):
                while True:
                    data = await connection.reader.read(_READ_BYTES)
                    if not data:
                        connection.close()
                        if received:
                            raise UpstreamError("the upstream closed the connection mid-response")
                        raise _StaleConnection
                    received = True
                    parser.feed_data(data)
                    if not parsed.headers_done:
                        continue
                    status = parser.get_status_code()
                    if 100 <= status < 200 and status != 101:
                        # An interim answer (100 Continue, 103 Early Hints): the real one follows.
                        parsed.__init__()  # type: ignore[misc]
                        parsed.parser = parser
                        continue
                    return Response(self, connection, parser, parsed, head_request=head_request)
        except (ConnectionResetError, BrokenPipeError) as exc:
            connection.close()
            if received:
                raise UpstreamError(f"the upstream broke the connection: {exc}") from exc
            raise _StaleConnection from exc
        except TimeoutError as exc:
            connection.close()
            raise UpstreamError("the upstream did not answer in time") from exc
        except OSError as exc:
            connection.close()
            raise UpstreamError(f"the upstream connection failed: {exc}") from exc
        except httptools.HttpParserError as exc:
            connection.close()
            raise UpstreamError(f"the upstream sent a malformed response: {exc}") from exc

    def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            self._idle.pop().close()


class _StaleConnection(Exception):  # noqa: N818 - internal signal, never leaves this module
    """A connection closed before any byte of the response: the request may be sent again."""
