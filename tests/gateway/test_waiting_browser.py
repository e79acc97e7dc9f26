"""The course assistant in a real browser (Debian chromium via Playwright) while its model
starts: the student sees her place in the queue, then the answer. Served by uvicorn (the
page streams); the model's instance is a simulator started on its port mid-test."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from tests.gateway.test_waiting import starting_model
from tests.support.browser import chromium_page
from tests.support.simulator import free_port, running_simulator

pytestmark = pytest.mark.browser


def serve_static(route: Any) -> None:
    """Static files from the apps' folders (the test run has no collected ones)."""
    name = route.request.url.split("/static/", 1)[1].split("?", 1)[0]
    found = finders.find(name)
    if not found:
        route.fulfill(status=404, body="")
        return
    path = Path(str(found))
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    route.fulfill(status=200, body=path.read_bytes(), content_type=kind)


def test_a_student_sees_her_place_in_the_queue_while_the_model_starts_then_the_answer(
    live_gateway, student, course, settings
):
    settings.GATEWAY_QUEUE_PROBE_SECONDS = 0.05
    settings.GATEWAY_QUEUE_STATUS_SECONDS = 0.2
    port = free_port()  # the instance being started: it answers once the test starts it
    starting_model(f"http://127.0.0.1:{port}")
    client = Client()
    client.force_login(student)
    with chromium_page() as page:
        page.context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value,
              "url": live_gateway.url}]
        )  # fmt: skip
        page.route("**/static/**", serve_static)
        page.goto(f"{live_gateway.url}/courses/{course.pk}/assistant/")
        page.fill("#prompt", "What is overfitting?")
        page.click("#ask button[type=submit]")

        answer = page.locator("#conversation .bubble.assistant")
        page.wait_for_selector("#conversation .bubble.assistant.waiting", timeout=15_000)
        assert answer.inner_text().startswith(
            "The model is starting — you are number 1 in the queue, about "
        )

        with running_simulator(model="sim-model", port=port, ttft=0.01, tpot=0.001):
            page.wait_for_selector("#conversation .bubble.assistant:not(.waiting)", timeout=20_000)
            # The whole answer, before the engine stops: the page hides its stop button then.
            page.wait_for_selector("#stop", state="hidden", timeout=20_000)
            text = answer.inner_text()
        assert text.strip() and "The model is starting" not in text
        assert "error" not in (answer.get_attribute("class") or "")
