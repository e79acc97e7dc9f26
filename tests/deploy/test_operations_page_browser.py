"""The operations page in a real browser (Debian chromium via Playwright): its scaling
chart is drawn, and axe finds no WCAG 2.1 A/AA violation."""

from __future__ import annotations

import os

import pytest
from django.test import Client

from tests.deploy.test_operations_page import busy_deployment  # noqa: F401 (a fixture)
from tests.support.axe import axe_violations

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian chromium at /usr/bin/chromium"
    ),
]


def test_the_operations_page_draws_the_scaling_chart_and_passes_axe(
    live_server,
    admin,
    busy_deployment,  # noqa: F811
):
    from playwright.sync_api import sync_playwright

    client = Client()
    client.force_login(admin)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 1200})
        cookie = client.cookies["sessionid"].value
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
        page = context.new_page()
        page.goto(f"{live_server.url}/deploy/ops/")
        dots = page.locator("svg.scaling-chart circle.decision")
        assert dots.count() == 2
        boxes = dots.evaluate_all("els => els.map(e => e.getBoundingClientRect().y)")
        assert boxes[1] < boxes[0]  # two instances are drawn higher than one
        assert page.locator("tr.instance").count() == 1
        assert axe_violations(page) == []
        browser.close()
