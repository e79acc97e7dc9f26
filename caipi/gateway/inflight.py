"""The gateway's own count of calls in flight per endpoint, shared across processes.

Counting each call with a Redis INCR/DECR would put two network round trips on every
call's hot path. Instead each process counts its own calls exactly in memory, and the
gateway's background task (caipi/gateway/background.py) publishes them to Redis every
``background.TICK`` seconds and reads everyone else's. The router sees ``own (exact) +
others (at most one tick old)``, which is all it needs: the engine's own /metrics are older.
A process that dies stops refreshing its hash, which then expires (no leaked counts).

Redis layout: ``caipi:inflight:procs`` sorted set of process tokens scored by last sync
time; ``caipi:inflight:<token>`` hash endpoint id -> count, with a TTL.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from typing import Any

logger = logging.getLogger(__name__)

STALE_SECONDS = 3.0
PROCS_KEY = "caipi:inflight:procs"
PROC_KEY = "caipi:inflight:{}"


class InFlight:
    """Per-endpoint in-flight counts: this process's exactly, others' as last synced."""

    def __init__(self) -> None:
        self.token = uuid.uuid4().hex
        self.local: defaultdict[int, int] = defaultdict(int)
        self.remote: dict[int, int] = {}

    def acquire(self, endpoint_id: int) -> None:
        self.local[endpoint_id] += 1

    def release(self, endpoint_id: int) -> None:
        self.local[endpoint_id] -= 1

    def total(self, endpoint_id: int) -> int:
        """This process's count plus every other process's last published count."""
        return self.local.get(endpoint_id, 0) + self.remote.get(endpoint_id, 0)

    async def sync(self, redis: Any) -> None:
        """Publish own counts and read the others' (two pipelined round trips)."""
        now = time.time()
        key = PROC_KEY.format(self.token)
        counts = {str(e): n for e, n in self.local.items() if n > 0}
        async with redis.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            if counts:
                pipe.hset(key, mapping=counts)
                pipe.expire(key, int(STALE_SECONDS) + 1)
            pipe.zadd(PROCS_KEY, {self.token: now})
            pipe.zremrangebyscore(PROCS_KEY, "-inf", now - STALE_SECONDS)
            pipe.zrange(PROCS_KEY, 0, -1)
            results = await pipe.execute()
        others = [t.decode() if isinstance(t, bytes) else t for t in results[-1]]
        self.remote = await _sum_counts(redis, [t for t in others if t != self.token])

    async def forget(self, redis: Any) -> None:
        """Withdraw this process's counts (at shutdown)."""
        await redis.delete(PROC_KEY.format(self.token))
        await redis.zrem(PROCS_KEY, self.token)


async def _sum_counts(redis: Any, tokens: list[str]) -> dict[int, int]:
    if not tokens:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for token in tokens:
            pipe.hgetall(PROC_KEY.format(token))
        hashes = await pipe.execute()
    return _add_up(hashes)


def _add_up(hashes: list[dict[Any, Any]]) -> dict[int, int]:
    totals: dict[int, int] = {}
    for counts in hashes:
        for endpoint_id, count in counts.items():
            totals[int(endpoint_id)] = totals.get(int(endpoint_id), 0) + int(count)
    return totals


def inflight_totals(redis: Any) -> dict[int, int]:
    """All processes' published counts, with a *synchronous* Redis client (Celery workers)."""
    tokens = redis.zrangebyscore(PROCS_KEY, time.time() - STALE_SECONDS, "+inf")
    pipe = redis.pipeline(transaction=False)
    for token in tokens:
        pipe.hgetall(PROC_KEY.format(token.decode() if isinstance(token, bytes) else token))
    return _add_up(pipe.execute())
