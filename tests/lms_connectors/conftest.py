"""Fixtures for the LTI tests: a running test LMS, its registration, and a browser driver.

The browser driver plays the user's browser: it talks to CAIPI through Django's test
client and to the test LMS over real HTTP, following the same redirects and forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.test import Client

from lms_connectors.models import Platform
from lms_connectors.services import platform_register_manual
from tests.support.lti_platform import TestPlatform, running_platform


@pytest.fixture
def lms() -> Iterator[TestPlatform]:
    with running_platform() as platform:
        yield platform


@pytest.fixture
def registered(db, lms: TestPlatform) -> Platform:
    """The test LMS registered by hand, as an admin would in the admin pages."""
    return platform_register_manual(
        issuer=lms.issuer,
        client_id=lms.client_id,
        auth_login_url=lms.url("/mod/lti/auth.php"),
        auth_token_url=lms.url("/mod/lti/token.php"),
        key_set_url=lms.url("/mod/lti/certs.php"),
        deployment_ids=[lms.deployment_id],
    )


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


def form_fields(page: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the first form in ``page``."""
    action = unescape(re.search(r'<form[^>]*action="([^"]*)"', page).group(1))
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return action, {k: unescape(v) for k, v in fields.items()}


@dataclass
class Browser:
    """A user's browser between CAIPI (test client) and the test LMS (HTTP)."""

    client: Client
    lms: TestPlatform

    def login(self, person: str) -> dict[str, str]:
        """Start a launch as ``person``; returns the LMS auth request CAIPI redirected to."""
        params = {
            "iss": self.lms.issuer,
            "login_hint": person,
            "target_link_uri": "http://127.0.0.1:8000/lti/launch/",
            "lti_message_hint": "hint-1",
            "client_id": self.lms.client_id,
            "lti_deployment_id": self.lms.deployment_id,
        }
        check = self.client.post("/lti/login/", params)
        assert check.status_code == 200 and b"lti1p3_new_window" in check.content
        # What the cookie check page's script does when cookies work: reload with the flag.
        redirect = self.client.get("/lti/login/?" + urlencode({**params, "lti1p3_new_window": 1}))
        assert redirect.status_code == 302, redirect.content
        location = redirect["Location"]
        assert location.startswith(self.lms.url("/mod/lti/auth.php"))
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def launch(self, person: str):
        """The whole launch: login, LMS auth over HTTP, the auto-posted form to CAIPI."""
        auth = self.login(person)
        page = httpx.get(self.lms.url("/mod/lti/auth.php"), params=auth).text
        action, fields = form_fields(page)
        return self.post_launch(fields, action=action)

    def post_launch(self, fields: dict[str, str], action: str = "/lti/launch/"):
        return self.client.post(urlsplit(action).path, fields)


@pytest.fixture
def browser(client: Client, lms: TestPlatform, registered: Platform) -> Browser:
    return Browser(client=client, lms=lms)
