"""The README's demo command brings up pages a person can click through."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from django.conf import settings

from deploy.launchers.local import free_port
from tests.support.browser import chromium_page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``manage.py demo`` on the simulator, in its own data folder; yields the URL it prints."""
    tmp_path = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {**os.environ, "CAIPI_DATA_DIR": str(tmp_path), "CAIPI_NO_BOOTSTRAP": "1"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--engine", "simulator", "--port", str(port)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    found: list[str] = []
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in process.stdout or ():
            lines.append(line)
            match = re.search(r"CAIPI is running: open (\S+)", line)
            if match:
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(120) and found, "demo did not start:\n" + "".join(lines[-40:])
        yield found[0].rstrip("/")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_demo_serves_a_home_page_with_its_operator_links(demo_url, tmp_path):
    with chromium_page() as page:
        page.goto(demo_url + "/")
        assert page.locator("h1").first.inner_text() == "CAIPI"
        page.get_by_role("link", name="Readiness").click()
        assert '"status": "ok"' in page.content()
        page.screenshot(path=str(tmp_path / "home.png"))


def test_the_demo_admin_pages_are_styled_and_reachable(demo_url):
    with chromium_page() as page:
        page.goto(demo_url + "/admin/")
        assert "Log in" in page.title()
        css = page.request.get(demo_url + "/static/admin/css/base.css")
        assert css.status == 200


def test_a_student_launched_from_the_test_lms_asks_the_assistant(demo_url, tmp_path):
    with chromium_page() as page:
        page.goto(demo_url + "/lti/dev/")
        page.click("#open-student")
        page.wait_for_url(re.compile(r"/courses/\d+/$"))
        page.get_by_role("link", name="Course assistant").click()
        if "/policy/" in page.url:  # first access: the usage policy must be accepted
            page.get_by_role("button", name=re.compile("accept", re.I)).click()
        page.wait_for_url(re.compile(r"/assistant/$"))
        page.fill("#prompt", "What is gradient descent?")
        page.click("button[type=submit]")
        answer = page.locator(".bubble.assistant")
        page.wait_for_function(
            "document.querySelector('.bubble.assistant').textContent.split(' ').length > 5"
        )
        page.wait_for_selector("#quota .limit")
        assert "left" in page.inner_text("#quota")
        assert answer.inner_text().strip() not in ("", "…")
        page.screenshot(path=str(tmp_path / "assistant.png"))


def test_a_lecturer_launched_from_the_test_lms_sees_course_usage(demo_url):
    with chromium_page() as page:
        page.goto(demo_url + "/lti/dev/")
        page.click("#open-lecturer")
        page.wait_for_url(re.compile(r"/courses/\d+/$"))
        assert page.get_by_role("link", name="LMS link and roster").is_visible()
        page.get_by_role("link", name="Course usage").click()
        if "/policy/" in page.url:
            page.get_by_role("button", name=re.compile("accept", re.I)).click()
        page.wait_for_url(re.compile(r"/usage/"))
        assert page.locator("svg").count() >= 1
