"""A lean HTTP/1.1 server: asyncio Protocol + httptools, no framework.

Why not aiohttp: a benchmark pushes ~1000 streams x 50 tokens/s through one core, and a
framework's per-write coroutine, drain and header machinery cost several times more than
one ``transport.write`` per token. This module does only what the simulator needs:
keep-alive, ``Content-Length`` bodies, chunked streams, ``Expect: 100-continue``, and
telling the handler when a client disconnects so its generation can be cancelled.

Contract for handlers: ``handler(request, exchange)`` runs synchronously on the event
loop and must eventually call ``exchange.respond`` or ``start_stream`` ... ``end_stream``
(or never answer, to simulate a hang). Requests on one connection are answered in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import cast

import httptools

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
)


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed request; only the headers the simulator reads are kept."""

    method: str
    path: str
    authorization: str | None
    body: bytes
    query: str = ""


Handler = Callable[[Request, "Exchange"], None]


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


class Exchange:
    """The response side of one request; every method is a no-op once it has ended.

    ``on_abort`` (set by the handler) runs if the client disconnects before the response
    ended; ``on_end`` runs once when the exchange ends either way.
    """

    __slots__ = ("_conn", "ended", "keep_alive", "on_abort", "on_end")

    def __init__(self, conn: Connection, keep_alive: bool) -> None:
        self._conn = conn
        self.keep_alive = keep_alive
        self.ended = False
        self.on_abort: Callable[[], None] | None = None
        self.on_end: Callable[[], None] | None = None

    def respond(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        """Send a complete response with ``Content-Length``."""
        if self.ended:
            return
        head = (
            _status_line(status)
            + (f"content-type: {content_type}\r\ncontent-length: {len(body)}\r\n").encode()
        )
        self._conn.write(head + self._connection_header() + b"\r\n" + body)
        self._end()

    def start_stream(self) -> None:
        """Send the status line and headers of a chunked ``text/event-stream``."""
        if not self.ended:
            self._conn.write(_STREAM_HEAD + self._connection_header() + b"\r\n")

    def send_chunk(self, data: bytes) -> None:
        """Send ``data`` as one HTTP chunk of a started stream."""
        if not self.ended:
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data))

    def end_stream(self, data: bytes = b"") -> None:
        """Send a last chunk (if any) and the chunked terminator."""
        if self.ended:
            return
        last = b"%x\r\n%b\r\n" % (len(data), data) if data else b""
        self._conn.write(last + b"0\r\n\r\n")
        self._end()

    def abort(self) -> None:
        """Called by the connection when the client went away mid-exchange."""
        if self.ended:
            return
        self.ended = True
        if self.on_abort is not None:
            self.on_abort()
        if self.on_end is not None:
            self.on_end()

    def _connection_header(self) -> bytes:
        return b"" if self.keep_alive else b"connection: close\r\n"

    def _end(self) -> None:
        self.ended = True
        if self.on_end is not None:
            self.on_end()
        self._conn.exchange_ended(self)


class Connection(asyncio.Protocol):
    """One client connection: parses requests and runs them one after another."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._queue: deque[tuple[Request, bool]] = deque()
        self._current: Exchange | None = None
        self._url = b""
        self._authorization: str | None = None
        self._body: list[bytes] = []
        self._body_size = 0

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so cast, not assert.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"upgrades are not supported")
        except httptools.HttpParserError:
            self._fail(400, b"malformed HTTP request")

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._queue.clear()
        current, self._current = self._current, None
        if current is not None:
            current.abort()

    # -- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._authorization = None
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"authorization":
            self._authorization = value.decode("latin-1")
        elif lowered == b"expect" and value.lower() == b"100-continue":
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY_BYTES:
            raise httptools.HttpParserError("body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        url = httptools.parse_url(self._url)
        request = Request(
            method=self._parser.get_method().decode("ascii"),
            path=url.path.decode("utf-8", "replace"),
            authorization=self._authorization,
            body=b"".join(self._body),
            query=(url.query or b"").decode("utf-8", "replace"),
        )
        self._queue.append((request, self._parser.should_keep_alive()))
        if self._current is None:
            self._next()

    # -- used by Exchange ------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write to the socket unless the client is gone."""
        if self._transport is not None:
            self._transport.write(data)

    def exchange_ended(self, exchange: Exchange) -> None:
        """Move on to the next queued request, or close if keep-alive is off."""
        if exchange is not self._current:
            return
        self._current = None
        if not exchange.keep_alive:
            if self._transport is not None:
                self._transport.close()
            return
        if self._queue:
            self._next()

    def _next(self) -> None:
        request, keep_alive = self._queue.popleft()
        exchange = self._current = Exchange(self, keep_alive)
        try:
            self._handler(request, exchange)
        except Exception:
            logger.exception("handler failed for %s %s", request.method, request.path)
            exchange.respond(500, b'{"error": "internal simulator error"}')

    def _fail(self, status: int, message: bytes) -> None:
        self._queue.clear()
        if self._current is None:
            exchange = self._current = Exchange(self, keep_alive=False)
            exchange.respond(status, message, "text/plain")
        elif self._transport is not None:
            self._transport.close()


async def serve(handler: Handler, host: str, port: int) -> asyncio.Server:
    """Start listening; returns the server (already serving)."""
    loop = asyncio.get_running_loop()
    # A deep backlog: load tests open ~1000 connections in the same instant.
    return await loop.create_server(
        lambda: Connection(handler), host, port, backlog=4096, reuse_address=True
    )
