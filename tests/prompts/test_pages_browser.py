"""The prompts pages as people use them, in Debian's chromium (Playwright), served by
uvicorn like production (so answers really stream), checked with axe-core.

Screenshots go to a temporary folder, or to ``CAIPI_SCREENSHOT_DIR`` (``manage.py
screenshots`` sets it to docs/screenshots) at desktop width and at 800 px (Moodle's iframe).
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from django.test import Client

from caipi.core.models import User
from caipi.gateway.catalog import catalog, reset_catalog
from caipi.governance.limits import LIMITS
from caipi.governance.models import QuotaLimit
from caipi.governance.principal import principal_caches_clear
from caipi.governance.services import quota_memory
from caipi.governance.services.usage import usage_flush
from prompts import services
from tests.gateway.conftest import shared_simulator  # noqa: F401 (fixture)
from tests.prompts.conftest import content
from tests.support.axe import axe_violations
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser
WIDTHS = {"desktop": 1280, "800": 800}


@pytest.fixture
def live(transactional_db, shared_simulator) -> Iterator[str]:  # noqa: F811
    """CAIPI (caipi.asgi plus static files) under uvicorn on a free port, model 'tutor'."""

    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from caipi.asgi import application

    if not shutil.which("chromium"):
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    reset_catalog()
    principal_caches_clear()
    LIMITS.clear()
    quota_memory.clear()
    from deploy import services as deploy_services
    from deploy.models import Model

    deploy_services.endpoint_add(model=Model.objects.get(name="tutor"), url=shared_simulator.url)
    catalog().reload()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        ASGIStaticFilesHandler(application), host="127.0.0.1", port=port, lifespan="on",
        log_level="warning",
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-caipi", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    usage_flush()
    reset_catalog()
    # Requests ran in threads that are gone; their database connections close when
    # collected (else PostgreSQL still counts them when the test database is dropped).
    gc.collect()


class Browser:
    """One chromium for a test; ``page(user, ...)`` opens a signed-in page."""

    def __init__(self, playwright: Any, url: str) -> None:
        self.url = url
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    def page(self, user: User, *, width: int = 1280, locale: str = "en-GB") -> Any:
        client = Client()
        client.force_login(user)
        context = self.browser.new_context(
            viewport={"width": width, "height": 900}, locale=locale, accept_downloads=True
        )
        context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": self.url}]
        )
        page = context.new_page()
        page.set_default_timeout(45_000)  # a busy 2-core machine is slow to answer
        return page


@pytest.fixture
def browser(live: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # (fixtures, assertions) are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        opened = Browser(playwright, live)
        yield opened
        opened.browser.close()


def shoot(page: Any, name: str, tmp_path: Path, *, prefix: str = "prompts") -> None:
    """Screenshot the page at both widths (into CAIPI_SCREENSHOT_DIR when set)."""
    folder = Path(os.environ.get("CAIPI_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(folder / f"{prefix}-{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


def assert_accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], violations


def test_a_lecturer_creates_previews_tests_publishes_and_rolls_back(
    browser, lecturer, student, course, tmp_path
):
    page = browser.page(lecturer)
    page.goto(f"{browser.url}/courses/{course.pk}/prompts/new/")
    page.fill("#f-name", "Explain a concept")
    page.fill("#f-description", "Explains a concept of the course at your level.")
    page.fill(
        "#f-system", "You are the tutor of {{ course.title }}. Address {{ user.given_name }}."
    )
    page.click("#add-input")
    page.locator(".input-row [data-key=name]").fill("topic")
    page.locator(".input-row [data-key=label]").fill("Topic")
    page.fill("#f-user", "Explain {{ input.topik }}.")
    problem = page.locator("#problems-user_prompt li", has_text="input.topik")
    problem.wait_for()
    assert "input.topic" in problem.inner_text()  # the misspelling is shown with a suggestion
    page.fill("#f-user", "Explain {{ input.topic }} with one example.")
    page.locator("#preview-inputs input").fill("overfitting")
    try:
        page.wait_for_function(
            "document.getElementById('preview-user').textContent.includes('overfitting')"
        )
    except Exception as exc:  # say what the page showed instead
        from deploy.models import Model
        from prompts import registry

        shown = page.inner_text("#problems-other") + " | " + page.inner_text("#preview-status")
        shown += f" | models: {registry.model_names()} {list(Model.objects.values('name', 'kind'))}"
        shown += f" | catalogue: {registry._catalogue}"
        raise AssertionError(f"no preview of the sample input; the page shows:\n{shown}") from exc
    assert "Address Bob." in page.inner_text("#preview-system")  # a real student of the course
    page.click("#add-test")
    page.locator(".test-row [data-key=name]").fill("overfitting")
    page.locator(".test-row .test-inputs input").fill("overfitting")
    page.locator(".test-row button", has_text="Add a check").click()
    page.locator(".check-row [data-key=kind]").select_option("length")
    page.locator(".check-row [data-key=min]").fill("1")
    page.fill("#f-note", "First version")
    page.click("#save")
    page.wait_for_url(re.compile(r"/prompts/\d+/edit/$"))
    assert_accessible(page)

    page.click("#run-tests")
    page.wait_for_selector(".verdict-passed")
    assert "1 of 1 passed" in page.inner_text("#tests-summary")

    page.get_by_role("button", name="Publish version 1").click()
    page.wait_for_selector("#versions .state-published")
    page.fill("#f-user", "Explain {{ input.topic }} in two sentences.")
    page.fill("#f-note", "Shorter")
    page.click("#save")
    page.wait_for_selector("text=Publish version 2")
    page.get_by_role("button", name="Publish version 2").click()
    page.wait_for_selector("text=Roll back to version 1")
    page.get_by_role("button", name="Roll back to version 1").click()
    page.wait_for_function("document.getElementById('publish-status').textContent.includes('1')")
    template = course.prompt_templates.get()
    assert template.published_version.number == 1

    page.get_by_label("Compare version 1").check()
    page.get_by_label("Compare version 2").check()
    page.click("#compare")
    page.wait_for_selector("table.diff td[data-change=changed]")
    page.fill("#preview-inputs input", "overfitting")
    page.click("#try")
    page.wait_for_function(
        "(a => a.getAttribute('aria-busy') === 'false' && a.textContent.length > 5)"
        "(document.getElementById('try-answer'))"
    )
    assert_accessible(page)
    shoot(page, "editor", tmp_path)


@pytest.fixture
def published(lecturer, course):
    template = services.template_create(
        actor=lecturer, course=course, name="Explain a concept", content=content(),
        description="Explains a concept of the course at your level.",
    )  # fmt: skip
    return services.template_publish(
        actor=lecturer, template=template, version=template.versions.get()
    )


@pytest.mark.parametrize(
    ("locale", "run_label", "left_word"), [("en", "Run", "left"), ("de", "Ausführen", "übrig")]
)
def test_a_student_runs_a_template_and_sees_the_streamed_answer_and_quota(
    browser, published, course, student, locale, run_label, left_word, tmp_path
):
    QuotaLimit.objects.create(
        scope="role", role="learner", metric="tokens", window="day", size=20000
    )
    LIMITS.clear()
    User.objects.filter(pk=student.pk).update(locale=locale)
    page = browser.page(student, locale="en-GB")  # the LMS's language wins over the browser's
    page.goto(f"{browser.url}/prompts/{published.pk}/")
    assert page.locator("html").get_attribute("lang") == locale
    page.wait_for_selector("#quota .limit")
    page.get_by_label(re.compile("Topic|topic")).fill("overfitting <script>alert(1)</script>")
    page.get_by_role("button", name=run_label, exact=True).click()
    page.wait_for_selector(".bubble.answer:not(.streaming)")
    answer = page.locator(".bubble.answer")
    assert len(answer.inner_text()) > 5 and answer.locator("script").count() == 0
    page.wait_for_function(
        "(word) => document.getElementById('quota').textContent.includes(word)", arg=left_word
    )
    assert_accessible(page)
    shoot(page, f"run-{locale}", tmp_path)


def test_a_student_switches_the_language_and_it_stays_switched(browser, published, student):
    User.objects.filter(pk=student.pk).update(locale="de-DE")
    page = browser.page(student, locale="en-GB")
    page.goto(f"{browser.url}/prompts/{published.pk}/")
    assert page.get_by_role("button", name="Ausführen", exact=True).is_visible()
    page.select_option("#language-choice", "en")
    page.get_by_role("button", name="Wechseln").click()
    page.wait_for_function("document.documentElement.lang === 'en'")
    assert page.url.endswith(f"/prompts/{published.pk}/")  # back where the student was
    assert page.get_by_role("button", name="Run", exact=True).is_visible()
    page.goto(f"{browser.url}/courses/{published.course_id}/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert User.objects.get(pk=student.pk).language == "en"


def test_a_student_runs_a_template_on_the_lecture_notes_and_sees_numbered_sources(
    browser, lecturer, course, student, tmp_path
):
    from tests.rag.conftest import NOTES_DIR, ingest

    for path in sorted(NOTES_DIR.glob("*.md")):
        ingest(course, path.name, path.read_bytes())
    template = services.template_create(
        actor=lecturer, course=course, name="Ask the notes",
        content=content(
            use_notes=True, notes_count=3,
            user_prompt="Answer {{ input.topic }} from the notes, citing [n]:\n{{ passages }}",
        ),
    )  # fmt: skip
    services.template_publish(actor=lecturer, template=template, version=template.versions.get())
    page = browser.page(student)
    page.goto(f"{browser.url}/prompts/{template.pk}/")
    page.get_by_label(re.compile("Topic|topic")).fill("who defined machine learning in week 1?")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector(".bubble.answer:not(.streaming)")
    sources = page.locator(".sources")
    assert "Sources from the lecture notes" in sources.inner_text()
    items = sources.locator("li")
    assert items.count() >= 1
    assert any("Week 1" in items.nth(i).inner_text() for i in range(items.count()))
    link = items.first.locator("a")
    assert re.search(r"/passages?/\d+", link.get_attribute("href") or "")
    assert_accessible(page)
    shoot(page, "run-citations", tmp_path)


def test_course_staff_list_their_templates_with_usage(
    browser, published, lecturer, course, tmp_path
):
    page = browser.page(lecturer)
    page.goto(f"{browser.url}/courses/{course.pk}/prompts/")
    assert page.get_by_role("link", name="Explain a concept").first.is_visible()
    assert_accessible(page)
    shoot(page, "list", tmp_path)


def test_a_batch_over_a_csv_finishes_with_a_downloadable_result(
    browser, published, lecturer, tmp_path
):
    rows = tmp_path / "rows.csv"
    rows.write_text("topic,level\noverfitting,beginner\nregularisation,advanced\n")
    page = browser.page(lecturer)
    page.goto(f"{browser.url}/prompts/{published.pk}/batches/")
    page.set_input_files("#csv-file", str(rows))
    page.get_by_role("button", name="Start", exact=True).click()
    link = page.get_by_role("link", name="Download the results (CSV)")
    link.wait_for()
    assert "2 of 2 done, 0 failed" in page.inner_text("#batch-list")
    with page.expect_download() as download:
        link.click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("row,label,topic,level,status,answer") and len(lines) >= 3
    assert_accessible(page)
    shoot(page, "batches", tmp_path)
