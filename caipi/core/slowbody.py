"""An ASGI wrapper that gives up on a request body that stops arriving.

ASGI servers wait for a request body as long as the connection stays open, so a client
that sends its headers and then nothing holds a request (and, in Django, a thread) for
ever. ``BodyDeadline`` lets each part of the body take at most ``seconds``; when one does
not come, the client gets a clean ``408`` (OpenAI's error shape, ``Connection: close``)
and the application sees ``http.disconnect`` — Django and the gateway both treat that as a
client that went away, quietly, without a traceback. Once the body is complete,
``receive`` is passed through untouched (streams wait for a disconnect as before).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

logger = logging.getLogger(__name__)

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]
DISCONNECT: Message = {"type": "http.disconnect"}


def timeout_body(seconds: float) -> bytes:
    """The 408 answer's JSON, in OpenAI's error shape."""
    error = {
        "message": f"The request body did not arrive within {seconds:g} seconds.",
        "type": "invalid_request_error",
        "code": "request_timeout",
        "param": None,
    }
    return orjson.dumps({"error": error})


class BodyDeadline:
    """Wrap ``app`` so that no part of a request body may take longer than ``seconds()``
    (asked per request, so a changed setting applies at once; 0 or less: no limit)."""

    def __init__(self, app: App, seconds: Callable[[], float]) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        seconds = self.seconds() if scope["type"] == "http" else 0.0
        if seconds <= 0:
            await self.app(scope, receive, send)
            return
        await _Guard(seconds, receive, send).run(self.app, scope)


class _Guard:
    """One request's receive and send, while its body is read."""

    __slots__ = ("body_done", "receive", "seconds", "send", "started", "timed_out")

    def __init__(self, seconds: float, receive: Receive, send: Send) -> None:
        self.seconds = seconds
        self.receive = receive
        self.send = send
        self.body_done = False
        self.started = False
        self.timed_out = False

    async def run(self, app: App, scope: dict[str, Any]) -> None:
        await app(scope, self.guarded_receive, self.guarded_send)

    async def guarded_receive(self) -> Message:
        if self.timed_out:
            return DISCONNECT
        if self.body_done:
            return await self.receive()
        try:
            async with asyncio.timeout(self.seconds):
                message = await self.receive()
        except TimeoutError:
            await self._give_up()
            return DISCONNECT
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
        return message

    async def guarded_send(self, message: Message) -> None:
        if self.timed_out:
            return  # the 408 already went out; the application is only winding down
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)

    async def _give_up(self) -> None:
        self.timed_out = True
        logger.info("request body did not arrive within %ss; answered 408", self.seconds)
        if self.started:
            return
        body = timeout_body(self.seconds)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await self.send({"type": "http.response.start", "status": 408, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})
