"""Now on the Redis server's clock: the one time every process of every machine shares.

Quota windows (``caipi:q:<limit>:<subject>:<window start>``) must begin and end at the
same moment on every machine, or two machines whose clocks differ by a minute count one
user's calls in two different minute windows and each lets a full limit through. So the
window time is the Redis server's, not the machine's: each process measures the offset
between its own clock and Redis ``TIME`` (against the midpoint of the round trip) and
``redis_now()`` is the process's clock plus that offset — no round trip per call.

The gateway's background task refreshes the offset every ``REFRESH_SECONDS``
(``redis_clock_refresh``); synchronous callers (pages, Celery tasks) refresh it themselves
when it is older than that. An async caller that needs it before the first measurement
awaits ``redis_clock_ready()`` once. Before any measurement, without Redis, or while Redis
is down, the last known offset applies (0 at first: the process's own clock).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from caipi.core.redis import RedisError, redis_configured, sync_redis

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0


class _Offset:
    """Redis time minus this process's time, and when it was last measured (monotonic)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.measured = False
        self.checked_at = -REFRESH_SECONDS  # monotonic time of the last attempt
        self._lock = threading.Lock()

    def due(self) -> bool:
        return time.monotonic() - self.checked_at >= REFRESH_SECONDS

    def learn(self, before: float, server: tuple[Any, Any], after: float) -> None:
        seconds, micros = server
        self.seconds = int(seconds) + int(micros) / 1e6 - (before + after) / 2
        self.measured = True

    def refresh_sync(self) -> None:
        with self._lock:
            if not self.due():
                return
            self.checked_at = time.monotonic()
            try:
                before = time.time()
                server = sync_redis().time()
                self.learn(before, server, time.time())
            except RedisError as exc:  # keep the last offset; try again after REFRESH_SECONDS
                logger.warning("Redis clock unreadable: %s", type(exc).__name__)


OFFSET = _Offset()


def redis_now() -> float:
    """Epoch seconds on the Redis server's clock (the process's own clock without Redis).

    Never waits on Redis inside an event loop; elsewhere it refreshes a stale offset."""
    if redis_configured() and OFFSET.due() and not _in_event_loop():
        OFFSET.refresh_sync()
    return time.time() + OFFSET.seconds


async def redis_clock_refresh(client: Any) -> None:
    """Measure the offset with ``client`` (async) when it is due; raises ``RedisError``."""
    if OFFSET.due():
        await _measure(client)


async def redis_clock_ready(client: Any) -> None:
    """Measure the offset now if it never was (a process's first calls); cheap afterwards."""
    if not OFFSET.measured:
        try:
            await _measure(client)
        except RedisError as exc:  # the caller's own Redis call will say Redis is down
            logger.warning("Redis clock unreadable: %s", type(exc).__name__)


async def _measure(client: Any) -> None:
    OFFSET.checked_at = time.monotonic()
    before = time.time()
    server = await client.time()
    OFFSET.learn(before, server, time.time())


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
