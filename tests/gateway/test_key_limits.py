"""The same person, the same limits, on every path: API-key calls and role limits.

Bob is a learner in ML101; the admin limits learners to 10 calls a day. Bob's key is held
to that limit on /v1 as in his course (before, a key call saw only Bob's site role and all
12 calls went through). Counters in real Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgiref.sync import sync_to_async

from caipi.core.models import CourseRole, Membership, User
from caipi.governance.apikeys import apikey_generate, apikey_hash
from caipi.governance.models import ApiKey, QuotaLimit

CHAT = {"model": "tutor", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}


@pytest.fixture
def bob(transactional_db, course) -> User:
    user = User.objects.create_user(username="bob-keys", password="pw")
    Membership.objects.create(user=user, course=course, role=CourseRole.LEARNER)
    return user


def _key_of(user: User) -> str:
    raw, prefix = apikey_generate()
    ApiKey.objects.create(user=user, prefix=prefix, key_hash=apikey_hash(raw), name="script")
    return raw


@pytest.fixture
async def bob_v1(
    _gateway_loop_cleanup, bob, redis_url, settings
) -> AsyncIterator[httpx.AsyncClient]:
    from caipi.asgi import application

    settings.REDIS_URL = redis_url
    raw = await sync_to_async(_key_of)(bob)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application),
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {raw}"},
        timeout=30,
    ) as http:
        yield http


def _learner_limit(size: int) -> None:
    QuotaLimit.objects.create(
        scope="role", role="learner", metric="requests", window="day", size=size
    )


async def test_a_learners_key_is_held_to_the_learner_limit(bob_v1, chat_model):
    await sync_to_async(_learner_limit)(10)

    answers = [await bob_v1.post("/v1/chat/completions", json=CHAT) for _ in range(12)]

    assert [a.status_code for a in answers] == [200] * 10 + [429] * 2
    refusal = answers[-1].json()["error"]
    assert "learner" in refusal["limit"] and refusal["size"] == 10
    assert answers[-1].headers["Retry-After"].isdigit()


async def test_a_key_of_someone_in_no_course_is_not_held_to_learner_limits(v1, chat_model):
    await sync_to_async(_learner_limit)(1)

    answers = [await v1.post("/v1/chat/completions", json=CHAT) for _ in range(3)]

    assert [a.status_code for a in answers] == [200] * 3  # Erin is an API user, no learner
