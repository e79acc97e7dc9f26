"""Quota leases on real Redis: a process reserves from its slices, refills them ahead of
need, hands them back, and never lets a counter go over its limit.

Bob's calls draw on a course budget of ``BUDGET`` tokens a day (a slice is 1/64 of it,
1,000 tokens: ten of his 100-token calls) and on a student limit of ten calls a minute,
which is too small to lease. ``ticking`` runs what the gateway's background task runs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import AsyncIterator

import pytest

from caipi.core.errors import RateLimited, Unavailable
from caipi.core.redis import reset_clients, sync_redis
from caipi.governance import limits
from caipi.governance.limits import LimitRule, LimitsSnapshot
from caipi.governance.principal import Principal
from caipi.governance.services import quota_leases, quotas

pytestmark = pytest.mark.redis

BUDGET = 64_000
SLICE = BUDGET // 64
COURSE_RULE, STUDENT_RULE = 9201, 9202
BOB = Principal(
    user_id=8,
    key_id=None,
    username="bob",
    site_role="member",
    allowed_models=None,
    course_id=4,
    course_role="learner",
)
COURSE_ONLY = LimitsSnapshot(
    rules={
        ("course", 4): (
            LimitRule(COURSE_RULE, "course", "tokens", "day", BUDGET, "course tokens per day"),
        ),
    },
)
WITH_STUDENT_LIMIT = LimitsSnapshot(
    rules={
        **COURSE_ONLY.rules,
        ("user", None): (
            LimitRule(STUDENT_RULE, "user", "requests", "minute", 10, "10 calls a minute"),
        ),
    },
)


def _use(monkeypatch, snapshot: LimitsSnapshot) -> None:
    async def aget() -> LimitsSnapshot:
        return snapshot

    monkeypatch.setattr(limits.LIMITS, "aget", aget)


@pytest.fixture
def course_budget(monkeypatch) -> None:
    _use(monkeypatch, COURSE_ONLY)


@pytest.fixture
async def ticking(on_redis, settings) -> AsyncIterator[None]:
    """Leases on, as in a web process whose background task ticks (here every 50 ms)."""
    settings.GOVERNANCE_QUOTA_LEASES = True

    async def tick_forever() -> None:
        while True:
            await quota_leases.quota_leases_tick()
            await asyncio.sleep(0.05)

    task = asyncio.get_running_loop().create_task(tick_forever())
    await asyncio.sleep(0)
    yield
    task.cancel()
    await quota_leases.quota_leases_return()


def _counter(rule: int = COURSE_RULE) -> int:
    keys = sync_redis().keys(f"caipi:q:{rule}:*")
    return sum(int(sync_redis().get(key) or 0) for key in keys)


def _leased_total() -> int:
    keys = sync_redis().keys(f"caipi:ql:{COURSE_RULE}:*")
    return sum(int(sync_redis().get(key) or 0) for key in keys)


async def _call(prompt: int = 50, most: int = 50, used: int | None = None) -> None:
    """One of Bob's calls: reserve ``prompt + most``, settle ``used`` (all of it if None)."""
    reservation = await quotas.quota_reserve(
        principal=BOB, model="m", prompt_tokens=prompt, max_tokens=most
    )
    completion = most if used is None else used - prompt
    await quotas.quota_settle(reservation, prompt_tokens=prompt, completion_tokens=completion)


async def _refilled() -> None:
    await asyncio.gather(*quota_leases._tasks)


async def _leased() -> tuple[int, int]:
    """(available, granted) of the course counter's lease, once its refills landed."""
    await _refilled()
    (lease,) = quota_leases.held().values()
    return lease


async def test_a_busy_large_counter_is_leased_and_then_reserved_without_touching_redis(
    ticking, course_budget
):
    await _call()  # the first call goes to Redis: one call is not yet a busy counter
    await _call()
    assert await _leased() == (SLICE, SLICE)
    assert _counter() == 200 + SLICE

    for _ in range(4):
        await _call(used=60)
    assert _counter() == 200 + SLICE  # four calls, and Redis has not moved
    assert await _leased() == (SLICE - 240, SLICE)


async def test_what_a_call_did_not_use_goes_back_into_the_slice_and_to_redis_on_return(
    ticking, course_budget
):
    await _call()
    await _call()
    await _refilled()
    for _ in range(3):
        await _call(used=70)  # reserved 100 each, 30 of each comes back into the slice
    await quota_leases.quota_leases_return()
    assert quota_leases.held() == {}
    assert _counter() == 200 + 3 * 70  # exactly what was charged
    assert _leased_total() == 0


async def test_a_slice_running_low_is_refilled_before_it_runs_out(ticking, course_budget):
    await _call()
    await _call()
    await _refilled()
    for _ in range(6):  # 600 of 1,000: below half a slice
        await _call()
    assert await _leased() == (2 * SLICE - 600, 2 * SLICE)
    assert _counter() == 200 + 2 * SLICE


async def test_a_small_limit_is_never_leased(ticking, monkeypatch):
    _use(monkeypatch, WITH_STUDENT_LIMIT)
    for _ in range(4):
        await _call()
    await _refilled()
    assert [key for key in quota_leases.held() if f":{STUDENT_RULE}:" in key] == []
    assert _counter(STUDENT_RULE) == 4  # every call counted on Redis at once
    for _ in range(6):
        await _call()
    with pytest.raises(RateLimited) as refused:
        await _call()
    assert refused.value.extra["limit"] == "10 calls a minute"
    assert sync_redis().keys("caipi:qr:*") == []  # nobody was asked to hand slices back


async def test_an_idle_slice_goes_back_to_redis(ticking, course_budget, monkeypatch):
    monkeypatch.setattr(quota_leases, "IDLE_SECONDS", 0.2)
    await _call()
    await _call()
    await _refilled()
    assert _counter() == 200 + SLICE
    await asyncio.sleep(0.4)
    assert quota_leases.held() == {}
    assert _counter() == 200
    assert _leased_total() == 0


async def test_a_slice_goes_back_to_its_own_window_when_the_window_ends(
    ticking, course_budget, monkeypatch
):
    offset = [0.0]
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])
    await _call()
    await _call()
    await _refilled()
    (today,) = quota_leases.held()

    offset[0] = 86_400.0  # tomorrow
    await asyncio.sleep(0.15)  # a tick or two
    assert today not in quota_leases.held()
    assert int(sync_redis().get(today)) == 200  # yesterday's counter: what was charged
    await _call()
    keys = {key.decode() for key in sync_redis().keys(f"caipi:q:{COURSE_RULE}:*")}
    (tomorrow,) = keys - {today}
    assert int(sync_redis().get(tomorrow)) == 100  # a fresh counter, not leased yet


async def test_a_counter_near_its_limit_is_not_asked_for_a_slice_on_every_call(
    ticking, course_budget, monkeypatch
):
    asked = []
    lease = quota_leases.LEASE

    class Counting:
        async def run(self, keys, args):  # type: ignore[no-untyped-def]
            asked.append(True)
            return await lease.run(keys, args)

    monkeypatch.setattr(quota_leases, "LEASE", Counting())
    await _call()
    await _call(prompt=BUDGET - 100 - 500 - 1, most=1)  # 500 left: less than a slice
    for _ in range(5):
        await _call(prompt=1, most=1)
        await _refilled()
    assert sum(asked) == 1  # the one slice Redis refused; then the counter cools down
    assert list(quota_leases.held().values()) in ([], [(0, 0)])
    assert _counter() == BUDGET - 500 + 5 * 2


async def test_leasing_off_reserves_every_call_on_redis(on_redis, settings, course_budget):
    settings.GOVERNANCE_QUOTA_LEASES = False
    for _ in range(3):
        await quota_leases.quota_leases_tick()
        await _call(used=70)
    await _refilled()
    assert quota_leases.held() == {}
    assert _counter() == 210


async def test_without_the_background_tick_no_slice_is_taken(on_redis, settings, course_budget):
    settings.GOVERNANCE_QUOTA_LEASES = True  # on, but nothing would hand slices back
    for _ in range(3):
        await _call()
    await _refilled()
    assert quota_leases.held() == {}
    assert _counter() == 300


async def test_redis_going_away_drops_the_leases_and_calls_fail_closed(
    ticking, course_budget, settings
):
    await _call()
    await _call()
    await _refilled()
    assert quota_leases.held()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens: as if Redis had died
    await asyncio.sleep(0.15)  # the tick fails, and forgets every slice
    assert quota_leases.held() == {}
    with pytest.raises(Unavailable):
        await _call()


async def test_a_counter_never_goes_over_its_limit_with_leases_and_many_concurrent_calls(
    ticking, course_budget
):
    async def one() -> bool:
        try:
            await _call(used=90)
        except RateLimited:
            return False
        return True

    granted = 0
    for _ in range(6):  # waves of 200 concurrent calls, leases refilling between them
        granted += sum(await asyncio.gather(*(one() for _ in range(200))))
        assert _counter() <= BUDGET
    while await one():  # then one at a time, until the first refusal
        granted += 1
    await quota_leases.quota_leases_return()
    assert _counter() == granted * 90 <= BUDGET
    assert BUDGET - granted * 90 < 100  # refused only once less than a call's bound was left


def _other_process(held, done) -> None:  # type: ignore[no-untyped-def]
    """Another web process: leases the course counter, then ticks until asked to hand back."""
    reset_clients()  # a forked child must not share its parent's sockets
    quota_leases.clear()

    async def main() -> None:
        await quota_leases.quota_leases_tick()
        await _call()
        await _call()
        await _refilled()
        held.set()
        deadline = time.monotonic() + 20
        while quota_leases.held() and time.monotonic() < deadline:
            await quota_leases.quota_leases_tick()
            await asyncio.sleep(0.05)
        done.value = not quota_leases.held()

    asyncio.run(main())


async def test_a_call_refused_only_for_a_slice_another_process_holds_gets_it_back(
    on_redis, settings, course_budget
):
    settings.GOVERNANCE_QUOTA_LEASES = True
    context = multiprocessing.get_context("fork")
    held, done = context.Event(), context.Value("b", False)
    other = context.Process(target=_other_process, args=(held, done))
    await asyncio.to_thread(other.start)  # forked from a thread that runs no event loop
    try:
        assert await asyncio.to_thread(held.wait, 20)
        assert _counter() == 200 + SLICE  # the other process holds a slice
        free = BUDGET - 200 - SLICE
        # This call fits only with the other process's slice back: it waits for it.
        await _call(prompt=free + 1, most=SLICE - 1)
        assert _counter() == BUDGET
    finally:
        await asyncio.to_thread(other.join, 20)
    assert done.value
    assert _leased_total() == 0
    with pytest.raises(RateLimited) as refused:
        await _call(prompt=1, most=1)
    assert refused.value.extra["used"] == BUDGET
