"""Breaker openings shared through Redis: what one process trips, the others skip until
the cooldown ends; without Redis each process keeps to its own breakers.

Two ``Catalog`` objects stand for two web processes (each has its own token); the
cross-process test with real servers is tests/gateway/test_two_processes.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from caipi.gateway.breakers import breakers_sync
from caipi.gateway.catalog import Catalog
from deploy.router import CircuitState
from tests.gateway.conftest import add_model
from tests.support.simulator import free_port

pytestmark = pytest.mark.redis


@pytest.fixture
async def shared(redis_url: str) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def processes(db, settings) -> tuple[Catalog, Catalog, int]:
    """Processes A and B with one model on one endpoint; a breaker cools down in 0.3 s."""
    settings.GATEWAY_CIRCUIT_FAILURES = 3
    settings.GATEWAY_CIRCUIT_COOLDOWN = 0.3
    add_model("tutor", "http://127.0.0.1:9")
    a, b = Catalog(), Catalog()
    a.reload()
    b.reload()
    return a, b, a.endpoints()[0].id


def _circuit(process: Catalog) -> CircuitState:
    (candidate,) = process.candidates(process.models["tutor"])
    return candidate.circuit


def _trip(process: Catalog, endpoint_id: int) -> None:
    for _ in range(3):
        process.breaker(endpoint_id).record_failure()


async def test_an_endpoint_tripped_by_a_is_skipped_by_b_until_the_cooldown_ends(shared, processes):
    a, b, endpoint_id = processes
    _trip(a, endpoint_id)

    await breakers_sync(shared, a)
    await breakers_sync(shared, b)
    assert (_circuit(a), _circuit(b)) == (CircuitState.OPEN, CircuitState.OPEN)

    await asyncio.sleep(0.4)  # the opening's TTL (the cooldown) runs on the Redis server
    await breakers_sync(shared, b)
    assert _circuit(b) == CircuitState.CLOSED
    assert _circuit(a) == CircuitState.HALF_OPEN  # A, the opener, probes it


async def test_a_process_does_not_skip_an_endpoint_because_of_its_own_published_opening(
    shared, processes
):
    a, _, endpoint_id = processes
    _trip(a, endpoint_id)
    await breakers_sync(shared, a)
    a.breaker(endpoint_id).record_success()  # its probe got through: closed here

    await breakers_sync(shared, a)

    assert _circuit(a) == CircuitState.CLOSED


async def test_without_redis_a_process_keeps_its_own_breakers_and_publishes_later(
    shared, processes
):
    a, b, endpoint_id = processes
    b.shared_open = frozenset({endpoint_id})
    unreachable = aredis.Redis(port=free_port(), retry=Retry(NoBackoff(), 0))
    _trip(a, endpoint_id)

    with pytest.raises(aredis.ConnectionError):
        await breakers_sync(unreachable, a)
    with pytest.raises(aredis.ConnectionError):
        await breakers_sync(unreachable, b)
    assert _circuit(b) == CircuitState.CLOSED  # no stale opening from before the outage

    await breakers_sync(shared, a)  # Redis is back: A's opening is published then
    await breakers_sync(shared, b)
    assert _circuit(b) == CircuitState.OPEN
    await unreachable.aclose()
