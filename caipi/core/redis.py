"""The one module that opens Redis clients: one pooled sync client per process, one pooled
async client per event loop.

Every Redis client CAIPI's own code uses comes from here — quota counters, the governance
version, the gateway's in-flight counts (background ticks and queued jobs) — so pool sizes
and timeouts are set in one place. It lives in the core so that every layer may use it.
(Django's cache and Celery's broker open their own connections from the same
``settings.REDIS_URL``; they are configured in settings, not here.)

Without ``REDIS_URL`` (the embedded demo) ``redis_configured()`` is false and callers use
their in-process fallbacks. Timeouts are short: a Redis that does not answer must turn into
a clear 503 quickly, not a hung request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from typing import Any

import redis
import redis.asyncio as aredis
from django.conf import settings
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.core.signals import setting_changed

logger = logging.getLogger(__name__)

# The errors callers catch, so that they need not import the client library themselves.
RedisError = redis.RedisError
NoScriptError = redis.exceptions.NoScriptError

CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0
# A blocking pool: a burst of calls waits for one of these connections rather than opening
# hundreds at once (a connect storm made connects time out into fail-closed 503s).
MAX_CONNECTIONS = 64

_sync_client: redis.Redis | None = None
_async_client: tuple[asyncio.AbstractEventLoop, aredis.Redis] | None = None


def redis_configured() -> bool:
    """True when a Redis URL is configured (production); false for the embedded demo."""
    return bool(settings.REDIS_URL)


def _url() -> str:
    url = settings.REDIS_URL
    if not url:
        raise RuntimeError("REDIS_URL is not set: check redis_configured() first")
    return str(url)


def sync_redis() -> redis.Redis:
    """The process's sync client. Assumes ``redis_configured()``."""
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(
            _url(),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            max_connections=MAX_CONNECTIONS,
        )
    return _sync_client


def async_redis() -> aredis.Redis:
    """The async client of the running event loop (clients cannot cross loops)."""
    global _async_client
    loop = asyncio.get_running_loop()
    if _async_client is None or _async_client[0] is not loop:
        pool = aredis.BlockingConnectionPool.from_url(
            _url(),
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            max_connections=MAX_CONNECTIONS,
            timeout=5,
        )
        _async_client = (loop, aredis.Redis(connection_pool=pool))
    return _async_client[1]


class LuaScript:
    """A Lua script Redis runs atomically, sent by its SHA-1 (``EVALSHA``) so its text
    crosses the wire only when Redis does not know it yet (first use, or a Redis that
    restarted and lost its script cache). The one copy of that fallback in CAIPI."""

    __slots__ = ("lua", "sha")

    def __init__(self, lua: str) -> None:
        self.lua = lua
        self.sha = hashlib.sha1(lua.encode()).hexdigest()  # noqa: S324 — Redis names scripts so

    async def run(self, keys: list[str], args: list[Any], client: Any = None) -> Any:
        """Run on ``client`` (the loop's async client by default); KEYS then ARGV."""
        client = async_redis() if client is None else client
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(self.lua, len(keys), *keys, *args)


async def close_async_redis() -> None:
    """Close the running loop's async client and its connections (loop shutdown, tests)."""
    global _async_client
    if _async_client is not None and _async_client[0] is asyncio.get_running_loop():
        client = _async_client[1]
        _async_client = None
        await client.connection_pool.disconnect()


def reset_clients() -> None:
    """Forget the clients, e.g. after ``REDIS_URL`` changed in a test or in a forked child."""
    global _sync_client, _async_client
    _sync_client = None
    _async_client = None


def _on_setting_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "REDIS_URL":
        reset_clients()


setting_changed.connect(_on_setting_changed)


# --- Django's cache on Redis, surviving a Redis outage ----------------------------------------


class _Outage:
    """This process's view of whether the cache's Redis is down, shared by every thread.

    The first failure is logged (a warning) and starts the outage; while it lasts, cache
    calls skip Redis for ``RETRY_SECONDS`` at a time instead of each waiting for a timeout;
    the first call that succeeds again ends it (logged once). One log line per outage and
    per recovery, not one per cache call.
    """

    RETRY_SECONDS = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None
        self.retry_at = 0.0

    def skipping(self) -> bool:
        return self.since is not None and time.monotonic() < self.retry_at

    def failed(self, exc: Exception) -> None:
        with self._lock:
            now = time.monotonic()
            self.retry_at = now + self.RETRY_SECONDS
            if self.since is None:
                self.since = now
                logger.warning(
                    "Redis cache unreachable (%s: %s): pages go on without the cache "
                    "until it is back",
                    type(exc).__name__,
                    exc,
                )

    def succeeded(self) -> None:
        if self.since is None:
            return
        with self._lock:
            if self.since is not None:
                logger.warning(
                    "Redis cache reachable again after %.0f s", time.monotonic() - self.since
                )
                self.since = None


CACHE_OUTAGE = _Outage()


class _ResilientClient(RedisCacheClient):
    """Django's Redis cache client, answering as a cache miss when Redis fails.

    Reads miss (``get`` gives the default, ``get_many`` nothing, ``has_key`` False);
    writes are dropped; ``add`` answers False — "not added", the safe answer for callers
    that use it to detect replays; ``incr`` raises ``ValueError`` as for a missing key.
    """

    def _guarded(self, name: str, fallback: Any, *args: Any) -> Any:
        if CACHE_OUTAGE.skipping():
            return fallback
        try:
            result = getattr(super(), name)(*args)
        except (redis.RedisError, OSError) as exc:
            CACHE_OUTAGE.failed(exc)
            return fallback
        CACHE_OUTAGE.succeeded()
        return result

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        return bool(self._guarded("add", False, key, value, timeout))

    def get(self, key: Any, default: Any) -> Any:
        return self._guarded("get", default, key, default)

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        self._guarded("set", None, key, value, timeout)

    def touch(self, key: Any, timeout: Any) -> bool:
        return bool(self._guarded("touch", False, key, timeout))

    def delete(self, key: Any) -> bool:
        return bool(self._guarded("delete", False, key))

    def get_many(self, keys: Any) -> dict[Any, Any]:
        found: dict[Any, Any] = self._guarded("get_many", {}, keys)
        return found

    def has_key(self, key: Any) -> bool:
        return bool(self._guarded("has_key", False, key))

    def incr(self, key: Any, delta: Any) -> Any:
        missing = object()
        result = self._guarded("incr", missing, key, delta)
        if result is missing:
            raise ValueError(f"Key '{key}' not found (the cache is unreachable).")
        return result

    def set_many(self, data: Any, timeout: Any) -> None:
        self._guarded("set_many", None, data, timeout)

    def delete_many(self, keys: Any) -> None:
        self._guarded("delete_many", None, keys)

    def clear(self) -> bool:
        return bool(self._guarded("clear", False))


class ResilientRedisCache(RedisCache):
    """``CACHES`` backend: Django's Redis cache that keeps pages working while Redis is down.

    Everything CAIPI keeps in the cache can be rebuilt (the framing origins, routing and
    health snapshots) or is refused safely without it (an LTI launch whose state cannot be
    checked), so a Redis outage turns cache calls into misses instead of 500s. Quotas do
    not use the cache: they fail closed on their own (``governance.services.quotas``).
    """

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _ResilientClient
