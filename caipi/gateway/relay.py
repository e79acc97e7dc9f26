"""The relay: an opened upstream call's answer, passed through to the client.

Opening and closing the call is ``caipi.gateway.upstream_call``'s; this module only moves
the answer between them, for the raw ASGI /v1 app, the course chat (``relay_chat``) and
queued jobs alike. Streams are relayed as bytes as they arrive: the served model name is
swapped back with one ``bytes.replace`` per chunk, per-chunk usage the client did not ask
for is cut out (``stream_usage.without_usage``), the last usage the engine reported is
found in the tail. A plain stream that breaks mid-way goes on on another endpoint of the
model (``caipi.gateway.continuation``: the student sees one answer, charged once); when
none is left, or for tool-call, n>1 or logprobs streams, it ends with an SSE error event
and ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from django.conf import settings

from caipi.core.errors import ApplicationError
from caipi.gateway import metrics
from caipi.gateway.continuation import (
    Rewriter,
    SoFar,
    answer_so_far,
    continuable,
    continuation_body,
)
from caipi.gateway.stream_usage import usage_counted, usage_from_tail, without_usage
from caipi.gateway.upstream_call import (
    Call,
    Outcome,
    Upstream,
    call_close,
    call_continue,
    call_drop,
    call_open,
    call_prepare,
)
from caipi.gateway.validation import CHAT, InvalidRequest, check_body
from caipi.gateway.waiting import WaitStatus
from caipi.governance.principal import Principal
from deploy.vllm_client import UpstreamError

logger = logging.getLogger(__name__)

TAIL_BYTES = 4096
KEEP_BYTES = 65536  # events a continuable stream keeps before it reads their text out
DONE = b"data: [DONE]\n\n"


def rename_model(call: Call, data: bytes) -> bytes:
    """Swap the engine's served name back to the public one (no-op when they match)."""
    if call.model.served_name == call.model.name:
        return data
    return data.replace(call.served_marker, call.public_marker)


async def stream_answer(call: Call, upstream: Upstream) -> AsyncIterator[bytes]:
    """Yield the SSE bytes of an opened 2xx stream, closing the call when done.

    A plain stream whose endpoint breaks mid-way goes on on another endpoint of the model
    (``caipi.gateway.continuation``); with none left it ends with an SSE error event.
    The caller must exhaust or ``aclose()`` the generator: its ``finally`` closes the call
    (settles the quota, releases the endpoint) — also when the client went away mid-stream.
    """
    outcome = Outcome.ERROR
    relay = _Relay(call, upstream)
    try:
        while True:
            try:
                if chunk := relay.take(relay.upstream.first):
                    yield chunk
                async for data in relay.upstream.response:
                    if chunk := relay.take(data):
                        yield chunk
                if relay.pending:
                    yield relay.pending
                outcome = Outcome.OK
                break
            except UpstreamError as exc:
                logger.warning("endpoint %s broke mid-stream: %s", relay.upstream.endpoint.id, exc)
                relay.broken = True
                if not await relay.go_on():
                    yield _stream_error(relay.tail, "The model's server stopped answering mid-way.")
                    break
    except (asyncio.CancelledError, GeneratorExit):
        outcome = Outcome.ERROR if relay.broken else Outcome.CANCELLED
        raise
    finally:
        await call_close(call, relay.upstream, outcome, relay.usage())


class _Relay:
    """One stream's state: the endpoint now streaming, the tail of its bytes (for its
    usage), and — for a stream that may be continued — its whole events so far."""

    __slots__ = (
        "broken",
        "call",
        "events",
        "kept",
        "kept_bytes",
        "pending",
        "rewriter",
        "so_far",
        "strip",
        "tail",
        "tried",
        "upstream",
    )

    def __init__(self, call: Call, upstream: Upstream) -> None:
        self.call = call
        self.upstream = upstream
        self.tail = b""
        self.events = 0  # SSE events relayed: the fallback count of tokens without usage
        self.strip = call.strip_usage
        keep = settings.GATEWAY_CONTINUE_STREAMS and continuable(
            call.path, call.request, call.choices
        )
        self.kept: list[bytes] | None = [] if keep else None
        self.kept_bytes = 0
        self.so_far: SoFar | None = None  # what events no longer kept said
        self.pending = b""  # the start of an event not complete yet (only when kept)
        self.rewriter: Rewriter | None = None
        self.tried: set[int] = set()
        self.broken = False

    def take(self, data: bytes) -> bytes:
        """The bytes to send for ``data`` just received."""
        chunk = rename_model(self.call, data)
        if self.kept is not None:
            # Whole events only: a stream cut mid-event must not leave half a one behind.
            if self.pending or not chunk.endswith(b"\n\n"):
                chunk = self.pending + chunk
                cut = chunk.rfind(b"\n\n") + 2 if b"\n\n" in chunk else 0
                chunk, self.pending = chunk[:cut], chunk[cut:]
            if self.rewriter is not None:
                chunk = self.rewriter.rewrite(chunk)
            self.kept.append(chunk)
            self.kept_bytes += len(chunk)
            if self.kept_bytes > KEEP_BYTES:  # a long answer: keep its text, not its events
                self.so_far = answer_so_far(self.kept, self.call.path, self.so_far)
                self.kept, self.kept_bytes = [], 0
        self.tail = (self.tail + chunk)[-TAIL_BYTES:]
        self.events += chunk.count(b"data: ")
        return without_usage(chunk) if self.strip else chunk

    def usage(self) -> dict[str, Any] | None:
        """What the call is charged: the prompt once, every part's completion tokens."""
        seen = usage_from_tail(self.tail) or usage_counted(self.events)
        if self.rewriter is None:
            return seen
        if self.rewriter.usage is not None:
            return self.rewriter.usage
        completion = self.rewriter.done + int((seen or {}).get("completion_tokens") or 0)
        return {"prompt_tokens": self.rewriter.prompt, "completion_tokens": completion}

    async def go_on(self) -> bool:
        """Continue the broken stream on another endpoint; False when it cannot be."""
        call, broken = self.call, self.upstream
        continued = self.rewriter.continued if self.rewriter else 0
        if self.kept is None or call.request is None:
            return False
        if continued + 1 >= settings.GATEWAY_MAX_ATTEMPTS:
            return False
        seen = usage_from_tail(self.tail) or usage_counted(self.events) or {}
        done = (self.rewriter.done if self.rewriter else 0) + int(
            seen.get("completion_tokens") or 0
        )
        prompt = self.rewriter.prompt if self.rewriter else seen.get("prompt_tokens")
        so_far = answer_so_far(self.kept, call.path, self.so_far)
        left = call.max_tokens - done
        if so_far.finished or left <= 0 or not so_far.text:
            return False
        body = continuation_body(
            call.request, call.path, so_far.text, generated=done, tokens_left=left
        )
        self.tried.add(broken.endpoint.id)
        try:
            upstream = await call_continue(call, body, self.tried)
        except ApplicationError as exc:
            logger.warning("no endpoint to continue a stream of %s: %s", call.model.name, exc)
            return False
        call_drop(call, broken)
        # The answer's timings are the first endpoint's (time to first token, overhead).
        upstream.sent, upstream.first_byte = broken.sent, broken.first_byte
        self.upstream, self.broken = upstream, False
        self.rewriter = Rewriter(so_far, continued + 1, done, prompt)
        self.tail, self.events, self.pending = b"", 0, b""
        self.kept, self.kept_bytes, self.so_far = [], 0, so_far
        metrics.stream_continued(call.model.name)
        logger.info(
            "stream of %s continued on endpoint %s after endpoint %s broke (%d tokens so far)",
            call.model.name,
            upstream.endpoint.id,
            broken.endpoint.id,
            done,
        )
        return True


def _stream_error(tail: bytes, message: str) -> bytes:
    error = {"error": {"message": message, "type": "server_error", "code": "upstream_failed"}}
    separator = b"" if tail.endswith(b"\n\n") or not tail else b"\n\n"
    return separator + b"data: " + orjson.dumps(error) + b"\n\n" + DONE


async def complete(call: Call, upstream: Upstream) -> bytes:
    """Close a non-streaming (or refused 4xx) call; return the body to send back."""
    body = upstream.first
    usage = None
    if upstream.response.status < 300:
        body = rename_model(call, body)
        try:
            usage = orjson.loads(body).get("usage")
        except (orjson.JSONDecodeError, AttributeError):
            usage = None
    outcome = Outcome.OK if upstream.response.status < 300 else Outcome.REFUSED
    await call_close(call, upstream, outcome, usage)
    return body


async def relay_chat(
    principal: Principal,
    body: dict[str, Any],
    *,
    affinity_key: str | None = None,
    template_version_id: int | None = None,
) -> AsyncIterator[bytes]:
    """Stream a chat completion as SSE bytes, for callers inside CAIPI (the course chat).

    ``await relay_chat(...)`` returns the byte iterator once the endpoint has answered, so
    every refusal happens before a response is started. ``body`` is an OpenAI chat request
    (``model``, ``messages``, ...); it is streamed whatever ``stream`` says;
    ``template_version_id`` is recorded with the usage of a template run. Raises (before
    the first byte) the same errors as /v1: NotFound, PermissionDenied, InvalidRequest,
    RateLimited, Unavailable.
    """
    from caipi.gateway.background import ensure_started

    await ensure_started()
    body = {**body, "stream": True}
    model_name = check_body(CHAT, body)
    call = call_prepare(principal, CHAT, body, model_name=model_name, affinity_key=affinity_key)
    call.template_version_id = template_version_id
    statuses: asyncio.Queue[WaitStatus] = asyncio.Queue()
    call.on_wait = statuses.put
    opening = asyncio.ensure_future(call_open(call))
    first_status = asyncio.ensure_future(statuses.get())
    try:
        await _first_of(opening, first_status)
    except BaseException:
        opening.cancel()
        first_status.cancel()
        raise
    if not opening.done():  # the model is starting: answer now, with status events
        return _waited_answer(call, opening, statuses, first_status.result())
    first_status.cancel()
    return await _answer(call, opening.result())


async def _first_of(*futures: asyncio.Future[Any]) -> None:
    await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)


async def _answer(call: Call, upstream: Upstream) -> AsyncIterator[bytes]:
    if upstream.response.status >= 300:
        message = (await complete(call, upstream)).decode("utf-8", "replace")
        raise InvalidRequest(f"The model refused the request: {message[:500]}")
    return stream_answer(call, upstream)


async def _waited_answer(
    call: Call,
    opening: asyncio.Future[Upstream],
    statuses: asyncio.Queue[WaitStatus],
    status: WaitStatus,
) -> AsyncIterator[bytes]:
    """The answer of a call that waits for its model: ``{"caipi_status": ...}`` events
    (position, about how long) until it is sent, then the model's stream. A refusal after
    the response began ends the stream with an error event."""
    chunks: AsyncIterator[bytes] | None = None
    try:
        while True:
            yield b"data: " + orjson.dumps({"caipi_status": status.as_dict()}) + b"\n\n"
            next_status = asyncio.ensure_future(statuses.get())
            try:
                await _first_of(opening, next_status)
            finally:
                if not next_status.done():
                    next_status.cancel()
            if opening.done():
                break
            status = next_status.result()
        try:
            chunks = await _answer(call, opening.result())
        except ApplicationError as exc:
            yield b"data: " + orjson.dumps(exc.as_openai()) + b"\n\n" + DONE
            return
        async for chunk in chunks:
            yield chunk
    finally:
        if not opening.done():
            opening.cancel()  # the page went away: leave the queue, give the quota back
        if chunks is not None:
            await chunks.aclose()  # type: ignore[attr-defined]
