"""The frame pages as people meet them, in Debian's chromium: the error pages, the page for a
session that ended, signing out, and the course assistant with a rendered answer; each
checked with axe-core and screenshotted at desktop width and 800 px (``manage.py screenshots``)."""

from __future__ import annotations

import re

import pytest

from caipi.governance.limits import LIMITS
from caipi.governance.models import QuotaLimit
from tests.prompts.test_pages_browser import (  # noqa: F401 (fixtures)
    assert_accessible,
    browser,
    live,
    shared_simulator,
    shoot,
)

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def tutor_model(transactional_db) -> None:
    """The chat model the live server serves (before ``live`` adds its endpoint)."""
    from deploy.models import Model

    Model.objects.get_or_create(name="tutor", defaults={"served_name": "sim-model"})


def test_the_error_and_session_pages_are_styled_translated_and_accessible(
    browser,  # noqa: F811
    student,
    course,
    tmp_path,
):
    page = browser.page(student, locale="de-DE")
    page.goto(f"{browser.url}/no/such/page/")
    assert page.locator("h1").inner_text() == "Seite nicht gefunden"
    assert page.locator(".topbar").is_visible()
    assert_accessible(page)
    shoot(page, "not-found-de", tmp_path, prefix="core")

    page.goto(f"{browser.url}/signout/")
    assert_accessible(page)
    shoot(page, "signout-de", tmp_path, prefix="core")
    page.locator("#signout-confirm").click()
    page.wait_for_url(re.compile(r"/signed-out/$"))
    assert "abgemeldet" in page.locator("h1").inner_text()

    page.goto(f"{browser.url}/courses/{course.pk}/")  # no session any more
    page.wait_for_url(re.compile(r"/signin/\?next="))
    assert page.locator("h1").inner_text() == "Ihre Sitzung ist abgelaufen"
    assert_accessible(page)
    shoot(page, "session-ended-de", tmp_path, prefix="core")


def test_the_course_assistant_shows_a_rendered_answer_and_what_is_left(
    browser,  # noqa: F811
    student,
    course,
    tmp_path,
):
    QuotaLimit.objects.create(
        scope="role", role="learner", metric="requests", window="minute", size=10
    )
    LIMITS.clear()
    page = browser.page(student)
    page.goto(f"{browser.url}/courses/{course.pk}/assistant/")
    page.select_option("#model", "tutor")
    page.fill("#prompt", "What is overfitting?")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.wait_for_selector(".bubble.assistant.answer p")  # Markdown, rendered by the server
    page.wait_for_function(
        "document.getElementById('quota').textContent.includes('9 of 10 requests left')"
    )
    meter = page.locator("#quota meter").first
    assert meter.get_attribute("value") == "9"  # the bar shows what is left
    assert_accessible(page)
    shoot(page, "assistant", tmp_path, prefix="gateway")
