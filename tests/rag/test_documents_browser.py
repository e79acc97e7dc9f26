"""The lecturer's lecture-notes page in a real browser: upload with a progress bar, the list,
per-file errors, delete (Debian chromium via Playwright)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import Client

from rag import tasks
from tests.rag.conftest import NOTES_DIR, make_pdf
from tests.support.browser import chromium_page

pytestmark = pytest.mark.browser


def _session(live_server, user) -> list[dict]:
    """The session cookie of ``user`` (made before the browser starts: Playwright's sync API
    runs an event loop, inside which Django refuses database calls)."""
    client = Client()
    client.force_login(user)
    return [
        {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    ]


def _shoot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name), full_page=True)
    if os.environ.get("CAIPI_SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["CAIPI_SCREENSHOT_DIR"], name), full_page=True)


def test_a_lecturer_uploads_notes_and_watches_them_being_indexed(
    live_server, lecturer, course, tmp_path
):
    files = [NOTES_DIR / name for name in sorted(os.listdir(NOTES_DIR))]
    slides = tmp_path / "week-04-clustering.pdf"
    slides.write_bytes(
        make_pdf(
            [
                ("Clustering", "k-means was proposed by Stuart Lloyd in 1957."),
                (None, "Elbow method."),
            ]
        )
    )
    broken = tmp_path / "scan.pdf"
    broken.write_bytes(b"%PDF-1.4 damaged")
    cookies = _session(live_server, lecturer)
    with chromium_page() as page:
        page.set_viewport_size({"width": 1100, "height": 900})
        page.context.add_cookies(cookies)
        page.goto(f"{live_server.url}/courses/{course.pk}/documents/")
        page.wait_for_selector("#documents tbody td.muted")  # "No documents yet"
        page.evaluate(
            """() => { window.seen = []; setInterval(() => {
                 const bar = document.getElementById('progress');
                 const label = document.getElementById('progress-label');
                 window.seen.push([bar.value, label.textContent]);
               }, 20); }"""
        )
        page.set_input_files("#files", [str(p) for p in (*files, slides, broken)])
        page.click("#upload-button")
        page.wait_for_function(
            "document.getElementById('progress-label').textContent.startsWith('Done')",
            timeout=180_000,
        )
        seen = page.evaluate("window.seen")
        assert any(0 < value < 100 for value, _ in seen), seen[-5:]
        assert any(label.startswith("Indexing") for _, label in seen)
        assert page.locator("#progress").get_attribute("value") == "100"
        assert "4 of 5 files" in page.inner_text("#progress-label")
        failed = page.locator("#job-files li.failed")
        assert failed.count() == 1 and "scan.pdf" in failed.inner_text()
        page.wait_for_function(
            "document.querySelectorAll('#documents tbody tr[data-document-id]').length === 4"
        )
        assert "week-04-clustering.pdf" in page.inner_text("#documents")
        _shoot(page, tmp_path, "notes-desktop.png")
        page.set_viewport_size({"width": 800, "height": 900})
        _shoot(page, tmp_path, "notes-800.png")
        page.on("dialog", lambda dialog: dialog.accept())
        row = page.locator("#documents tbody tr", has_text="week-04-clustering.pdf")
        row.get_by_role("button").click()
        page.wait_for_function(
            "document.querySelectorAll('#documents tbody tr[data-document-id]').length === 3"
        )
        assert "week-04-clustering.pdf" not in page.inner_text("#documents")
    tasks.ingestion_idle(timeout=60)


def test_a_student_is_refused_the_lecture_notes_page(live_server, student, course):
    cookies = _session(live_server, student)
    with chromium_page() as page:
        page.context.add_cookies(cookies)
        response = page.goto(f"{live_server.url}/courses/{course.pk}/documents/")
        assert response.status == 403
