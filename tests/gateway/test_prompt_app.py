"""The template run as a raw ASGI route in front of Django (caipi/gateway/prompt_app.py):
the same answers and refusals as the Django view, with Django's CSRF and session checks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from caipi.gateway import prompt_app
from prompts.models import Run
from tests.gateway.test_prompt_run_api import _fresh_governance, published  # noqa: F401

pytestmark = pytest.mark.usefixtures("_gateway_loop_cleanup")
CSRF = "k" * 32


@pytest.fixture(autouse=True)
def _fresh_sessions():
    prompt_app.sessions_forget()
    yield
    prompt_app.sessions_forget()


@pytest.fixture
async def caipi() -> AsyncIterator[httpx.AsyncClient]:
    from caipi.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def session_of(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def run(http, template, *, session=None, csrf=CSRF, header=CSRF, **payload):
    cookies = {"csrftoken": csrf} if csrf else {}
    if session:
        cookies["sessionid"] = session
    http.cookies.clear()
    for name, value in cookies.items():
        http.cookies.set(name, value)
    body = orjson.dumps({"inputs": {"topic": "overfitting"}, **payload})
    headers = {"Content-Type": "application/json"}
    if header:
        headers["X-CSRFToken"] = header
    return await http.post(
        f"/api/prompts/templates/{template.pk}/run/", content=body, headers=headers
    )


async def test_a_student_gets_the_answer_streamed_through_the_fast_route(caipi, student, published):  # noqa: F811
    session = await sync_to_async(session_of)(student)
    response = await run(caipi, published, session=session)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert b"data: [DONE]" in response.content and b'"caipi"' in response.content
    assert await sync_to_async(Run.objects.filter(user=student).count)() == 1


async def test_a_post_without_the_csrf_token_is_refused(caipi, student, published):  # noqa: F811
    session = await sync_to_async(session_of)(student)
    missing = await run(caipi, published, session=session, header=None)
    wrong = await run(caipi, published, session=session, header="x" * 32)
    assert missing.status_code == wrong.status_code == 403
    assert await sync_to_async(Run.objects.count)() == 0


async def test_no_session_means_401(caipi, published):  # noqa: F811
    response = await run(caipi, published)
    assert response.status_code == 401


async def test_a_forged_session_cookie_is_not_a_user(caipi, published):  # noqa: F811
    response = await run(caipi, published, session="not-a-real-session-key")
    assert response.status_code == 401


async def test_the_fast_route_refuses_what_the_view_refuses(caipi, student, outsider, published):  # noqa: F811
    session = await sync_to_async(session_of)(student)
    changed = await run(caipi, published, session=session, model="other")
    assert changed.status_code == 403 and changed.json()["error"]["param"] == "model"
    too_long = await run(caipi, published, session=session, inputs={"topic": "x" * 101})
    assert too_long.status_code == 400
    foreign = await run(caipi, published, session=await sync_to_async(session_of)(outsider))
    assert foreign.status_code == 403


async def test_refusals_come_in_the_users_language(caipi, student, published):  # noqa: F811
    from caipi.core.models import User

    await sync_to_async(User.objects.filter(pk=student.pk).update)(locale="de-DE")
    session = await sync_to_async(session_of)(student)
    response = await run(caipi, published, session=session, inputs={"topic": "x" * 101})
    assert "Höchstens" in response.json()["error"]["problems"][0]["message"]


async def test_the_usage_policy_is_asked_for_first(caipi, student, published, admin):  # noqa: F811
    from caipi.governance import services

    await sync_to_async(services.policy_publish)(text="Be kind.", actor=admin)
    session = await sync_to_async(session_of)(student)
    response = await run(caipi, published, session=session)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "policy_not_accepted"
