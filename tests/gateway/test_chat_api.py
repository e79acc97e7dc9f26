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
    assert b"data: [DONE]\n\n" in raw and b'"model":"tutor"' in raw


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


async def test_a_member_who_has_not_accepted_the_policy_is_refused(
    async_client, student, course, tutor, admin
):
    from asgiref.sync import sync_to_async

    from caipi.governance import services

    await sync_to_async(services.policy_publish)(text="Be kind.", actor=admin)
    await async_client.aforce_login(student)
    response = await async_client.post(
        "/api/chat/", chat(course.pk), content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "policy_not_accepted"


async def test_nothing_is_kept_of_a_chat_in_a_course_that_did_not_opt_in(
    async_client, student, course, tutor
):
    from caipi.governance.models import Message

    await async_client.aforce_login(student)
    response = await async_client.post(
        "/api/chat/", chat(course.pk), content_type="application/json"
    )
    b"".join([chunk async for chunk in response.streaming_content])
    assert "X-Conversation-Id" not in response
    assert await Message.objects.acount() == 0


async def test_a_course_that_opted_in_keeps_the_question_and_the_streamed_answer(
    async_client, student, course, tutor
):
    from caipi.gateway.transcript import delta_texts
    from caipi.governance.models import CourseSettings, Message

    await CourseSettings.objects.acreate(course=course, keep_conversations=True)
    await async_client.aforce_login(student)
    first = await async_client.post("/api/chat/", chat(course.pk), content_type="application/json")
    raw = b"".join([chunk async for chunk in first.streaming_content])
    kept = int(first["X-Conversation-Id"])
    again = await async_client.post(
        "/api/chat/", chat(course.pk, conversation_id=kept), content_type="application/json"
    )
    b"".join([chunk async for chunk in again.streaming_content])
    assert int(again["X-Conversation-Id"]) == kept
    texts = [(m.role, m.content) async for m in Message.objects.order_by("id")]
    assert [role for role, _ in texts] == ["user", "assistant", "user", "assistant"]
    assert texts[0][1] == "Hi"
    assert texts[1][1] == "".join(delta_texts(raw)) != ""


async def test_the_answer_also_arrives_as_sanitized_html(async_client, student, course, tutor):
    await async_client.aforce_login(student)
    response = await async_client.post(
        "/api/chat/", chat(course.pk), content_type="application/json"
    )
    raw = b"".join([chunk async for chunk in response.streaming_content])
    events = [
        orjson.loads(line[6:]) for line in raw.split(b"\n\n") if line.startswith(b'data: {"caipi"')
    ]
    assert events and events[-1]["caipi"]["final"] is True
    assert events[-1]["caipi"]["html"].startswith("<p>")
