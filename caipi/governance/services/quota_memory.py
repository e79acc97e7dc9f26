"""In-process quota counters for the embedded demo (no ``REDIS_URL``): same semantics as the Lua.

A ``threading.Lock`` (not an ``asyncio.Lock``) guards the counters: the critical section
never awaits, takes microseconds, and must also hold for sync callers in other threads.
Counters are per process, so this is only correct when one process serves all calls.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

_lock = threading.Lock()
_counters: dict[str, list[float]] = {}  # key -> [used, expires at (epoch seconds)]


def _used(key: str, now: float) -> int:
    entry = _counters.get(key)
    if entry is None or entry[1] <= now:
        _counters.pop(key, None)
        return 0
    return int(entry[0])


def reserve(counters: Sequence[Any]) -> list[int]:
    """Take ``amount`` from every counter or from none; ``[index, used, ...]`` of refusals."""
    now = time.time()
    with _lock:
        failed: list[int] = []
        for index, counter in enumerate(counters, start=1):
            used = _used(counter.key, now)
            if used + counter.amount > counter.size:
                failed += [index, used]
        if failed:
            return failed
        for counter in counters:
            used = _used(counter.key, now)
            _counters[counter.key] = [used + counter.amount, counter.resets_at + 120]
        return []


def adjust(keys: Sequence[str], deltas: Sequence[int]) -> None:
    """Add ``deltas`` to live counters, never below zero; expired counters are left alone."""
    now = time.time()
    with _lock:
        for key, delta in zip(keys, deltas, strict=True):
            if key in _counters and _counters[key][1] > now:
                _counters[key][0] = max(0, _counters[key][0] + delta)


def used(keys: Sequence[str]) -> list[int]:
    """Current values of counters (0 when absent or expired)."""
    now = time.time()
    with _lock:
        return [_used(key, now) for key in keys]


def clear() -> None:
    """Forget every counter (tests)."""
    with _lock:
        _counters.clear()
