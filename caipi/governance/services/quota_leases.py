"""Quota leases: each process holds slices of its busy, large counters and reserves from them
locally, so most calls reserve and settle without a Redis round trip.

Why (issue 14 item 2, measured in docs/benchmarks.md "Quota leases"): a reserve and a settle
on Redis cost two EVALSHA round trips per call, the reserve on the time to first token —
805 µs of CPU per call in CAIPI's process, against 66 µs for the whole quota path from a
slice (one call at a time; 594 against 33 µs with 100 at once; loaded machine). Pipelining
the settles saved only their share (476 µs), and overlapping the reserve with the upstream
connect saves no CPU and would send calls the quota refuses to an engine; so, leases.

The guarantee stays the Lua script's: a slice is taken from the Redis counter atomically and
only if it fits under the limit (``LEASE``), so the counter always holds everything
settled, everything reserved and every slice a process still holds, and it never goes over
its limit. A call reserves from its process's slice all or nothing; its settle gives the
unused part back to the slice. A slice is handed back to Redis (``quota_leases_tick``,
``quota_leases_return``) when its window ends, when it has been idle ``IDLE_SECONDS``, when
another process was refused on its counter, and on shutdown.

Which counters lease (small limits must not be stranded in one process while another
refuses):

1. Only a counter whose limit is large compared to a call: a slice is 1/64 of the limit
   (CAIPI_QUOTA_LEASE_SLICES) and must cover ``MIN_CALLS`` calls like the one asking. A
   10-calls-a-minute student limit never leases; a course's million tokens a day does.
2. Only a busy counter: one with a second call within ``IDLE_SECONDS`` of the first.
3. Only in a process whose gateway background task runs ``quota_leases_tick`` (web
   processes): it hands slices back; Celery workers and scripts reserve on Redis directly.
4. A process refused on a counter (``quota_reclaim``) raises a reclaim flag on it: every
   process hands its slices of that counter back within a background tick and takes none
   for ``RECLAIM_SECONDS``; the refused call waits up to ``RECLAIM_WAIT`` for them and is
   tried once more, so it is refused only when the limit is really spent.

A slice is refilled in the background before it runs out (below half a slice); a call that
finds its slice too small for it reserves on Redis directly, as without leases. Redis
errors on a lease's way drop all leases of this process (they stay counted in Redis until
their window ends), so the next calls go to Redis and fail closed there. A process killed
without shutdown strands what it held until the window ends: at most one slice of each
limit. Counters shown to users (``quota_used``) include the slices held: up to that much
less remaining is shown than really is.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from caipi.core.redis import RedisError, async_redis
from caipi.core.redis_clock import redis_now
from caipi.governance.services.quota_scripts import LEASE, RECLAIM, SETTLE

logger = logging.getLogger(__name__)

MIN_CALLS = 4  # a counter leases only when a slice covers at least this many calls
IDLE_SECONDS = 10.0
RECLAIM_SECONDS = 5  # how long a reclaim flag keeps every process from leasing the counter
RECLAIM_WAIT = 1.0  # how long a refused call waits for other processes to hand back
COOL_SECONDS = 5.0  # after a refill Redis refused, no new try on that counter this long
TICK_STALE = 2.0  # no new slices when ``quota_leases_tick`` has not run for this long


def leased_key(key: str) -> str:
    """The Redis key counting the slices of ``key`` that processes hold."""
    return key.replace("caipi:q:", "caipi:ql:", 1)


def flag_key(key: str) -> str:
    """The Redis key asking every process to hand back its slices of ``key``."""
    return key.replace("caipi:q:", "caipi:qr:", 1)


@dataclass
class Lease:
    """What this process holds of one counter: ``available`` is taken from Redis and not
    reserved by any call; ``granted`` is what it took in all (the leased total's share)."""

    key: str
    size: int
    ends: float  # the window's end (epoch seconds)
    available: int = 0
    granted: int = 0
    used_at: float = 0.0  # monotonic
    refilling: bool = False
    returning: bool = False


_lock = threading.Lock()
_leases: dict[str, Lease] = {}
_seen: dict[str, float] = {}  # counter key -> monotonic time of its last call
_cool: dict[str, float] = {}  # counter key -> monotonic time before which no lease is tried
_tasks: set[asyncio.Task[None]] = set()
_ticked_at = -TICK_STALE  # monotonic time of the last tick


def slice_for(size: int, amount: int) -> int:
    """The slice a counter of ``size`` leases for calls costing ``amount``; 0: it does not."""
    piece = size // settings.GOVERNANCE_QUOTA_LEASE_SLICES
    return piece if piece >= max(amount, 1) * MIN_CALLS else 0


def leasable(size: int) -> bool:
    """Whether any call (one token, one request) can lease from a limit of ``size``: a
    refusal on a limit that cannot need not ask other processes for slices."""
    return slice_for(size, 1) > 0


def take(counters: Sequence[Any]) -> tuple[bool, ...]:
    """Reserve each counter's ``amount`` from this process's slice where one covers it.

    Returns, per counter, whether it was taken locally; the rest must be reserved on Redis.
    Starts a background refill for a busy, large counter whose slice runs low. Never waits.
    """
    now, clock = redis_now(), time.monotonic()
    ticking = clock - _ticked_at < TICK_STALE
    taken: list[bool] = []
    refill: list[tuple[Lease, int]] = []
    with _lock:
        for counter in counters:
            lease = _leases.get(counter.key)
            piece = slice_for(counter.size, counter.amount) if ticking else 0
            if lease is not None and lease.size != counter.size:  # the limit changed
                lease.returning = True
            usable = lease is not None and not lease.returning and lease.ends > now
            if usable and lease is not None and lease.available >= counter.amount:
                lease.available -= counter.amount
                lease.used_at = clock
                taken.append(True)
            else:
                taken.append(False)
            if piece and _wants_slice(lease, usable, piece, counter.key, clock):
                refill.append((_lease_of(counter, lease), piece))
            _seen[counter.key] = clock
    for lease, piece in refill:
        _start_refill(lease, piece)
    return tuple(taken)


def _wants_slice(lease: Lease | None, usable: bool, piece: int, key: str, clock: float) -> bool:
    """A busy counter with no lease, or a lease running low and not being refilled yet. (A
    lease that is no longer usable is handed back by the tick before a new one starts.)"""
    if lease is None:
        return _busy(key, clock)
    cooling = _cool.get(key, 0.0) > clock  # Redis refused a slice a moment ago
    return usable and not lease.refilling and not cooling and lease.available < piece // 2


def _busy(key: str, clock: float) -> bool:
    seen = _seen.get(key)
    return seen is not None and clock - seen < IDLE_SECONDS and _cool.get(key, 0.0) <= clock


def _lease_of(counter: Any, lease: Lease | None) -> Lease:
    if lease is None:
        lease = Lease(counter.key, counter.size, counter.resets_at, used_at=time.monotonic())
        _leases[counter.key] = lease
    lease.refilling = True
    return lease


def _start_refill(lease: Lease, piece: int) -> None:
    try:
        task = asyncio.get_running_loop().create_task(_refill(lease, piece))
    except RuntimeError:  # no running loop (a sync caller): no lease
        lease.refilling = False
        return
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _refill(lease: Lease, piece: int) -> None:
    """Take one more slice of ``lease``'s counter from Redis, if it fits under the limit."""
    ttl = int(lease.ends - redis_now()) + 120
    keys = [lease.key, leased_key(lease.key), flag_key(lease.key)]
    try:
        got = int(await LEASE.run(keys, [piece, lease.size, ttl]))
    except RedisError as exc:
        logger.warning("quota leases dropped: Redis error %s", type(exc).__name__)
        quota_leases_drop()
        return
    finally:
        lease.refilling = False
    with _lock:
        if got and _leases.get(lease.key) is lease and not lease.returning:
            lease.available += got
            lease.granted += got
            return
        if not got:
            _cool[lease.key] = time.monotonic() + COOL_SECONDS
    if got:  # the lease was given up meanwhile: hand the new slice straight back
        await _give_back([(lease.key, got, got)])


def give_back(keys: Sequence[str], amounts: Sequence[int]) -> list[int]:
    """Put what calls did not use back into this process's live slices.

    Returns the amounts that found no live slice (its lease ended meanwhile): those belong
    to the counter on Redis, and the caller settles them there.
    """
    rest = []
    now = redis_now()
    with _lock:
        for key, amount in zip(keys, amounts, strict=True):
            lease = _leases.get(key)
            if lease is not None and not lease.returning and lease.ends > now:
                lease.available += amount
                rest.append(0)
            else:
                rest.append(amount)
    return rest


async def quota_leases_tick() -> None:
    """Hand back slices whose window ended, that sat idle, whose limit changed or that
    another process asked for (its reclaim flag). One round trip when any lease is held,
    none otherwise. Called by the gateway's background task every tick: a process without
    it (a Celery worker, a script) takes no slices, as nothing would hand them back."""
    global _ticked_at
    clock, now = time.monotonic(), redis_now()
    _ticked_at = clock
    with _lock:
        for key, seen in list(_seen.items()):
            if clock - seen > IDLE_SECONDS:
                del _seen[key]
        for key, until in list(_cool.items()):
            if until <= clock:
                del _cool[key]
        held = [lease for lease in _leases.values() if not lease.refilling]
    if not held:
        return
    try:
        flags = await async_redis().mget([flag_key(lease.key) for lease in held])
    except RedisError as exc:
        logger.warning("quota leases dropped: Redis error %s", type(exc).__name__)
        quota_leases_drop()
        return
    ending = [
        lease
        for lease, flag in zip(held, flags, strict=True)
        if flag or lease.returning or lease.ends <= now or clock - lease.used_at > IDLE_SECONDS
    ]
    await _return(ending)


async def quota_leases_return() -> None:
    """Hand every slice this process holds back to Redis (shutdown)."""
    with _lock:
        held = list(_leases.values())
    await _return(held)


async def _return(leases: Sequence[Lease]) -> None:
    with _lock:
        back = []
        for lease in leases:
            if _leases.get(lease.key) is lease:
                del _leases[lease.key]
                back.append((lease.key, lease.available, lease.granted))
    if back:
        await _give_back(back)


async def _give_back(back: Sequence[tuple[str, int, int]]) -> None:
    """Take (counter, unused, granted) triples off the counters and their leased totals."""
    keys: list[str] = []
    deltas: list[int] = []
    for key, unused, granted in back:
        keys += [key, leased_key(key)]
        deltas += [-unused, -granted]
    try:
        await SETTLE.run(keys, deltas)
    except RedisError as exc:
        logger.warning("quota lease return lost (Redis error %s)", type(exc).__name__)


async def quota_reclaim(keys: Sequence[str]) -> bool:
    """After a refusal on ``keys``: hand this process's slices of them back, ask every other
    process to do the same, and wait up to ``RECLAIM_WAIT`` until they have. True when
    slices were held anywhere, so that trying the call once more can succeed."""
    with _lock:
        mine = [_leases[key] for key in keys if key in _leases]
        for key in keys:
            _cool[key] = time.monotonic() + RECLAIM_SECONDS
    await _return(mine)
    pairs = [name for key in keys for name in (leased_key(key), flag_key(key))]
    held = first = int(await RECLAIM.run(pairs, [RECLAIM_SECONDS]))
    deadline = time.monotonic() + RECLAIM_WAIT
    while held > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        values = await async_redis().mget([leased_key(key) for key in keys])
        held = sum(int(value or 0) for value in values)
    return bool(mine) or first > 0


def quota_leases_drop() -> None:
    """Forget every lease without handing it back (Redis is unreachable; tests)."""
    with _lock:
        _leases.clear()


def clear() -> None:
    """Forget leases, and which counters were busy or cooling down (tests)."""
    global _ticked_at
    with _lock:
        _leases.clear()
        _seen.clear()
        _cool.clear()
        _ticked_at = -TICK_STALE


def held() -> dict[str, tuple[int, int]]:
    """Counter key -> (available, granted) of this process's leases (tests, diagnostics)."""
    with _lock:
        return {key: (lease.available, lease.granted) for key, lease in _leases.items()}
