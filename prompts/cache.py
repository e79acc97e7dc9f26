"""In-process caches on a run's path (reads only; the database stays the truth).

A run needs the template's published version and the course's LMS data before its first
token; reading them from the database on every run costs several milliseconds. Entries
live ``TTL`` seconds. Publishing, unpublishing and archiving forget the template in the
process that did it at once; other processes see the change within ``TTL``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
TTL = 5.0
MAX_ENTRIES = 10_000


class TTLCache:
    """A small thread-safe map of key -> (expiry, value)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._items: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: Any, load: Callable[[], T]) -> T:
        now = time.monotonic()
        found = self._items.get(key)
        if found is not None and found[0] > now:
            return found[1]  # type: ignore[no-any-return, unused-ignore]
        value = load()
        with self._lock:
            if len(self._items) >= MAX_ENTRIES:
                self._items.clear()
            self._items[key] = (now + self.ttl, value)
        return value

    def get(self, key: Any) -> Any:
        """The live value for ``key``, or None (nothing is loaded or stored)."""
        found = self._items.get(key)
        return found[1] if found is not None and found[0] > time.monotonic() else None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if len(self._items) >= MAX_ENTRIES:
                self._items.clear()
            self._items[key] = (time.monotonic() + self.ttl, value)

    def forget(self, key: Any) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


published = TTLCache(TTL)
course_data = TTLCache(30.0)


def caches_clear() -> None:
    """Forget everything (tests)."""
    published.clear()
    course_data.clear()
