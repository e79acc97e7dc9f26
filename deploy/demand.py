"""Demand for a model, shared between the gateway (writer) and the reconciler (reader).

Two facts per model, kept in Redis (through ``caipi.core.redis``) so that every web
process, Celery worker and the reconciler see the same numbers:

- *waiting*: the calls held in a gateway queue because no instance of the model is ready.
  A sorted set of tickets scored by the unix time until which each ticket counts (its wait
  deadline), so the tickets of a process that died expire by themselves instead of
  holding a model awake forever. Key ``deploy:demand:<model_id>:waiting``.
- *last call*: the unix time (whole seconds) of the last call routed or waiting. The hot
  path writes it at most once a second per process and model (``demand_touch``), so
  idleness costs one Redis SET per second under load, not one per call. Key
  ``deploy:demand:<model_id>:last``.

Without Redis (the embedded demo: gateway and reconciler run in one process) the same
facts live in this process's memory.

Two smaller keys claim, for one process, the wake of a sleeping endpoint
(``demand_claim_wake``: a burst of waiting calls across many processes sends vLLM one
``POST /wake_up``, not hundreds) and the request to start a model at zero instances
(``demand_claim_start``: one reconciler task, not one per call).
"""

from __future__ import annotations

import logging
import threading
import time

from caipi.core.redis import RedisError, async_redis, redis_configured, sync_redis

logger = logging.getLogger(__name__)

_WAITING = "deploy:demand:{}:waiting"
_LAST = "deploy:demand:{}:last"
_WAKE = "deploy:wake:{}"
_START = "deploy:start:{}"
# The last-call key outlives any idle time worth configuring; it is refreshed by every call.
LAST_CALL_TTL = 7 * 24 * 3600

# Per process: the whole second last written for each model (the hot path's throttle).
_touched: dict[int, int] = {}
# In-memory fallback without Redis: tickets with their deadlines, last calls, claims.
_lock = threading.Lock()
_local_waiting: dict[int, dict[str, float]] = {}
_local_last: dict[int, float] = {}
_local_wakes: dict[int, float] = {}
_local_starts: dict[int, float] = {}


async def demand_touch(*, model_id: int) -> None:
    """Note that a call for the model was routed now. Cheap: writes at most once a second
    per process and model; a Redis failure is logged, never raised (calls go on)."""
    now = int(time.time())
    if _touched.get(model_id) == now:
        return
    _touched[model_id] = now
    if not redis_configured():
        _local_last[model_id] = float(now)
        return
    try:
        await async_redis().set(_LAST.format(model_id), now, ex=LAST_CALL_TTL)
    except RedisError:
        logger.warning("demand: could not record the last call of model %s", model_id)


async def demand_note_waiting(*, model_id: int, ticket: str, until: float) -> None:
    """Count ``ticket`` as a call waiting for the model until unix time ``until`` (or until
    ``demand_done``). Also counts as the model's last call. Raises RedisError."""
    now = time.time()
    _touched[model_id] = int(now)
    if not redis_configured():
        with _lock:
            _local_waiting.setdefault(model_id, {})[ticket] = until
            _local_last[model_id] = now
        return
    async with async_redis().pipeline(transaction=False) as pipe:
        pipe.zadd(_WAITING.format(model_id), {ticket: until})
        pipe.expireat(_WAITING.format(model_id), int(until) + 1, gt=True)
        pipe.set(_LAST.format(model_id), int(now), ex=LAST_CALL_TTL)
        await pipe.execute()


async def demand_done(*, model_id: int, ticket: str) -> None:
    """Stop counting ``ticket`` as waiting (it was served, refused or gave up). Never raises:
    a ticket left behind expires at its deadline."""
    if not redis_configured():
        with _lock:
            _local_waiting.get(model_id, {}).pop(ticket, None)
        return
    try:
        await async_redis().zrem(_WAITING.format(model_id), ticket)
    except RedisError:
        logger.warning("demand: could not remove waiting ticket of model %s", model_id)


def demand_waiting(*, model_id: int) -> int:
    """How many calls wait for the model right now (over all gateway processes)."""
    now = time.time()
    if not redis_configured():
        with _lock:
            tickets = _local_waiting.get(model_id, {})
            for ticket in [t for t, until in tickets.items() if until <= now]:
                del tickets[ticket]
            return len(tickets)
    key = _WAITING.format(model_id)
    with sync_redis().pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zcard(key)
        _, count = pipe.execute()
    return int(count)


def demand_last_call(*, model_id: int) -> float | None:
    """Unix time (to the second) of the model's last call routed or waiting; None if none
    was seen (or it is older than ``LAST_CALL_TTL``)."""
    if not redis_configured():
        return _local_last.get(model_id)
    value = sync_redis().get(_LAST.format(model_id))
    return float(value) if value is not None else None


async def demand_claim_wake(*, endpoint_id: int, seconds: float) -> bool:
    """Claim the right to wake the endpoint for ``seconds``; False when another process
    holds the claim (it is waking it already). Raises RedisError."""
    return await _claim(_WAKE.format(endpoint_id), _local_wakes, endpoint_id, seconds)


async def demand_claim_start(*, model_id: int, seconds: float) -> bool:
    """Claim the right to ask the reconciler for a start of the model now, for ``seconds``;
    False when another process asked already (a burst over many processes sends one
    reconciler task, not hundreds). Raises RedisError."""
    return await _claim(_START.format(model_id), _local_starts, model_id, seconds)


async def _claim(key: str, local: dict[int, float], item: int, seconds: float) -> bool:
    """A claim held for ``seconds``: a Redis key set if absent (shared by every process),
    or, without Redis, this process's own table."""
    if not redis_configured():
        now = time.monotonic()
        with _lock:
            if local.get(item, 0.0) > now:
                return False
            local[item] = now + seconds
            return True
    claimed = await async_redis().set(key, 1, nx=True, px=max(1, int(seconds * 1000)))
    return bool(claimed)


async def demand_release_wake(*, endpoint_id: int) -> None:
    """Give a wake claim back early (the wake failed and another process may retry)."""
    if not redis_configured():
        with _lock:
            _local_wakes.pop(endpoint_id, None)
        return
    try:
        await async_redis().delete(_WAKE.format(endpoint_id))
    except RedisError:
        logger.warning("demand: could not release the wake claim of endpoint %s", endpoint_id)


def demand_forget_local() -> None:
    """Forget this process's in-memory state (tests; a forked worker)."""
    with _lock:
        _touched.clear()
        _local_waiting.clear()
        _local_last.clear()
        _local_wakes.clear()
        _local_starts.clear()
