"""The gateway's own count of calls in flight per endpoint, shared across processes.

Counting each call with a Redis INCR/DECR would put two network round trips on every
call's hot path. Instead each process counts its own calls exactly in memory, and the
gateway's background task (caipi/gateway/background.py) publishes them to Redis every
``background.TICK`` seconds and reads everyone else's. The router sees ``own (exact) +
others (at most one tick old)``, which is all it needs: the engine's own /metrics are older.
A process that dies stops refreshing its hash, which then expires (no leaked counts).

Redis layout: ``caipi:inflight:procs`` sorted set of process tokens scored by last sync
time; ``caipi:inflight:<token>`` hash endpoint id -> count, with a TTL. Both the scores
and the TTLs are the Redis server's time, never a web process's clock: machines whose
clocks disagree still see each other's counts and drop a dead one's after STALE_SECONDS.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from typing import Any

from caipi.core.redis import LuaScript

logger = logging.getLogger(__name__)

STALE_SECONDS = 3.0
PROCS_KEY = "caipi:inflight:procs"
PROC_KEY = "caipi:inflight:{}"

# KEYS: the process set, this process's hash. ARGV: token, stale seconds, hash TTL, then
# endpoint id / count pairs. Returns the tokens of the processes alive by the server's clock.
SYNC = LuaScript(
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('DEL', KEYS[2])
if #ARGV > 3 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 4))
  redis.call('EXPIRE', KEYS[2], ARGV[3])
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)


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
        """Publish own counts and read the others' (two round trips)."""
        keys = [PROCS_KEY, PROC_KEY.format(self.token)]
        args: list[str | int] = [self.token, int(STALE_SECONDS), int(STALE_SECONDS) + 1]
        for endpoint_id, count in self.local.items():
            if count > 0:
                args += [endpoint_id, count]
        alive = await SYNC.run(keys, args, redis)
        others = [t.decode() if isinstance(t, bytes) else t for t in alive]
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
    seconds, micros = redis.time()  # the server's clock, as the processes' scores
    tokens = redis.zrangebyscore(PROCS_KEY, seconds + micros / 1e6 - STALE_SECONDS, "+inf")
    pipe = redis.pipeline(transaction=False)
    for token in tokens:
        pipe.hgetall(PROC_KEY.format(token.decode() if isinstance(token, bytes) else token))
    return _add_up(pipe.execute())
