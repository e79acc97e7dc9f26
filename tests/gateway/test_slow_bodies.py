"""A request body that never arrives is answered 408, cleanly, on /v1 and on Django's paths
(``caipi.core.slowbody.BodyDeadline`` around ``caipi.asgi.application``).

Raw sockets against caipi.asgi.application served by uvicorn: the headers promise a body
that never comes (or comes half and the client leaves). Nothing may be logged at ERROR —
uvicorn logs "Exception in ASGI application" with a traceback for an app that raises.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

TIMEOUT = 0.5


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged_errors() -> Iterator[list[logging.LogRecord]]:
    handler = _Errors()
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error", "django")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler.records
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture
def short_body_timeout(settings) -> float:
    settings.GATEWAY_BODY_TIMEOUT = TIMEOUT
    return TIMEOUT


def _open(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _headers(path: str, *extra: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: testserver", "Content-Type: application/json"]
    lines += ["Content-Length: 200", *extra, "", ""]
    return "\r\n".join(lines).encode()


def _answer(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat/"])
def test_a_body_that_never_arrives_is_answered_408_without_a_traceback(
    live_gateway, api_key, short_body_timeout, logged_errors, path
):
    started = time.monotonic()
    with _open(live_gateway.url) as sock:
        sock.sendall(_headers(path, f"Authorization: Bearer {api_key}") + b'{"model":')
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"request_timeout"' in answer
    assert time.monotonic() - started < 5
    assert [r.getMessage() for r in logged_errors] == []


def test_a_client_that_leaves_mid_body_leaves_no_traceback(live_gateway, api_key, logged_errors):
    with _open(live_gateway.url) as sock:
        sock.sendall(_headers("/v1/chat/completions", f"Authorization: Bearer {api_key}"))
        sock.sendall(b'{"model":"tutor",')
        time.sleep(0.2)
    time.sleep(0.5)  # uvicorn notices the disconnect and the app winds down
    assert [r.getMessage() for r in logged_errors] == []
