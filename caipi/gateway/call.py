"""One relayed call's state, and the bookkeeping when it ends (quota, usage, metrics)."""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from caipi.gateway import metrics
from caipi.gateway.catalog import catalog
from caipi.governance import quotas, usage
from caipi.governance.principal import Principal
from deploy.selectors import EndpointRoute, ModelRoute

logger = logging.getLogger(__name__)


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
    max_tokens: int
    started: float
    reservation: Any = None
    template_version_id: int | None = None

    @property
    def prompt_estimate(self) -> int:
        """Prompt tokens guessed from the body size (~4 bytes a token); settled later."""
        return max(1, len(self.body) // 4)

    @property
    def served_marker(self) -> bytes:
        return b'"model":"' + self.model.served_name.encode() + b'"'

    @property
    def public_marker(self) -> bytes:
        return b'"model":"' + self.model.name.encode() + b'"'


@dataclass(slots=True)
class Upstream:
    """An open upstream response and when things happened (perf_counter seconds)."""

    endpoint: EndpointRoute
    response: aiohttp.ClientResponse
    sent: float
    first: bytes = b""
    first_byte: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


def usage_from_tail(tail: bytes) -> dict[str, Any] | None:
    """The ``usage`` object of the last SSE event that carries one, or None."""
    at = tail.rfind(b'"usage":{')
    if at < 0:
        return None
    start = tail.rfind(b"data: ", 0, at)
    end = tail.find(b"\n", at)
    try:
        event = orjson.loads(tail[start + 6 : end if end >= 0 else len(tail)])
    except orjson.JSONDecodeError:
        return None
    found = event.get("usage") if isinstance(event, dict) else None
    return found if isinstance(found, dict) else None


def usage_counted(events: int) -> dict[str, Any] | None:
    """Completion tokens estimated from the streamed events, for engines (llama.cpp) or
    broken streams that send no usage chunk: one token per event, less the opening
    role event and ``[DONE]``. Charging nothing would let such calls run free of quota."""
    if events <= 0:
        return None
    return {"completion_tokens": max(0, events - 2)}


async def finish(
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
    prompt = int((usage_seen or {}).get("prompt_tokens") or call.prompt_estimate)
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
