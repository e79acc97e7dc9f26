"""The gateway's background work inside each web process (one asyncio task per loop).

Every ``TICK`` seconds it publishes and reads in-flight counts and breaker openings (when
Redis is configured), and every ``redis_clock.REFRESH_SECONDS`` it measures the offset to
the Redis server's clock (quota windows run on it); every CAIPI_SHARED_STATE_POLL_SECONDS
it checks the routing version and reloads models and endpoints when it moved (or when the
table is older than GATEWAY_ROUTING_MAX_AGE); every HEALTH_POLL_SECONDS it refreshes endpoint
health.

Health, two modes. With a Celery broker, beat runs ``deploy.tasks.poll_endpoints`` and this
task only *reads* the shared snapshots. Without a broker there is no beat (tasks run eager,
in-process), so this task *polls* the endpoints itself with the same ``poll_and_store`` —
the embedded demo then needs no worker and still routes around a dead endpoint. It starts
from the ASGI lifespan (caipi/asgi.py) or lazily on the first gateway call.

Quota slices (``governance.services.quota_leases``, with Redis): every tick it hands back
the slices this process no longer needs, and all of them on shutdown; a process leases only
while this tick runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections

from caipi.core.redis import async_redis, close_async_redis, redis_configured
from caipi.core.redis_clock import redis_clock_refresh
from caipi.gateway.breakers import breakers_sync
from caipi.gateway.catalog import catalog
from caipi.governance.services import quota_leases_return, quota_leases_tick
from deploy import vllm_client
from deploy.health import health_read, poll_and_store
from deploy.selectors import routing_version

logger = logging.getLogger(__name__)

TICK = 0.25
STOP_SECONDS = 2.0
T = TypeVar("T")

# The periodic cache reads (routing version, health snapshots) run in one thread of their
# own. ``asyncio.to_thread`` runs each call in a copy of the loop's context, where Django's
# cache handle (an asgiref ``Local``) is created anew every time: every read opened a new
# Redis connection (and redis-py read its package metadata for it) — several a second per
# process, ~4% of a busy worker's samples (docs/benchmarks.md, "Where the time goes").
# ``run_in_executor`` keeps the thread's own context, so its cache client stays connected.
_cache_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="caipi-cache-read")


async def in_cache_thread(read: Callable[..., T], *args: Any) -> T:
    """Run the blocking cache read ``read(*args)`` in the background's cache thread."""
    return await asyncio.get_running_loop().run_in_executor(_cache_thread, read, *args)


_tasks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
    weakref.WeakKeyDictionary()
)
_load_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def ensure_started() -> None:
    """Make sure the catalog is loaded and this loop runs the refresher. Cheap when it does."""
    if not catalog().loaded:
        await _first_load()
    loop = asyncio.get_running_loop()
    task = _tasks.get(loop)
    if task is None or task.done():
        _tasks[loop] = loop.create_task(_refresh_forever(), name="caipi-gateway-background")


async def stop() -> None:
    """Cancel this loop's refresher and close its upstream connections (ASGI lifespan
    shutdown, end of a test)."""
    task = _tasks.pop(asyncio.get_running_loop(), None)
    if task is not None:
        task.cancel()
        # Bounded: a Redis command interrupted by the cancellation can take a while to
        # give up its connection; shutdown must not wait on it.
        _, pending = await asyncio.wait({task}, timeout=STOP_SECONDS)
        if pending:
            logger.warning("gateway background task did not stop within %ss", STOP_SECONDS)
    await vllm_client.close_session()
    await close_async_redis()


async def _first_load() -> None:
    lock = _load_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        if not catalog().loaded:
            await asyncio.to_thread(_reload_and_disconnect, catalog())


async def _refresh_forever() -> None:
    redis = async_redis() if redis_configured() else None
    last_version_check = last_health = 0.0
    try:
        while True:
            now = time.monotonic()
            if redis is not None:
                await _guarded(quota_leases_tick(), "quota leases")
                await _guarded(catalog().inflight.sync(redis), "in-flight sync")
                await _guarded(breakers_sync(redis, catalog()), "breaker sync")
                await _guarded(redis_clock_refresh(redis), "Redis clock")
            if now - last_version_check >= settings.SHARED_STATE_POLL_SECONDS:
                last_version_check = now
                await _guarded(_reload_if_changed(), "routing reload")
            if now - last_health >= settings.HEALTH_POLL_SECONDS:
                last_health = now
                await _guarded(refresh_health(), "health refresh")
            await asyncio.sleep(TICK)
    finally:
        if redis is not None:
            await _withdraw(redis)


async def _withdraw(redis: Any) -> None:
    """Remove this process's in-flight counts and hand back its quota slices; bounded, as it
    runs while being cancelled."""
    try:
        async with asyncio.timeout(2):
            await catalog().inflight.forget(redis)
    except Exception:
        logger.warning("gateway background: could not withdraw in-flight counts", exc_info=True)
    try:
        async with asyncio.timeout(2):
            await quota_leases_return()
    except Exception:
        logger.warning("gateway background: could not hand back quota slices", exc_info=True)


# The background steps failing now: each failure streak (Redis down, say, for the 0.25 s
# in-flight sync) is logged once with its traceback, and its end once, not four times a second.
_failing: set[str] = set()


async def _guarded(work: object, what: str) -> None:
    try:
        await work  # type: ignore[misc]
    except asyncio.CancelledError:
        raise
    except Exception:
        if what not in _failing:
            _failing.add(what)
            logger.exception("gateway background: %s failed (logged once until it recovers)", what)
        return
    if what in _failing:
        _failing.discard(what)
        logger.warning("gateway background: %s works again", what)


async def _reload_if_changed() -> None:
    current = catalog()
    version = await in_cache_thread(routing_version)
    too_old = time.monotonic() - current.loaded_at > settings.GATEWAY_ROUTING_MAX_AGE
    if version != current.version or too_old:
        await asyncio.to_thread(_reload_and_disconnect, current)


def _reload_and_disconnect(current: Any) -> None:
    """Reload the routing table in a pool thread, then close that thread's database
    connection: reloads are rare, and a connection left open in an idle pool thread outlives
    every request (and blocks dropping a test database)."""
    try:
        current.reload()
    finally:
        connections.close_all()


async def refresh_health() -> None:
    """Poll endpoints (no broker) or read the poller's shared snapshots (broker)."""
    current = catalog()
    endpoints = current.endpoints()
    if not endpoints:
        return
    if settings.CELERY_BROKER_URL:
        current.set_health(await in_cache_thread(health_read, [e.id for e in endpoints]))
    else:
        snapshots = await poll_and_store(endpoints)
        current.set_health({s.endpoint_id: s for s in snapshots})
