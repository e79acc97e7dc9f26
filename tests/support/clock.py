"""A manual clock for code that schedules on an event loop's ``time()`` and ``call_at()``.

Time moves only when the test runs the timers, so timing assertions are exact and never
depend on how busy the machine is.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any


class ManualClock:
    """Timers run in time order by :meth:`run_until_idle`; ``time()`` jumps to each one."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self._timers: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> None:
        heapq.heappush(self._timers, (when, next(self._order), callback, args))

    def run_until_idle(self, max_timers: int = 1_000_000) -> None:
        """Run every timer, including those scheduled meanwhile, in time order."""
        for _ in range(max_timers):
            if not self._timers:
                return
            when, _, callback, args = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            callback(*args)
        raise AssertionError(f"timers still pending after {max_timers} ran")


def wait_until(condition: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds.

    For state another process reaches in its own time: the test asserts the state, never
    how long it took (the timeout only bounds a test that would otherwise hang).
    """
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {what or condition}")
        time.sleep(0.01)
