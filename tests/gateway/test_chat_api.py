"""The session-authenticated course chat, POST /api/chat/, streaming through the relay."""

from __future__ import annotations

import orjson
import pytest

from tests.gateway.conftest import add_model

pytestmark = pytest.mark.usefixtures("_gateway_loop_cleanup")


@pytest.fixture
def tutor(transactional_db, shared_simulator):
    return add_model("tutor", shared_simulator.url)


def chat(course_id, **extra):
    body = {"model": "tutor", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
    return orjson.dumps({**body, "course_id": course_id, **extra})


async def test_a_course_member_gets_the_answer_streamed(async_client, student, course, tutor):
    await async_client.aforce_login(student)
    response = await async_client.post(
        "/api/chat/", chat(course.pk, conversation_id="c1"), content_type="application/json"
    )
    assert response.status_code == 200
    raw = b"".join([chunk async for chunk in response.streaming_content])
    assert raw.endswith(b"data: [DONE]\n\n") and b'"model":"tutor"' in raw


async def test_an_outsider_may_not_chat_in_the_course(async_client, outsider, course, tutor):
    await async_client.aforce_login(outsider)
    response = await async_client.post(
        "/api/chat/", chat(course.pk), content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"


async def test_anonymous_visitors_and_bad_bodies_are_refused(async_client, student, course, tutor):
    response = await async_client.post(
        "/api/chat/", chat(course.pk), content_type="application/json"
    )
    assert response.status_code == 401
    await async_client.aforce_login(student)
    no_course = await async_client.post("/api/chat/", chat("x"), content_type="application/json")
    assert no_course.status_code == 400
    unknown = await async_client.post(
        "/api/chat/", chat(course.pk, model="nope"), content_type="application/json"
    )
    assert unknown.status_code == 404
