"""The relay: one call from a principal to an endpoint of its model, and back.

Used by the raw ASGI /v1 app, the session-authenticated course chat (``relay_chat``) and
queued jobs. Contract of a call, in order:

1. ``prepare_call`` resolves the model from the in-memory catalog (404/403/400), fills the
   model's default parameters, rewrites ``model`` to the engine's served name and, when
   streaming, asks for the final usage chunk. It sends nothing anywhere.
2. The quota is reserved (``caipi.governance.quotas``), 429 when it would overspend.
3. ``open_upstream`` routes (deploy.router) and retries on another endpoint — at most
   GATEWAY_MAX_ATTEMPTS — while nothing has been sent to the client: connection errors,
   timeouts, 5xx and a stream that ends before its first byte are transient. No endpoint
   left: ``Unavailable`` (503 + Retry-After).
4. The answer is passed through (streams: bytes as they arrive, the served model name
   swapped back with one ``bytes.replace`` per chunk, the usage chunk found in the tail).
   A stream that breaks mid-way ends with an SSE error event and ``data: [DONE]``.
5. ``finish`` settles (or releases) the quota, records usage, metrics and the breaker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from caipi.core.errors import NotFound, PermissionDenied, Unavailable
from caipi.gateway import metrics
from caipi.gateway.call import Call, Outcome, Upstream, finish, usage_counted, usage_from_tail
from caipi.gateway.catalog import catalog
from caipi.gateway.validation import (
    CHAT,
    KINDS_FOR_PATH,
    InvalidRequest,
    check_body,
    requested_max_tokens,
)
from caipi.governance import quotas
from caipi.governance.principal import Principal, principal_may_use_model
from deploy import vllm_client
from deploy.router import choose_endpoint

logger = logging.getLogger(__name__)

TAIL_BYTES = 4096
DONE = b"data: [DONE]\n\n"


def prepare_call(
    principal: Principal,
    path: str,
    body: dict[str, Any],
    *,
    model_name: str,
    affinity_key: str | None = None,
    started: float | None = None,
) -> Call:
    """Resolve and rewrite the call; raises NotFound, PermissionDenied or InvalidRequest."""
    model = catalog().models.get(model_name)
    if model is None:
        raise NotFound(
            f"The model '{model_name}' does not exist.",
            extra={"param": "model", "code": "model_not_found"},
        )
    if not principal_may_use_model(principal, model_name):
        raise PermissionDenied(f"You may not use the model '{model_name}'.")
    if model.kind not in KINDS_FOR_PATH[path]:
        raise InvalidRequest(f"The model '{model_name}' is a {model.kind} model.", param="model")
    for name, value in model.default_params.items():
        body.setdefault(name, value)
    body["model"] = model.served_name
    stream = bool(body.get("stream"))
    if stream:
        options = body.get("stream_options") or {}
        body["stream_options"] = {**options, "include_usage": True}
    return Call(
        principal=principal,
        model=model,
        path=path,
        body=orjson.dumps(body),
        stream=stream,
        affinity_key=affinity_key,
        max_tokens=requested_max_tokens(body, settings.GATEWAY_DEFAULT_MAX_TOKENS),
        started=started if started is not None else time.perf_counter(),
    )


async def reserve(call: Call) -> None:
    """Reserve the call's tokens; raises RateLimited (429) or Unavailable (503)."""
    call.reservation = await quotas.quota_reserve(
        principal=call.principal,
        model=call.model.name,
        prompt_tokens=call.prompt_estimate,
        max_tokens=call.max_tokens,
    )


async def reserve_and_open(call: Call) -> Upstream:
    """Reserve the call's quota, then open it upstream; the reservation is given back if
    no endpoint could take the call. Raises what ``reserve`` and ``open_upstream`` raise."""
    await reserve(call)
    try:
        return await open_upstream(call)
    except BaseException:
        await quotas.quota_release(call.reservation)
        raise


async def open_upstream(call: Call) -> Upstream:
    """Route the call and open it on an endpoint, retrying elsewhere while that is safe.

    Returns with the response status and headers, and for a 2xx stream its first bytes,
    already received — so a failure up to that point never reaches the client. The
    endpoint's in-flight count and breaker probe are held until ``finish``.
    """
    current = catalog()
    tried: set[int] = set()
    for _ in range(settings.GATEWAY_MAX_ATTEMPTS):
        chosen = choose_endpoint(
            current.candidates(call.model),
            affinity_key=call.affinity_key,
            exclude=frozenset(tried),
        )
        if chosen is None:
            break
        tried.add(chosen.endpoint_id)
        breaker = current.breaker(chosen.endpoint_id)
        if not breaker.acquire():
            continue
        endpoint = current.endpoint(call.model, chosen.endpoint_id)
        current.inflight.acquire(endpoint.id)
        try:
            return await _attempt(call, endpoint)
        except vllm_client.UpstreamError as exc:
            current.inflight.release(endpoint.id)
            breaker.record_failure()
            metrics.upstream_failure(call.model.name, endpoint.id)
            logger.warning("endpoint %s failed before streaming: %s", endpoint.id, exc)
        except BaseException:
            current.inflight.release(endpoint.id)
            breaker.release()
            raise
    raise Unavailable(
        f"No endpoint of the model '{call.model.name}' can take the call right now.",
        extra={"retry_after": settings.GATEWAY_RETRY_AFTER},
    )


async def _attempt(call: Call, endpoint: Any) -> Upstream:
    sent = time.perf_counter()
    response = await vllm_client.open_call(
        endpoint.base_url,
        call.path,
        call.body,
        endpoint.token,
        connect_timeout=settings.GATEWAY_CONNECT_TIMEOUT,
        read_timeout=settings.GATEWAY_UPSTREAM_TIMEOUT,
    )
    upstream = Upstream(endpoint=endpoint, response=response, sent=sent)
    try:
        if call.stream and response.status < 300:
            upstream.first = await response.content.readany()
            if not upstream.first:
                raise vllm_client.UpstreamError("stream ended before any byte", transient=True)
        else:
            upstream.first = await response.read()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        response.release()
        raise vllm_client.UpstreamError(f"{type(exc).__name__}: {exc}", transient=True) from exc
    except BaseException:
        response.release()
        raise
    upstream.first_byte = time.perf_counter()
    return upstream


def rename_model(call: Call, data: bytes) -> bytes:
    """Swap the engine's served name back to the public one (no-op when they match)."""
    if call.model.served_name == call.model.name:
        return data
    return data.replace(call.served_marker, call.public_marker)


async def stream_answer(call: Call, upstream: Upstream) -> AsyncIterator[bytes]:
    """Yield the SSE bytes of an opened 2xx stream, ending the call when done.

    The caller must exhaust or ``aclose()`` the generator: its ``finally`` settles the
    quota and releases the endpoint — also when the client went away mid-stream.
    """
    outcome = Outcome.ERROR
    tail = b""
    events = 0  # SSE events relayed: the fallback count of tokens when no usage chunk comes
    try:
        chunk = rename_model(call, upstream.first)
        tail = chunk[-TAIL_BYTES:]
        events = chunk.count(b"data: ")
        yield chunk
        async for data in upstream.response.content.iter_any():
            chunk = rename_model(call, data)
            tail = (tail + chunk)[-TAIL_BYTES:]
            events += chunk.count(b"data: ")
            yield chunk
        outcome = Outcome.OK
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        logger.warning("endpoint %s broke mid-stream: %s", upstream.endpoint.id, exc)
        yield _stream_error(tail, "The model's server stopped answering mid-way.")
    except (asyncio.CancelledError, GeneratorExit):
        outcome = Outcome.CANCELLED
        raise
    finally:
        await finish(call, upstream, outcome, usage_from_tail(tail) or usage_counted(events))


def _stream_error(tail: bytes, message: str) -> bytes:
    error = {"error": {"message": message, "type": "server_error", "code": "upstream_failed"}}
    separator = b"" if tail.endswith(b"\n\n") or not tail else b"\n\n"
    return separator + b"data: " + orjson.dumps(error) + b"\n\n" + DONE


async def complete(call: Call, upstream: Upstream) -> bytes:
    """Finish a non-streaming (or refused 4xx) answer: the body to send back."""
    body = upstream.first
    usage = None
    if upstream.response.status < 300:
        body = rename_model(call, body)
        try:
            usage = orjson.loads(body).get("usage")
        except (orjson.JSONDecodeError, AttributeError):
            usage = None
    outcome = Outcome.OK if upstream.response.status < 300 else Outcome.REFUSED
    await finish(call, upstream, outcome, usage)
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
    (``model``, ``messages``, ...); it is streamed
    whatever ``stream`` says; ``template_version_id`` is recorded with the usage of a
    template run. Raises (before the first byte) the same errors as /v1:
    NotFound, PermissionDenied, InvalidRequest, RateLimited, Unavailable.
    """
    from caipi.gateway.background import ensure_started

    await ensure_started()
    body = {**body, "stream": True}
    model_name = check_body(CHAT, body)
    call = prepare_call(principal, CHAT, body, model_name=model_name, affinity_key=affinity_key)
    call.template_version_id = template_version_id
    upstream = await reserve_and_open(call)
    if upstream.response.status >= 300:
        message = (await complete(call, upstream)).decode("utf-8", "replace")
        raise InvalidRequest(f"The model refused the request: {message[:500]}")
    return stream_answer(call, upstream)
