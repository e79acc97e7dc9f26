"""Demand for a model: waiting calls and the last call, across processes through Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from caipi.core.redis import close_async_redis
from deploy import demand


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest, settings) -> Iterator[str]:
    """Each test runs against real Redis and against the in-process fallback (no Redis)."""
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    else:
        settings.REDIS_URL = None
    demand.demand_forget_local()
    yield request.param
    demand.demand_forget_local()


def run(coro) -> object:
    async def once() -> object:
        try:
            return await coro
        finally:
            await close_async_redis()

    return asyncio.run(once())


def test_waiting_calls_are_counted_until_done(store: str) -> None:
    until = time.time() + 60
    run(demand.demand_note_waiting(model_id=7, ticket="a", until=until))
    run(demand.demand_note_waiting(model_id=7, ticket="b", until=until))
    run(demand.demand_note_waiting(model_id=8, ticket="c", until=until))
    assert demand.demand_waiting(model_id=7) == 2
    run(demand.demand_done(model_id=7, ticket="a"))
    assert demand.demand_waiting(model_id=7) == 1
    assert demand.demand_waiting(model_id=8) == 1
    assert demand.demand_waiting(model_id=9) == 0


def test_a_ticket_left_behind_expires_at_its_deadline(store: str) -> None:
    run(demand.demand_note_waiting(model_id=7, ticket="dead", until=time.time() - 1))
    run(demand.demand_note_waiting(model_id=7, ticket="alive", until=time.time() + 60))
    assert demand.demand_waiting(model_id=7) == 1


def test_last_call_is_noted_by_routing_and_by_waiting(store: str) -> None:
    assert demand.demand_last_call(model_id=7) is None
    before = int(time.time())
    run(demand.demand_touch(model_id=7))
    last = demand.demand_last_call(model_id=7)
    assert last is not None and before <= last <= time.time()
    run(demand.demand_note_waiting(model_id=8, ticket="x", until=time.time() + 5))
    assert demand.demand_last_call(model_id=8) is not None


def test_touch_writes_at_most_once_a_second(store: str, monkeypatch) -> None:
    now = [1_800_000_000.2]
    monkeypatch.setattr(demand.time, "time", lambda: now[0])
    run(demand.demand_touch(model_id=7))
    assert demand.demand_last_call(model_id=7) == 1_800_000_000
    now[0] = 1_800_000_000.9  # the same second: the hot path writes nothing
    _forget_last_call(store, 7)
    run(demand.demand_touch(model_id=7))
    assert demand.demand_last_call(model_id=7) is None
    now[0] = 1_800_000_001.0  # the next second: written again
    run(demand.demand_touch(model_id=7))
    assert demand.demand_last_call(model_id=7) == 1_800_000_001


def _forget_last_call(store: str, model_id: int) -> None:
    if store == "redis":
        from caipi.core.redis import sync_redis

        sync_redis().delete(f"deploy:demand:{model_id}:last")
    else:
        demand._local_last.pop(model_id, None)


def test_only_one_process_claims_a_wake(store: str) -> None:
    assert run(demand.demand_claim_wake(endpoint_id=3, seconds=5)) is True
    assert run(demand.demand_claim_wake(endpoint_id=3, seconds=5)) is False
    run(demand.demand_release_wake(endpoint_id=3))
    assert run(demand.demand_claim_wake(endpoint_id=3, seconds=5)) is True


def test_only_one_process_asks_for_the_start_of_a_model_at_zero_until_its_claim_expires(
    store: str,
) -> None:
    assert run(demand.demand_claim_start(model_id=4, seconds=0.3)) is True
    assert run(demand.demand_claim_start(model_id=4, seconds=0.3)) is False
    assert run(demand.demand_claim_start(model_id=5, seconds=0.3)) is True  # another model
    time.sleep(0.4)
    assert run(demand.demand_claim_start(model_id=4, seconds=0.3)) is True
