"""The usage pages render their charts in a real browser (Debian chromium via Playwright)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import Client

from caipi.governance.services.usage import usage_flush, usage_record

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian chromium at /usr/bin/chromium"
    ),
]


@pytest.fixture
def usage_week(student, lecturer, outsider, course, other_course):
    """A few calls from two courses and three models."""
    calls = [
        (student, course, "llama-8b", 400),
        (student, course, "qwen-32b", 1200),
        (lecturer, course, "llama-8b", 250),
        (outsider, other_course, "mistral-7b", 700),
    ]
    for user, where, model, tokens in calls:
        usage_record(
            user_id=user.pk,
            course_id=where.pk,
            model=model,
            prompt_tokens=tokens,
            completion_tokens=90,
        )
    usage_flush()


def test_the_admin_usage_page_draws_its_charts(live_server, admin, usage_week, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    client = Client()
    client.force_login(admin)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 1400})
        context.add_cookies(
            [
                {
                    "name": "sessionid",
                    "value": client.cookies["sessionid"].value,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        page.goto(f"{live_server.url}/usage/")
        assert page.locator("svg.chart").count() == 4
        models = page.locator("#by-model rect.bar")
        assert sorted(models.evaluate_all("els => els.map(e => e.dataset.label)")) == [
            "llama-8b", "mistral-7b", "qwen-32b",
        ]  # fmt: skip
        widths = models.evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
        assert all(width > 0 for width in widths) and max(widths) > 200
        assert page.locator("#by-course rect.bar").count() == 2
        page.screenshot(path=str(tmp_path / "usage.png"), full_page=True)
        if os.environ.get("CAIPI_SCREENSHOT_DIR"):
            page.screenshot(
                path=os.path.join(os.environ["CAIPI_SCREENSHOT_DIR"], "usage.png"), full_page=True
            )
        browser.close()
