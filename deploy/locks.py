"""The reconciler's lock: one reconciler per deployment at a time, across Celery workers.

With Redis (production): ``SET key token NX PX ttl``, released only by its holder (a Lua
compare-and-delete), and expiring by itself if the holder dies mid-tick. Without Redis
(the embedded demo, one process): an in-process lock, which is all one process needs.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

from caipi.core.redis import redis_configured, sync_redis

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_local_locks: dict[str, threading.Lock] = {}
_local_guard = threading.Lock()


@contextlib.contextmanager
def held(name: str, *, ttl: float) -> Iterator[bool]:
    """Try to take the lock ``name`` without waiting; yield whether this caller holds it.

    The caller must finish within ``ttl`` seconds, after which another may take it.
    """
    if redis_configured():
        client, token = sync_redis(), uuid.uuid4().hex
        key = f"caipi:lock:{name}"
        got = bool(client.set(key, token, nx=True, px=int(ttl * 1000)))
        try:
            yield got
        finally:
            if got:
                client.eval(_RELEASE, 1, key, token)
        return
    with _local_guard:
        lock = _local_locks.setdefault(name, threading.Lock())
    got = lock.acquire(blocking=False)
    try:
        yield got
    finally:
        if got:
            lock.release()
