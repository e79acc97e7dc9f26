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
        assert page.inner_text(".who") == "Bob Student"  # the demo's seeded student
        page.get_by_role("link", name="Course assistant").click()
        if "/policy/" in page.url:  # first access: the usage policy must be accepted
            page.get_by_role("button", name=re.compile("accept", re.I)).click()
        page.wait_for_url(re.compile(r"/assistant/$"))
        page.fill("#prompt", "What is gradient descent?")
        page.click("#ask button[type=submit]")
        answer = page.locator(".bubble.assistant")
        page.wait_for_function(
            "document.querySelector('.bubble.assistant').textContent.split(' ').length > 5"
        )
        page.wait_for_selector(".bubble.assistant.answer p")  # Markdown, rendered by the server
        page.wait_for_selector("#quota .limit")
        assert "requests left this minute" in page.inner_text("#quota")
        assert answer.inner_text().strip() not in ("", "…")
        page.screenshot(path=str(tmp_path / "assistant.png"))


def test_a_lecturer_launched_from_the_test_lms_sees_course_usage(demo_url):
    with chromium_page() as page:
        page.goto(demo_url + "/lti/dev/")
        page.click("#open-lecturer")
        page.wait_for_url(re.compile(r"/courses/\d+/$"))
        assert page.get_by_role("link", name="LMS link and roster").is_visible()
        page.get_by_role("link", name="Course usage").click()
        page.wait_for_url(re.compile(r"/usage/"))  # the students' usage policy is not asked
        assert page.locator("svg").count() >= 1


def _launch(page, demo_url: str, who: str) -> None:
    page.goto(demo_url + "/lti/dev/")
    page.click(f"#open-{who}")
    page.wait_for_url(re.compile(r"/courses/\d+/$"))
    page.get_by_role("link", name="Course assistant").click()
    if "/policy/" in page.url:  # first access: the usage policy must be accepted
        page.get_by_role("button", name=re.compile("accept", re.I)).click()
    page.wait_for_url(re.compile(r"/assistant/$"))


def _ask(page, question: str, turn: int) -> None:
    page.fill("#prompt", question)
    page.click("#ask button[type=submit]")
    page.wait_for_function(
        f"""() => {{
          const answers = document.querySelectorAll('.bubble.assistant');
          return answers.length > {turn} && !document.querySelector('#stop:not([hidden])')
                 && answers[{turn}].textContent.trim() !== '…';
        }}""",
        timeout=120_000,
    )


def test_lecture_notes_uploaded_in_the_browser_answer_a_students_question(demo_url, tmp_path):
    """The issue's "done when": upload with a progress bar, then answers with citations from
    those notes, and a plain "not in the notes" for a question they cannot answer. The demo
    runs the simulator here, so the answer's words are made up; the citations are real."""
    from tests.rag.conftest import make_pdf

    slides = tmp_path / "week-04-clustering.pdf"
    slides.write_bytes(
        make_pdf(
            [
                ("Clustering", "The k-means algorithm was proposed by Stuart Lloyd in 1957."),
                ("Choosing k", "The elbow method plots the within-cluster variance against k."),
            ]
        )
    )
    with chromium_page() as page:
        _launch(page, demo_url, "lecturer")
        page.get_by_role("link", name="Manage lecture notes").click()
        page.set_input_files("#files", str(slides))
        page.click("#upload-button")
        page.wait_for_function(
            "document.getElementById('progress-label').textContent.startsWith('Done')",
            timeout=120_000,
        )
        assert page.locator("#progress").get_attribute("value") == "100"
        page.screenshot(path=str(tmp_path / "lecturer-upload.png"), full_page=True)
    with chromium_page() as page:
        _launch(page, demo_url, "student")
        _ask(page, "Who proposed the k-means algorithm, according to the week 4 slides?", 0)
        sources = page.locator(".sources li")
        assert sources.count() >= 1
        assert "week 04 clustering" in sources.first.inner_text()
        with page.expect_popup() as popup:
            sources.first.get_by_role("link").click()
        passage = popup.value
        passage.wait_for_load_state()
        assert "Stuart Lloyd" in passage.inner_text("#quoted")
        passage.close()
        _ask(page, "What is the capital of Australia?", 1)
        refused = page.locator(".bubble.assistant").nth(1)
        assert "do not contain an answer" in refused.inner_text()
        assert "no-answer" in (refused.get_attribute("class") or "")
        page.screenshot(path=str(tmp_path / "student-answers.png"), full_page=True)
        if os.environ.get("CAIPI_SCREENSHOT_DIR"):
            folder = os.environ["CAIPI_SCREENSHOT_DIR"]
            page.screenshot(path=os.path.join(folder, "assistant-notes.png"), full_page=True)
            page.set_viewport_size({"width": 800, "height": 1000})
            page.screenshot(path=os.path.join(folder, "assistant-notes-800.png"), full_page=True)


def test_the_demo_answers_from_its_sample_notes(demo_url):
    with chromium_page() as page:
        _launch(page, demo_url, "student")
        _ask(page, "who defined machine learning, according to the week 1 notes?", 0)
        quotes = page.locator(".sources li q").all_inner_texts()
        assert any("Tom Mitchell, 1997" in quote for quote in quotes)
