"""In-process caches of governance data that every process drops within about a second of a change.

The hot path must not query the database, so API keys, principals, model access and
limits are held in memory. Each cached value remembers the *governance version* it was
built under; a write that changes governance data calls ``governance_changed()``, which
bumps a counter in Redis (and a local one). Every process re-reads the Redis counter at
most once per ``poll_seconds()`` (CAIPI_SHARED_STATE_POLL_SECONDS, 1 s by default), so a
revoked key or a changed limit takes effect on every process of every machine within that
time plus one Redis round trip (plus one TTL at worst if Redis was unreachable). Entries
also expire after their TTL as a backstop. Without Redis only the local counter exists (one
process, immediate).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings

from caipi.core.redis import RedisError, async_redis, redis_configured, sync_redis

logger = logging.getLogger(__name__)

VERSION_KEY = "caipi:governance:version"

# A version never seen before, even after Redis restarted empty: a missing counter starts
# again from the server's time in milliseconds, above what it counted before the restart.
# (A plain INCR would count 1, 2, … again, and a process that still held entries of
# version 1 from before the restart would keep them through the first change after it.)
BUMP_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
return redis.call('INCR', KEYS[1])
"""


def poll_seconds() -> float:
    """How often a process re-reads the shared governance version (the convergence bound)."""
    return float(settings.SHARED_STATE_POLL_SECONDS)


T = TypeVar("T")
K = TypeVar("K")


class _SharedVersion:
    """The governance version: (local bumps, Redis counter), polled at most once a second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # a seam for tests: the poll interval without waiting for it
        self._local = 0
        self._remote = 0
        self._checked = 0.0
        self._refresh: asyncio.Task[None] | None = None  # keeps the background read alive

    def _due(self) -> bool:
        return redis_configured() and self.clock() - self._checked >= poll_seconds()

    def current(self) -> tuple[int, int]:
        if self._due():
            self._checked = self.clock()
            try:
                self._remote = int(sync_redis().get(VERSION_KEY) or 0)
            except RedisError as exc:  # keep the last known version; TTLs still apply
                logger.warning("governance version unreadable: %s", type(exc).__name__)
        return (self._local, self._remote)

    async def acurrent(self) -> tuple[int, int]:
        """The version now known; when due, re-read Redis in the background.

        The hot path never waits on this read (it cost a Redis round trip on nearly every
        call at low call rates): a change made in another process reaches this one within
        ``poll_seconds()`` plus one round trip, instead of within ``poll_seconds()``.
        """
        if self._due():
            first = self._checked == 0.0  # never read (or just bumped here): wait this once
            self._checked = self.clock()
            if first:
                await self._aread()
            else:
                self._refresh = asyncio.get_running_loop().create_task(self._aread())
        return (self._local, self._remote)

    async def _aread(self) -> None:
        try:
            self._remote = int(await async_redis().get(VERSION_KEY) or 0)
        except RedisError as exc:
            logger.warning("governance version unreadable: %s", type(exc).__name__)

    def bump(self) -> None:
        self._local += 1
        self._checked = 0.0
        if redis_configured():
            try:
                sync_redis().eval(BUMP_LUA, 1, VERSION_KEY)
            except RedisError as exc:
                logger.warning("governance version not bumped in Redis: %s", type(exc).__name__)


VERSION = _SharedVersion()


def governance_changed() -> None:
    """Tell every process to drop its cached keys, principals, model access and limits."""
    VERSION.bump()


class TTLCache(Generic[K, T]):
    """A dict of values valid for ``ttl`` seconds and only under the version they were built in."""

    def __init__(self, *, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, tuple[int, int], T]] = {}

    def get(self, key: K, version: tuple[int, int]) -> T | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic() or entry[1] != version:
            return None
        return entry[2]

    def put(self, key: K, version: tuple[int, int], value: T) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; a refill costs one query per key
        self._entries[key] = (time.monotonic() + self.ttl, version, value)

    def clear(self) -> None:
        self._entries.clear()


class Snapshot(Generic[T]):
    """One whole-table snapshot (model access, limits), rebuilt by ``loader`` when stale."""

    def __init__(self, loader: Callable[[], T], *, ttl: float) -> None:
        self._loader = loader
        self._cache: TTLCache[str, T] = TTLCache(ttl=ttl)
        self._lock = threading.Lock()

    def get(self) -> T:
        version = VERSION.current()
        value = self._cache.get("v", version)
        if value is None:
            with self._lock:
                value = self._loader()
                self._cache.put("v", version, value)
        return value

    async def aget(self) -> T:
        version = await VERSION.acurrent()
        value = self._cache.get("v", version)
        if value is None:
            value = await sync_to_async(self._loader)()
            self._cache.put("v", version, value)
        return value

    def clear(self) -> None:
        self._cache.clear()
