"""The OpenAI-compatible ``/v1`` API as a raw ASGI application.

caipi/asgi.py sends every ``/v1/`` request here before Django: no middleware, no
sync-to-async hop, no ORM (the catalog is in memory, keys and quotas have their own
caches). Each request costs a body read, one orjson parse, one key check, one quota
reservation (from this process's lease of the counter, or one Redis round trip), the
routing decision and the upstream call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from caipi.core.errors import ApplicationError, NotAuthenticated, NotFound, PayloadTooLarge
from caipi.gateway import metrics, relay
from caipi.gateway.background import ensure_started
from caipi.gateway.catalog import catalog
from caipi.gateway.upstream_call import call_open, call_prepare
from caipi.gateway.validation import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    RERANK,
    check_body,
    parse_body,
)
from caipi.gateway.waiting import WaitStatus
from caipi.governance.apikeys import aapikey_authenticate
from caipi.governance.principal import Principal, principal_may_use_model

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

RELAYED = (CHAT, COMPLETIONS, EMBEDDINGS, RERANK)
_JSON = [(b"content-type", b"application/json")]
_SSE = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class ForeignHost(ApplicationError):
    """A ``Host`` header this server does not answer to (Django's ``ALLOWED_HOSTS``)."""

    code = "invalid_host"


_HOST_VERDICTS: dict[tuple[bytes, tuple[str, ...], bool], bool] = {}


def host_allowed(scope: Scope) -> bool:
    """Django's ``ALLOWED_HOSTS`` rule for a raw ASGI route, memoised per Host value.

    Without a ``Host`` header (HTTP/1.0) the server's own name counts, as in Django.
    """
    host = _header(scope, b"host")
    if host is None:
        server = scope.get("server") or ("", None)
        host = f"{server[0]}:{server[1]}".encode() if server[1] else str(server[0]).encode()
    key = (host, tuple(settings.ALLOWED_HOSTS), settings.DEBUG)
    verdict = _HOST_VERDICTS.get(key)
    if verdict is None:
        domain, _ = split_domain_port(host.decode("latin-1"))
        allowed = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed:
            allowed = [".localhost", "127.0.0.1", "[::1]"]
        verdict = bool(domain) and validate_host(domain, allowed)
        if len(_HOST_VERDICTS) < 1024:  # a flood of made-up hosts must not grow memory
            _HOST_VERDICTS[key] = verdict
    return verdict


def require_allowed_host(scope: Scope) -> None:
    """Raise ``ForeignHost`` (400) unless the request's Host is one this server answers to."""
    if not host_allowed(scope):
        raise ForeignHost("Invalid Host header: this server does not answer to that name.")


class ClientGone(Exception):
    """The client went away (or its body stopped arriving) before its request was read."""


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one /v1 request; every refusal in OpenAI's error shape."""
    started = time.perf_counter()
    try:
        require_allowed_host(scope)
        await ensure_started()
        path, method = scope["path"].rstrip("/"), scope["method"]
        if path == "/v1/models" and method == "GET":
            await _models(scope, send)
        elif path in RELAYED and method == "POST":
            await _relayed(scope, receive, send, path, started)
        else:
            raise NotFound(f"There is no {method} {scope['path']} in this API.")
    except ApplicationError as exc:
        metrics.refused(exc.status)
        await send_error(send, exc)
    except ClientGone:
        return  # nobody to answer; not an error of CAIPI's


async def send_error(send: Send, exc: ApplicationError) -> None:
    headers = list(_JSON)
    if "retry_after" in exc.extra:
        headers.append((b"retry-after", str(int(exc.extra["retry_after"])).encode()))
    await _send_whole(send, exc.status, orjson.dumps(exc.as_openai()), headers)


async def _send_whole(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def authenticate(scope: Scope) -> Principal:
    """The caller behind ``Authorization: Bearer <key>``; raises NotAuthenticated (401)."""
    value = _header(scope, b"authorization") or b""
    scheme, _, key = value.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise NotAuthenticated("Send your API key as 'Authorization: Bearer <key>'.")
    return await aapikey_authenticate(key.strip())


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it is known to exceed ``limit``."""
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _models(scope: Scope, send: Send) -> None:
    principal = await authenticate(scope)
    data = [
        {"id": m.name, "object": "model", "created": m.created, "owned_by": "caipi"}
        for m in catalog().models.values()
        if principal_may_use_model(principal, m.name)
    ]
    await _send_whole(send, 200, orjson.dumps({"object": "list", "data": data}), _JSON)


async def _relayed(scope: Scope, receive: Receive, send: Send, path: str, started: float) -> None:
    principal = await authenticate(scope)
    limit = settings.GATEWAY_MAX_BODY_BYTES
    body = parse_body(await read_body(scope, receive, limit), limit=limit)
    model_name = check_body(path, body)
    call = call_prepare(principal, path, body, model_name=model_name, started=started)
    keepalive = None
    if call.stream:
        keepalive = call.on_wait = KeepAlive(send)
    # A whole answer is read (and a waiting call waits) inside call_open: a client leaving
    # meanwhile cancels it there. The watcher's first step runs while the upstream request
    # is in flight, and this task takes the first bytes on itself: nothing between the
    # request and the endpoint, or between the first token and the client, waits for
    # another task's turn.
    watch = ClientWatch(receive)
    try:
        upstream = await call_open(call)
    except ApplicationError as exc:
        watch.close()
        if keepalive is None or not keepalive.started:
            raise
        await keepalive.fail(exc.as_openai())  # the 200 is out: say it in the stream
        return
    except asyncio.CancelledError:
        watch.close()
        if watch.absorbed():
            return  # the client left before the answer began: nobody to answer
        raise
    if call.stream and upstream.response.status < 300:
        begun = keepalive is not None and keepalive.started
        await send_stream(send, relay.stream_answer(call, upstream), watch, started=begun)
        return
    watch.close()
    if keepalive is not None and keepalive.started:
        await _fail_after_waiting(call, upstream, keepalive)
        return
    answer = await relay.complete(call, upstream)
    overhead_ms = (upstream.sent - started + time.perf_counter() - upstream.first_byte) * 1000
    upstream_ms = (upstream.first_byte - upstream.sent) * 1000
    timing = f"caipi;dur={overhead_ms:.2f}, upstream;dur={upstream_ms:.2f}"
    content_type = upstream.response.headers.get("Content-Type", "application/json")
    headers = [(b"content-type", content_type.encode()), (b"server-timing", timing.encode())]
    await _send_whole(send, upstream.response.status, answer, headers)


class ClientWatch:
    """Cancels the request's task the moment its client disconnects (``http.disconnect``),
    so a call waiting for its model, its first token or its next one stops at once.

    One per request, made once the body is read; ``close()`` it before anything that must
    run to its end whoever listens (closing a call settles its quota). After a
    ``CancelledError``, ``absorbed()`` says whether the watcher caused it (and takes the
    cancellation back) or whether it came from elsewhere and must propagate.
    """

    __slots__ = ("_task", "_watcher", "gone")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self.gone = False
        self._watcher = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self._task.cancel()

    def close(self) -> None:
        self._watcher.cancel()

    def absorbed(self) -> bool:
        if not self.gone:
            return False
        self._task.uncancel()
        return True


class KeepAlive:
    """A streaming call's ``on_wait``: while it waits for its model to start, the SSE
    response begins (200) and each status goes out as an SSE comment, which OpenAI clients
    ignore and which keeps proxies from closing an idle connection."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, status: WaitStatus) -> None:
        if not self.started:
            self.started = True
            await self.send({"type": "http.response.start", "status": 200, "headers": _SSE})
        await self.send({"type": "http.response.body", "body": status.comment(), "more_body": True})

    async def fail(self, error: dict[str, Any]) -> None:
        """End the begun stream with an error event (waited too long, or refused)."""
        body = b"data: " + orjson.dumps(error) + b"\n\n" + relay.DONE
        await self.send({"type": "http.response.body", "body": body})


async def _fail_after_waiting(call: Any, upstream: Any, keepalive: KeepAlive) -> None:
    """The engine refused (4xx) a call that waited with its stream begun: say why in it."""
    answer = await relay.complete(call, upstream)
    try:
        error = orjson.loads(answer)
    except orjson.JSONDecodeError:
        error = {"error": {"message": answer.decode("utf-8", "replace"), "type": "upstream"}}
    await keepalive.fail(error)


async def stream_to_client(
    receive: Receive, send: Send, chunks: AsyncIterator[bytes], *, started: bool = False
) -> None:
    """Send ``chunks`` as an SSE response; a client disconnect cancels the upstream call.
    ``started``: the response already began (the call waited, see ``KeepAlive``)."""
    await send_stream(send, chunks, ClientWatch(receive), started=started)


async def send_stream(
    send: Send, chunks: AsyncIterator[bytes], watch: ClientWatch, *, started: bool = False
) -> None:
    """Send ``chunks`` as an SSE response while ``watch`` looks out for the client leaving
    (the stream then stops at once, not at the next write). Closes ``chunks`` — which
    closes the call — after the watch, so a settlement is never cut short."""
    try:
        if not started:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        async for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except (asyncio.CancelledError, OSError):
        if not watch.absorbed():
            raise
    finally:
        watch.close()
        await chunks.aclose()  # type: ignore[attr-defined]
