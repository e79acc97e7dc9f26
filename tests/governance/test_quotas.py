"""Quotas: reserve the maximum, settle the real cost, refuse with the limit's name and reset."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from caipi.core.errors import RateLimited, Unavailable
from caipi.governance.models import CourseSettings, QuotaLimit
from caipi.governance.principal import aprincipal_for_user
from caipi.governance.services.quotas import (
    quota_release,
    quota_reserve,
    quota_settle,
    window_bounds,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def _limit(**fields) -> QuotaLimit:
    return await QuotaLimit.objects.acreate(**fields)


async def _student_principal(student, course):
    return await aprincipal_for_user(user_id=student.pk, course_id=course.pk)


async def test_a_call_within_the_limit_is_reserved_and_settled_to_its_real_cost(student, course):
    await _limit(scope="user", metric="tokens", window="day", size=1000)
    principal = await _student_principal(student, course)
    first = await quota_reserve(principal=principal, model="m", prompt_tokens=100, max_tokens=500)
    await quota_settle(first, prompt_tokens=100, completion_tokens=50)  # 150 used
    second = await quota_reserve(principal=principal, model="m", prompt_tokens=100, max_tokens=750)
    assert second.counters[0].amount == 850


async def test_the_call_that_would_overspend_is_refused_naming_the_limit(student, course):
    await _limit(scope="user", metric="tokens", window="day", size=1000)
    principal = await _student_principal(student, course)
    await quota_reserve(principal=principal, model="m", prompt_tokens=100, max_tokens=500)
    with pytest.raises(RateLimited) as caught:
        await quota_reserve(principal=principal, model="m", prompt_tokens=100, max_tokens=500)
    extra = caught.value.extra
    assert caught.value.status == 429
    assert extra["limit"] == "user tokens per day"
    assert (extra["size"], extra["used"]) == (1000, 600)
    midnight = datetime.fromtimestamp(window_bounds("day", datetime.now(UTC).timestamp())[1], UTC)
    assert extra["resets_at"] == midnight.isoformat(timespec="seconds")
    assert 0 < extra["retry_after"] <= 86401


async def test_a_refusal_takes_nothing_from_the_other_limits(student, course):
    await _limit(scope="user", metric="requests", window="minute", size=100)
    await _limit(scope="course", course=course, metric="tokens", window="day", size=100)
    principal = await _student_principal(student, course)
    with pytest.raises(RateLimited) as caught:
        await quota_reserve(principal=principal, model="m", prompt_tokens=10, max_tokens=200)
    assert "ML101" in caught.value.extra["limit"]
    ok = await quota_reserve(principal=principal, model="m", prompt_tokens=10, max_tokens=90)
    assert {counter.metric: counter.amount for counter in ok.counters} == {
        "requests": 1,
        "tokens": 100,
    }


async def test_a_released_reservation_gives_everything_back(student, course):
    await _limit(scope="course_member", course=course, metric="requests", window="minute", size=1)
    principal = await _student_principal(student, course)
    reservation = await quota_reserve(principal=principal, model="m", prompt_tokens=1, max_tokens=1)
    await quota_release(reservation)
    await quota_release(reservation)  # idempotent
    await quota_reserve(principal=principal, model="m", prompt_tokens=1, max_tokens=1)


async def test_course_staff_are_exempt_from_the_course_budget_by_default(lecturer, course):
    await _limit(scope="course", course=course, metric="tokens", window="day", size=10)
    principal = await aprincipal_for_user(user_id=lecturer.pk, course_id=course.pk)
    reservation = await quota_reserve(
        principal=principal, model="m", prompt_tokens=10, max_tokens=100
    )
    assert reservation.counters == ()


async def test_a_course_can_hold_its_staff_to_its_budget(lecturer, course):
    await CourseSettings.objects.acreate(course=course, exempt_roles=[])
    await _limit(scope="course", course=course, metric="tokens", window="day", size=10)
    principal = await aprincipal_for_user(user_id=lecturer.pk, course_id=course.pk)
    with pytest.raises(RateLimited):
        await quota_reserve(principal=principal, model="m", prompt_tokens=10, max_tokens=100)


async def test_model_limits_count_each_model_separately(student, course):
    await _limit(scope="model", model_name="big", metric="requests", window="day", size=1)
    principal = await _student_principal(student, course)
    await quota_reserve(principal=principal, model="big", prompt_tokens=1, max_tokens=1)
    await quota_reserve(principal=principal, model="small", prompt_tokens=1, max_tokens=1)
    with pytest.raises(RateLimited):
        await quota_reserve(principal=principal, model="big", prompt_tokens=1, max_tokens=1)


def test_months_and_days_are_aligned_to_utc():
    moment = datetime(2024, 2, 10, 15, 30, tzinfo=UTC).timestamp()
    start, end = window_bounds("month", moment)
    assert datetime.fromtimestamp(start, UTC) == datetime(2024, 2, 1, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2024, 3, 1, tzinfo=UTC)
    assert datetime.fromtimestamp(window_bounds("day", moment)[0], UTC).hour == 0


@pytest.mark.redis
async def test_on_redis_the_same_reserve_and_settle_hold(on_redis, student, course):
    await _limit(scope="user", metric="tokens", window="minute", size=1000)
    principal = await _student_principal(student, course)
    reservation = await quota_reserve(
        principal=principal, model="m", prompt_tokens=100, max_tokens=800
    )
    with pytest.raises(RateLimited):
        await quota_reserve(principal=principal, model="m", prompt_tokens=100, max_tokens=100)
    await quota_settle(reservation, prompt_tokens=100, completion_tokens=10)
    await quota_reserve(principal=principal, model="m", prompt_tokens=100, max_tokens=700)


@pytest.mark.redis
async def test_settling_never_charges_more_than_was_reserved(on_redis, student, course):
    # An engine that counts more than the call's bound (a reservation sized by a wrong
    # guess) must not push the counter past what the reservation fitted under.
    await _limit(scope="user", metric="tokens", window="day", size=500)
    principal = await _student_principal(student, course)
    reservation = await quota_reserve(
        principal=principal, model="m", prompt_tokens=450, max_tokens=1
    )
    await quota_settle(reservation, prompt_tokens=1807, completion_tokens=1)
    with pytest.raises(RateLimited) as caught:
        await quota_reserve(principal=principal, model="m", prompt_tokens=49, max_tokens=1)
    assert caught.value.extra["used"] == 451
    await quota_reserve(principal=principal, model="m", prompt_tokens=48, max_tokens=1)


async def test_with_redis_down_quota_checks_fail_closed(redis_down, student, course):
    await _limit(scope="user", metric="tokens", window="day", size=1000)
    principal = await _student_principal(student, course)
    with pytest.raises(Unavailable) as caught:
        await quota_reserve(principal=principal, model="m", prompt_tokens=1, max_tokens=1)
    assert caught.value.status == 503 and "Redis" in caught.value.message


async def test_with_redis_down_fail_open_lets_the_call_through_unchecked(
    redis_down, settings, student, course
):
    settings.GOVERNANCE_QUOTA_FAIL_OPEN = True
    await _limit(scope="user", metric="tokens", window="day", size=1000)
    principal = await _student_principal(student, course)
    reservation = await quota_reserve(principal=principal, model="m", prompt_tokens=1, max_tokens=1)
    assert reservation.backend == "unchecked"
    await quota_settle(reservation, prompt_tokens=1, completion_tokens=1)


async def test_two_hundred_concurrent_calls_never_overspend_in_memory(student, course):
    await _limit(scope="user", metric="tokens", window="day", size=1000)
    principal = await _student_principal(student, course)
    results = await asyncio.gather(
        *(
            quota_reserve(principal=principal, model="m", prompt_tokens=10, max_tokens=20)
            for _ in range(200)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(result, Exception) for result in results) == 1000 // 30
