"""In-flight counts shared through Redis: each process sees the others' counts, whatever
its own clock says (liveness is judged by the Redis server's clock)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis

from caipi.gateway.inflight import InFlight

pytestmark = pytest.mark.redis


@pytest.fixture
async def shared(redis_url: str) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


REAL_TIME = time.time


def _clock_off_by(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """This machine's wall clock, ``seconds`` off the real time."""
    monkeypatch.setattr(time, "time", lambda: REAL_TIME() + seconds)


async def test_processes_whose_clocks_disagree_still_see_each_others_counts(shared, monkeypatch):
    slow_machine, fast_machine = InFlight(), InFlight()
    slow_machine.acquire(1)
    slow_machine.acquire(1)
    fast_machine.acquire(2)

    _clock_off_by(monkeypatch, -30)
    await slow_machine.sync(shared)
    _clock_off_by(monkeypatch, +30)
    await fast_machine.sync(shared)
    _clock_off_by(monkeypatch, -30)
    await slow_machine.sync(shared)

    assert fast_machine.remote == {1: 2}
    assert slow_machine.remote == {2: 1}


async def test_a_process_sees_its_own_calls_once_and_a_released_call_leaves_the_count(shared):
    first, second = InFlight(), InFlight()
    first.acquire(7)
    await first.sync(shared)
    await second.sync(shared)
    assert (first.total(7), second.total(7)) == (1, 1)

    first.release(7)
    await first.sync(shared)
    await second.sync(shared)

    assert (first.total(7), second.total(7)) == (0, 0)
