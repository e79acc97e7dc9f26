"""The life of one upstream call, from the gateway's side: prepare, open, close.

Every call CAIPI relays to an engine — from the raw ``/v1`` API, the course chat and queued
jobs alike — is opened and closed here, and nowhere else:

1. ``call_prepare`` resolves the model from the in-memory catalog (404/403/400), fills the
   model's default parameters, rewrites ``model`` to the engine's served name, sets
   ``max_tokens`` when the client sent none, bounds what the call can cost
   (``caipi.gateway.budget``) and, when streaming, asks for the final usage chunk. It sends
   nothing anywhere.
2. ``call_open`` reserves that upper bound (``caipi.governance.services.quotas``; 429 when it
   would overspend, after asking the engine's own prompt count when only the loose bound
   did not fit), then routes (``deploy.router``) and connects (``deploy.vllm_client``),
   retrying on another endpoint — at most GATEWAY_MAX_ATTEMPTS — while nothing has been
   sent to the client: connection errors, timeouts, 5xx and a stream that ends before its
   first byte are transient. No endpoint left: the reservation is given back and
   ``Unavailable`` (503 + Retry-After) raised. A model with no *ready* endpoint that is
   starting, sleeping or startable makes the call wait instead (``caipi.gateway.waiting``;
   the normal path only notices this when routing finds nothing).
3. The answer is passed through by ``caipi.gateway.relay`` (bytes as they arrive). A plain
   stream whose endpoint breaks mid-way goes on on another endpoint (``call_continue``,
   ``caipi.gateway.continuation``); the broken one is let go with ``call_drop``.
4. ``call_close`` ends it: frees the endpoint's in-flight slot, feeds its circuit breaker,
   releases or drops the connection, settles (or releases) the quota, and records metrics
   and usage. It never raises.

The hot path stays lean: no ORM query, no thread hop; between open and close the relay
touches only the response's bytes.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

import orjson
from django.conf import settings

from caipi.core.errors import NotFound, PermissionDenied, RateLimited, Unavailable
from caipi.gateway import budget, metrics, waiting
from caipi.gateway.catalog import catalog
from caipi.gateway.validation import (
    CHAT,
    COMPLETIONS,
    KINDS_FOR_PATH,
    InvalidRequest,
    requested_max_tokens,
)
from caipi.governance.principal import Principal, principal_may_use_model
from caipi.governance.services import quotas, usage
from deploy import vllm_client
from deploy.demand import demand_touch
from deploy.router import choose_endpoint
from deploy.selectors import EndpointRoute, ModelRoute

logger = logging.getLogger(__name__)

# A whole (non-streamed) answer arrives only once generated: an engine slower than this per
# sequence is taken for hung (see first_byte_limit).
MIN_TOKENS_PER_SECOND = 5.0


class Outcome(enum.StrEnum):
    """How a call ended, as recorded in usage and metrics."""

    OK = "ok"
    REFUSED = "refused"  # the engine answered 4xx; passed through to the client
    ERROR = "error"  # broke mid-stream
    CANCELLED = "cancelled"  # the client went away


@dataclass(slots=True)
class Call:
    """A validated, rewritten call ready to send: ``body`` is the upstream JSON."""

    principal: Principal
    model: ModelRoute
    path: str
    body: bytes
    stream: bool
    affinity_key: str | None
    max_tokens: int  # completion tokens at most: max_tokens for every choice (budget.py)
    started: float
    prompt_bound: int = 0  # prompt tokens at most; the engine's count once it was asked
    request: dict[str, Any] | None = None  # ``body`` parsed, for the engine's /tokenize
    choices: int = 1  # sequences the engine generates (n or best_of, for each prompt)
    strip_usage: bool = False  # per-chunk usage the client did not ask for is removed
    sent_at: float = 0.0  # when it last went to an endpoint (perf_counter), 0 before
    reservation: quotas.Reservation | None = None
    template_version_id: int | None = None
    on_wait: waiting.OnWait | None = None  # told where it stands if it has to wait

    @property
    def served_marker(self) -> bytes:
        return b'"model":"' + self.model.served_name.encode() + b'"'

    @property
    def public_marker(self) -> bytes:
        return b'"model":"' + self.model.name.encode() + b'"'


@dataclass(slots=True)
class Upstream:
    """An open upstream answer and when things happened (perf_counter seconds).

    ``first`` holds the first bytes (a stream) or the whole body (anything else), already
    received when ``call_open`` returns.
    """

    endpoint: EndpointRoute
    response: vllm_client.UpstreamResponse
    sent: float
    first: bytes = b""
    first_byte: float = 0.0


def call_prepare(
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
    # model.use, judged on the in-memory principal (the rule caipi.core.permissions asks).
    if not principal_may_use_model(principal, model_name):
        raise PermissionDenied(f"You may not use the model '{model_name}'.")
    if model.kind not in KINDS_FOR_PATH[path]:
        raise InvalidRequest(f"The model '{model_name}' is a {model.kind} model.", param="model")
    for name, value in model.default_params.items():
        body.setdefault(name, value)
    body["model"] = model.served_name
    max_tokens = requested_max_tokens(body, settings.GATEWAY_DEFAULT_MAX_TOKENS)
    if path in (CHAT, COMPLETIONS) and not (
        body.get("max_tokens") or body.get("max_completion_tokens")
    ):
        body["max_tokens"] = max_tokens  # the engine may not generate more than is reserved
    stream = bool(body.get("stream"))
    asked = False
    if stream:
        # Usage in every chunk (vLLM's continuous_usage_stats): a stream the client
        # abandons is settled from the engine's own count (see stream_usage).
        options = body.get("stream_options") or {}
        asked = bool(options.get("include_usage") and options.get("continuous_usage_stats"))
        body["stream_options"] = {**options, "include_usage": True, "continuous_usage_stats": True}
    upstream = orjson.dumps(body)
    return Call(
        principal=principal,
        model=model,
        path=path,
        body=upstream,
        stream=stream,
        affinity_key=affinity_key,
        max_tokens=budget.completion_bound(path, body, max_tokens),
        started=started if started is not None else time.perf_counter(),
        prompt_bound=budget.prompt_bound(path, body, upstream),
        request=body,
        choices=budget.choices(path, body),
        strip_usage=stream and not asked,
    )


async def call_open(call: Call) -> Upstream:
    """Reserve the call's quota, then open it on an endpoint (steps 2 of the module doc).

    Returns with the response status and headers, and for a 2xx stream its first bytes,
    already received — so a failure up to that point never reaches the client. The
    endpoint's in-flight slot, its breaker probe and the reservation are held until
    ``call_close``. Raises RateLimited (429) or Unavailable (503); the reservation is
    given back when no endpoint could take the call.
    """
    call.reservation = await _reserve(call)
    try:
        await demand_touch(model_id=call.model.id)  # idleness; writes at most once a second
        if waiting.active and waiting.queued(call.model.name):
            return await _open_after_waiting(call)  # queue behind calls already waiting
        try:
            return await _route_and_connect(call)
        except NoReadyEndpoint:
            return await _open_after_waiting(call)
    except asyncio.CancelledError:
        await _settle_abandoned(call)
        raise
    except BaseException:
        await quotas.quota_release(call.reservation)
        raise


async def _settle_abandoned(call: Call) -> None:
    """Charge a call its client abandoned before the answer came (the engine stops when
    the connection drops): the prompt and what the engine can have generated since the
    call was sent (``budget.completion_ran``), never more than was reserved. An engine
    does not report what it generated for a call it aborted."""
    if call.reservation is None:
        return
    try:
        if not call.sent_at:
            await quotas.quota_release(call.reservation)
            return
        ran = time.perf_counter() - call.sent_at
        completion = budget.completion_ran(ran, call.choices, call.max_tokens)
        await quotas.quota_settle(
            call.reservation, prompt_tokens=call.prompt_bound, completion_tokens=completion
        )
    except Exception:
        logger.exception("quota settlement failed for an abandoned call to %s", call.model.name)


async def _reserve(call: Call) -> quotas.Reservation:
    """Reserve the call's upper bound; when the prompt's bound does not fit, ask the
    engine for its exact count and try once more with it (see ``budget``)."""
    try:
        return await _reserve_bound(call)
    except RateLimited:
        counted = None
        if call.request is not None:
            counted = await budget.prompt_count(call.model, call.path, call.request)
        if counted is None or counted >= call.prompt_bound:
            raise
        call.prompt_bound = counted
        return await _reserve_bound(call)


async def _reserve_bound(call: Call) -> quotas.Reservation:
    return await quotas.quota_reserve(
        principal=call.principal,
        model=call.model.name,
        prompt_tokens=call.prompt_bound,
        max_tokens=call.max_tokens,
    )


class NoReadyEndpoint(Unavailable):
    """The model has no ready endpoint, but one is starting, sleeping or can be started."""


async def _open_after_waiting(call: Call) -> Upstream:
    """Wait for the call's turn (``caipi.gateway.waiting``), then route it as usual. If the
    model lost its ready endpoint again meanwhile (it went back to sleep), wait again."""
    while True:
        async with waiting.turn(call.model, call.principal, call.on_wait):
            call.model = catalog().models.get(call.model.name, call.model)
            try:
                return await _route_and_connect(call)
            except NoReadyEndpoint:
                logger.info("%s lost its ready endpoint while a call waited", call.model.name)


async def call_continue(call: Call, body: bytes, tried: set[int]) -> Upstream:
    """Open the rest of a stream whose endpoint broke mid-way (``caipi.gateway.continuation``):
    send ``body`` to another endpoint of the model, none of ``tried``, with the same
    retries as ``call_open`` and no new reservation (the call's one still holds). Raises
    ``Unavailable`` when no endpoint is left."""
    upstream = await _route_and_connect(replace(call, body=body), tried)
    if upstream.response.status < 300:
        return upstream
    # Refused (4xx: the prompt with the answer so far no longer fits, say): not the
    # endpoint's fault, and nothing to continue with.
    current = catalog()
    current.inflight.release(upstream.endpoint.id)
    current.breaker(upstream.endpoint.id).record_success()
    upstream.response.release()
    raise Unavailable(f"The endpoint refused to continue: {upstream.first[:300]!r}")


def call_drop(call: Call, upstream: Upstream) -> None:
    """Let go of an endpoint that broke mid-stream once the stream went on elsewhere: free
    its in-flight slot, count the failure on its breaker, drop the connection. The quota
    and usage are settled once, by ``call_close`` on the endpoint that ends the stream."""
    current = catalog()
    current.inflight.release(upstream.endpoint.id)
    current.breaker(upstream.endpoint.id).record_failure()
    upstream.response.close()
    metrics.upstream_failure(call.model.name, upstream.endpoint.id)


async def _route_and_connect(call: Call, tried: set[int] | None = None) -> Upstream:
    current = catalog()
    tried = set() if tried is None else tried
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
            return await _connect(call, endpoint)
        except vllm_client.UpstreamError as exc:
            current.inflight.release(endpoint.id)
            breaker.record_failure()
            metrics.upstream_failure(call.model.name, endpoint.id)
            logger.warning("endpoint %s failed before streaming: %s", endpoint.id, exc)
        except BaseException:
            current.inflight.release(endpoint.id)
            breaker.release()
            raise
    model = current.models.get(call.model.name, call.model)
    if not tried and model is not call.model:  # the catalog changed since call_prepare
        call.model = model
        return await _route_and_connect(call, tried)
    if not tried and waiting.may_wait(model) and not waiting.has_ready(model):
        raise NoReadyEndpoint(f"The model '{call.model.name}' is starting.")
    raise Unavailable(
        f"No endpoint of the model '{call.model.name}' can take the call right now.",
        extra={"retry_after": settings.GATEWAY_RETRY_AFTER},
    )


async def _connect(call: Call, endpoint: EndpointRoute) -> Upstream:
    """Send the call to one endpoint and wait for its first bytes (a stream) or its whole
    answer. Raises ``UpstreamError`` (transient) when that fails."""
    sent = call.sent_at = time.perf_counter()
    limit = first_byte_limit(call)
    try:
        async with asyncio.timeout(limit):
            return await _first_bytes(call, endpoint, sent)
    except TimeoutError:
        raise vllm_client.UpstreamError(
            f"no answer within {limit:g}s (CAIPI_TTFB_TIMEOUT)", transient=True
        ) from None


def first_byte_limit(call: Call) -> float:
    """Seconds an endpoint may take to its first byte: GATEWAY_TTFB_TIMEOUT for a stream.
    A whole answer comes only once it is generated, so it also gets
    ``MIN_TOKENS_PER_SECOND``'s time for each token it may generate per sequence."""
    limit = settings.GATEWAY_TTFB_TIMEOUT
    if not call.stream:
        limit += call.max_tokens / max(call.choices, 1) / MIN_TOKENS_PER_SECOND
    return min(limit, settings.GATEWAY_UPSTREAM_TIMEOUT)


async def _first_bytes(call: Call, endpoint: EndpointRoute, sent: float) -> Upstream:
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
            upstream.first = await anext(response, b"")
            if not upstream.first:
                raise vllm_client.UpstreamError("stream ended before any byte", transient=True)
        else:
            upstream.first = await response.read()
    except BaseException:
        response.close()  # dropping the connection stops the engine's generation
        raise
    upstream.first_byte = time.perf_counter()
    return upstream


async def call_close(
    call: Call, upstream: Upstream, outcome: Outcome, usage_seen: dict[str, Any] | None
) -> None:
    """End the call: free the endpoint, feed the breaker, settle quota, record usage.

    Never raises: a failing quota or usage store is logged, the answer already went out.
    """
    ended = time.perf_counter()
    current = catalog()
    current.inflight.release(upstream.endpoint.id)
    breaker = current.breaker(upstream.endpoint.id)
    if outcome == Outcome.ERROR:
        breaker.record_failure()
    elif outcome == Outcome.CANCELLED:
        breaker.release()
    else:
        breaker.record_success()
    if outcome == Outcome.OK:
        upstream.response.release()
    else:
        upstream.response.close()  # closing the connection stops the engine's generation
    prompt = int((usage_seen or {}).get("prompt_tokens") or call.prompt_bound)
    completion = int((usage_seen or {}).get("completion_tokens") or 0)
    await _settle(call, outcome, prompt, completion)
    ttft_ms = (upstream.first_byte - call.started) * 1000 if upstream.first_byte else None
    duration_ms = (ended - call.started) * 1000
    # Time spent in CAIPI itself: before the call went upstream, and for a whole answer
    # also after it came back (streamed bytes pass through and are not counted).
    overhead = upstream.sent - call.started
    if not call.stream and upstream.first_byte:
        overhead += ended - upstream.first_byte
    metrics.call_finished(
        call.model.name, upstream.endpoint.id, outcome, prompt, completion, ttft_ms, overhead
    )
    _record_usage(call, upstream, outcome, prompt, completion, ttft_ms, duration_ms)


async def _settle(call: Call, outcome: Outcome, prompt: int, completion: int) -> None:
    if call.reservation is None:
        return
    try:
        if outcome == Outcome.REFUSED:
            await quotas.quota_release(call.reservation)
        else:
            await quotas.quota_settle(
                call.reservation, prompt_tokens=prompt, completion_tokens=completion
            )
    except Exception:
        logger.exception("quota settlement failed for a call to %s", call.model.name)


def _record_usage(
    call: Call,
    upstream: Upstream,
    outcome: Outcome,
    prompt: int,
    completion: int,
    ttft_ms: float | None,
    duration_ms: float,
) -> None:
    try:
        usage.usage_record(
            user_id=call.principal.user_id,
            key_id=call.principal.key_id,
            course_id=call.principal.course_id,
            model=call.model.name,
            endpoint_id=upstream.endpoint.id,
            prompt_tokens=prompt,
            completion_tokens=completion,
            ttft_ms=ttft_ms,
            duration_ms=duration_ms,
            outcome=str(outcome),
            template_version_id=call.template_version_id,
        )
    except Exception:
        logger.exception("usage record failed for a call to %s", call.model.name)
