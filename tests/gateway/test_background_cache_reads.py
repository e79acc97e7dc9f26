"""The gateway's periodic cache reads keep one Redis connection instead of opening one each."""

from __future__ import annotations

import asyncio

import pytest
import redis.connection

from caipi import settings as caipi_settings
from caipi.core import redis as core_redis
from caipi.gateway.background import in_cache_thread
from deploy.selectors import routing_version


@pytest.fixture
def connections_made(settings, redis_url, monkeypatch) -> list[object]:
    """The Redis cache as in production; every new Redis connection is noted."""
    settings.CACHES = caipi_settings.redis_caches(redis_url)
    core_redis.reset_clients()
    made: list[object] = []
    make = redis.connection.ConnectionPool.make_connection

    def noted(pool: redis.connection.ConnectionPool) -> object:
        made.append(pool)
        return make(pool)

    monkeypatch.setattr(redis.connection.ConnectionPool, "make_connection", noted)
    yield made
    core_redis.reset_clients()


def test_routing_version_reads_reuse_one_connection(connections_made: list[object]) -> None:
    async def read_five_times() -> list[int]:
        return [await in_cache_thread(routing_version) for _ in range(5)]

    assert asyncio.run(read_five_times()) == [routing_version()] * 5
    # One connection for the cache thread (and one for the direct read above), not five.
    assert len(connections_made) <= 2


def test_a_read_in_a_fresh_context_per_call_would_connect_every_time(
    connections_made: list[object],
) -> None:
    # What the reads did before: asyncio.to_thread copies the loop's context per call.
    async def read_five_times() -> None:
        for _ in range(5):
            await asyncio.to_thread(routing_version)

    asyncio.run(read_five_times())
    assert len(connections_made) >= 5
