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
import logging

import redis
import redis.asyncio as aredis
from django.conf import settings
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
