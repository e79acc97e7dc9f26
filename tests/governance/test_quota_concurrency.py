"""A small budget under many simultaneous calls on real Redis is never overspent."""

from __future__ import annotations

import asyncio
import multiprocessing

import pytest

from caipi.core.errors import RateLimited
from caipi.core.redis import reset_clients, sync_redis
from caipi.governance import limits
from caipi.governance.limits import LimitRule, LimitsSnapshot
from caipi.governance.principal import Principal
from caipi.governance.services import quotas

pytestmark = pytest.mark.redis

BUDGET = 1000
COST = 30  # prompt 10 + max_tokens 20

PRINCIPAL = Principal(
    user_id=7,
    key_id=None,
    username="bob",
    site_role="member",
    allowed_models=None,
    course_id=3,
    course_role="learner",
)
# Rule ids no database row has: a late settle of another test's call (a stream that ends
# after its test) writes to its own rule's counters, never into these.
COURSE_RULE, USER_RULE = 9001, 9002
SNAPSHOT = LimitsSnapshot(
    rules={
        ("course", 3): (
            LimitRule(COURSE_RULE, "course", "tokens", "day", BUDGET, "course tokens per day"),
        ),
        ("user", None): (
            LimitRule(USER_RULE, "user", "requests", "day", 10_000, "user requests per day"),
        ),
    },
)


@pytest.fixture
def fixed_limits(monkeypatch) -> None:
    """The limits snapshot without a database, so that forked processes can use it too."""
    monkeypatch.setattr(limits.LIMITS, "get", lambda: SNAPSHOT)

    async def aget() -> LimitsSnapshot:
        return SNAPSHOT

    monkeypatch.setattr(limits.LIMITS, "aget", aget)


def _spent() -> int:
    keys = sync_redis().keys(f"caipi:q:{COURSE_RULE}:*")
    return sum(int(sync_redis().get(key)) for key in keys)


async def _one() -> bool:
    try:
        await quotas.quota_reserve(principal=PRINCIPAL, model="m", prompt_tokens=10, max_tokens=20)
    except RateLimited:
        return False
    return True


async def test_two_hundred_concurrent_reservations_never_exceed_the_budget(on_redis, fixed_limits):
    granted = await asyncio.gather(*(_one() for _ in range(200)))
    assert sum(granted) == BUDGET // COST
    assert _spent() == (BUDGET // COST) * COST <= BUDGET


async def test_settling_under_concurrency_frees_exactly_what_was_unused(on_redis, fixed_limits):
    async def call() -> bool:
        try:
            reservation = await quotas.quota_reserve(
                principal=PRINCIPAL, model="m", prompt_tokens=10, max_tokens=20
            )
        except RateLimited:
            return False
        await asyncio.sleep(0)
        await quotas.quota_settle(reservation, prompt_tokens=10, completion_tokens=5)
        return True

    granted = await asyncio.gather(*(call() for _ in range(300)))
    assert _spent() == sum(granted) * 15 <= BUDGET


def _worker(calls: int) -> int:
    reset_clients()  # a forked child must not share its parent's sockets

    async def one_after_another() -> int:
        return sum([await _one() for _ in range(calls)])

    return asyncio.run(one_after_another())


def test_several_processes_together_never_exceed_the_budget(on_redis, fixed_limits):
    with multiprocessing.get_context("fork").Pool(4) as pool:
        granted = sum(pool.map(_worker, [40] * 4))
    assert granted == BUDGET // COST
    assert _spent() <= BUDGET
