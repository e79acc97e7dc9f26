"""Quota enforcement: reserve a call's maximum cost before dispatch, settle the real cost after.

Counters live in Redis, one per (limit, subject, window), under keys such as
``caipi:q:<limit id>:<subject>:<window start>`` that expire after their window. Windows
are fixed and aligned to UTC: the calendar minute, the day from midnight, the month from
the 1st — so a refusal can say exactly when it resets (a burst at a window edge can use up
to twice a limit within a short span; that is the usual price of fixed windows). Window
times are the Redis server's (``caipi.core.redis_clock.redis_now``), so machines whose
clocks disagree still count a user's calls in one window and one counter.

``quota_reserve`` checks and increments every applicable counter in ONE Lua script, all or
nothing, so N concurrent calls can never spend more than a limit. ``quota_settle`` gives
back what the call did not use and never charges more than was reserved, so a counter
never ends above its limit; ``quota_release`` gives back everything (the call failed
before producing a token).

Leases (``quota_leases``, CAIPI_QUOTA_LEASES, on by default): a web process reserves a
large, busy counter's share from a slice it took from that counter under the limit, and
settles back into the slice — no round trip; counters the slices do not cover go to the
script as above, and a refusal there first gets back the slices every process holds of
the refused counters and tries once more. Measured (docs/benchmarks.md, "Quota leases"):
66 µs CPU per call with leases against 805 µs for the two round trips, on a loaded
machine; pipelining the settles instead saved only the settle's share, and overlapping
the reserve with the upstream connect would have sent refused calls to the engine.

Redis unreachable: fail closed with ``Unavailable`` (503), or, with
``GOVERNANCE_QUOTA_FAIL_OPEN``, let the call through unchecked and log a warning.
Without ``REDIS_URL`` (embedded demo) the counters live in this process
(``quota_memory``) with the same semantics — correct only for a single process.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings

from caipi.core.errors import RateLimited, Unavailable
from caipi.core.redis import RedisError, async_redis, redis_configured, sync_redis
from caipi.core.redis_clock import redis_clock_ready, redis_now
from caipi.governance.limits import LIMITS, LimitRule, LimitsSnapshot, limits_applicable
from caipi.governance.principal import Principal
from caipi.governance.services import quota_leases, quota_memory
from caipi.governance.services.quota_scripts import RESERVE, SETTLE

logger = logging.getLogger(__name__)


UNAVAILABLE = (
    "Quota service unavailable: Redis cannot be reached, so calls are refused until it is back."
)


@dataclass(frozen=True)
class Counter:
    """One counter a call draws on, and how much the reservation took from it."""

    key: str
    metric: str
    amount: int
    size: int
    label: str
    resets_at: float


@dataclass
class Reservation:
    """What ``quota_reserve`` took; hand it back to ``quota_settle`` or ``quota_release``."""

    principal: Principal
    model: str
    prompt_tokens: int
    max_tokens: int
    counters: tuple[Counter, ...] = ()
    backend: str = "redis"  # "redis", "memory" or "unchecked" (failed open)
    done: bool = field(default=False, compare=False)
    leased: tuple[bool, ...] = ()  # per counter: reserved from this process's slice


def window_bounds(window: str, now: float) -> tuple[int, int]:
    """Start and end (epoch seconds, UTC) of the fixed window containing ``now``."""
    if window == "minute":
        start = int(now // 60 * 60)
        return start, start + 60
    if window == "day":
        start = int(now // 86400 * 86400)
        return start, start + 86400
    moment = datetime.fromtimestamp(now, UTC)
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    days = calendar.monthrange(moment.year, moment.month)[1]
    return int(first.timestamp()), int(first.timestamp()) + days * 86400


def _cost(metric: str, prompt_tokens: int, completion_tokens: int) -> int:
    if metric == "tokens":
        return prompt_tokens + completion_tokens
    if metric == "input_tokens":
        return prompt_tokens
    if metric == "output_tokens":
        return completion_tokens
    return 1


def quota_plan(
    snapshot: LimitsSnapshot, principal: Principal, model: str, prompt_tokens: int, max_tokens: int
) -> tuple[Counter, ...]:
    """The counters a call would draw on and the maximum it may cost each (pure)."""
    now = redis_now()
    counters = []
    for rule, subject in limits_applicable(snapshot, principal, model):
        start, end = window_bounds(rule.window, now)
        counters.append(quota_counter(rule, subject, start, end, prompt_tokens, max_tokens))
    return tuple(counters)


def quota_counter(
    rule: LimitRule, subject: str, start: int, end: int, prompt: int, most: int
) -> Counter:
    """The counter of ``rule`` for ``subject`` in the window [start, end), and what a call
    of ``prompt`` tokens and at most ``most`` completion tokens takes from it."""
    key = f"caipi:q:{rule.id}:{subject}:{start}"
    amount = _cost(rule.metric, prompt, most)
    return Counter(key, rule.metric, amount, rule.size, rule.label, float(end))


def _refusal(counters: tuple[Counter, ...], failed: list[int]) -> RateLimited:
    """429 naming the failing limit that resets last (the call needs all of them)."""
    pairs = [(counters[int(failed[i]) - 1], int(failed[i + 1])) for i in range(0, len(failed), 2)]
    counter, used = max(pairs, key=lambda pair: pair[0].resets_at)
    resets_at = datetime.fromtimestamp(counter.resets_at, UTC).isoformat(timespec="seconds")
    retry_after = max(1, int(counter.resets_at - redis_now()) + 1)
    alone = " This call alone needs more than the limit." if counter.amount > counter.size else ""
    message = (
        f"Quota exceeded: {counter.label} ({used} of {counter.size} used, this call needs up to "
        f"{counter.amount}). It resets at {resets_at}.{alone}"
    )
    extra = {
        "limit": counter.label,
        "size": counter.size,
        "used": used,
        "resets_at": resets_at,
        "retry_after": retry_after,
    }
    return RateLimited(message, extra=extra)


def _reserve_args(counters: tuple[Counter, ...]) -> tuple[list[str], list[int]]:
    now = redis_now()
    args: list[int] = []
    for counter in counters:
        args += [counter.amount, counter.size, int(counter.resets_at - now) + 120]
    return [counter.key for counter in counters], args


def _unreachable(exc: Exception, reservation: Reservation) -> Reservation:
    if getattr(settings, "GOVERNANCE_QUOTA_FAIL_OPEN", False):
        logger.warning("quota unchecked (fail open): Redis error %s", type(exc).__name__)
        reservation.backend = "unchecked"
        reservation.counters = ()
        return reservation
    logger.error("quota refused (fail closed): Redis error %s", type(exc).__name__)
    raise Unavailable(UNAVAILABLE, extra={"retry_after": 5}) from exc


async def quota_reserve(
    *, principal: Principal, model: str, prompt_tokens: int, max_tokens: int
) -> Reservation:
    """Reserve ``prompt_tokens + max_tokens`` (and one request) on every applicable limit.

    All or nothing, atomically. Raises ``RateLimited`` (429, ``extra`` names the limit,
    its size, what is used, when it resets and ``retry_after``) or ``Unavailable`` (503)
    when Redis is down and the quota fails closed. No database query once warm.
    """
    snapshot = await LIMITS.aget()
    if redis_configured():
        await redis_clock_ready(async_redis())  # a round trip once per process, at its start
    counters = quota_plan(snapshot, principal, model, prompt_tokens, max_tokens)
    reservation = Reservation(principal, model, prompt_tokens, max_tokens, counters)
    if not counters:
        return reservation
    if not redis_configured():
        reservation.backend = "memory"
        failed = quota_memory.reserve(counters)
    else:
        try:
            await _reserve_on_redis(reservation)
        except RedisError as exc:
            return _unreachable(exc, reservation)
        return reservation
    if failed:
        raise _refusal(counters, failed)
    return reservation


async def _reserve_on_redis(reservation: Reservation) -> None:
    """Reserve from this process's slices what they cover (``quota_leases``) and the rest
    with ``RESERVE``; a refusal there first reclaims the counter's slices from every
    process and tries once more. Raises ``RateLimited`` or ``RedisError`` (with nothing
    taken)."""
    counters = reservation.counters
    leasing = getattr(settings, "GOVERNANCE_QUOTA_LEASES", False)
    taken = quota_leases.take(counters) if leasing else (False,) * len(counters)
    reservation.leased = taken
    rest = tuple(counter for counter, local in zip(counters, taken, strict=True) if not local)
    if not rest:
        return
    try:
        failed = await _reserve_direct(rest)
        refused = [rest[int(index) - 1] for index in failed[::2]]
        leasable = [counter.key for counter in refused if quota_leases.leasable(counter.size)]
        if leasing and leasable and await quota_leases.quota_reclaim(leasable):
            failed = await _reserve_direct(rest)
    except BaseException:
        await _untake(reservation)
        raise
    if failed:
        await _untake(reservation)
        raise _refusal(rest, failed)


async def _reserve_direct(counters: tuple[Counter, ...]) -> list[int]:
    keys, args = _reserve_args(counters)
    return list(await RESERVE.run(keys, args))


async def _untake(reservation: Reservation) -> None:
    """Give back what ``quota_leases.take`` reserved for a call that is not going ahead."""
    pairs = zip(reservation.counters, reservation.leased, strict=True)
    deltas = [-counter.amount if local else 0 for counter, local in pairs]
    reservation.leased = tuple(bool(delta) for delta in deltas)
    await _apply(reservation, deltas)


def _deltas(
    reservation: Reservation, prompt_tokens: int | None, completion_tokens: int | None
) -> list[int]:
    if prompt_tokens is None or completion_tokens is None:  # release: give everything back
        return [-counter.amount for counter in reservation.counters]
    # Never more than was reserved: the reservation is the call's upper bound, and a
    # counter the reservation fitted under must not be pushed past its limit by settling.
    return [
        min(_cost(counter.metric, prompt_tokens, completion_tokens), counter.amount)
        - counter.amount
        for counter in reservation.counters
    ]


async def _apply(reservation: Reservation, deltas: list[int]) -> None:
    if reservation.done or not reservation.counters:
        return
    reservation.done = True
    keys = [counter.key for counter in reservation.counters]
    if reservation.backend == "memory":
        quota_memory.adjust(keys, deltas)
        return
    if any(reservation.leased):  # back into this process's slices, where they still live
        local = [index for index, leased in enumerate(reservation.leased) if leased]
        unplaced = quota_leases.give_back([keys[i] for i in local], [-deltas[i] for i in local])
        for index, amount in zip(local, unplaced, strict=True):
            deltas[index] = -amount
        if not any(deltas):
            return
    try:
        await SETTLE.run(keys, deltas)
    except RedisError as exc:  # the call already ran; the counters keep the reserved cost
        logger.warning("quota settle lost: Redis error %s", type(exc).__name__)


async def quota_settle(
    reservation: Reservation, *, prompt_tokens: int, completion_tokens: int
) -> None:
    """Charge the real cost, at most what was reserved: returns the unused part. Idempotent."""
    await _apply(reservation, _deltas(reservation, prompt_tokens, completion_tokens))


async def quota_release(reservation: Reservation) -> None:
    """Give the whole reservation back, for a call that failed before any token. Idempotent."""
    await _apply(reservation, _deltas(reservation, None, None))


def quota_used(counters: tuple[Counter, ...]) -> list[int]:
    """What each counter has used in its current window; ``Unavailable`` if Redis is down.

    A read, synchronous (pages and APIs that show the remaining quota); the hot path
    never reads counters, it only reserves and settles."""
    keys = [counter.key for counter in counters]
    if not keys:
        return []
    if not redis_configured():
        return quota_memory.used(keys)
    try:
        return [int(value or 0) for value in sync_redis().mget(keys)]
    except RedisError as exc:
        raise Unavailable(UNAVAILABLE, extra={"retry_after": 5}) from exc
