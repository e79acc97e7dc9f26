"""Schemathesis against /api/schema/: generated requests to every operation, never a 500.

A bounded budget (a few examples per operation, no shrinking) keeps it to seconds, so it
runs in the normal suite (marker ``fuzz``). The calls go through the whole Django stack (WSGI),
signed in as Dana (site admin, so the calls reach the views' input handling rather than
stopping at a refusal), with a valid CSRF token, on the test's database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

CSRF_SECRET = "f" * 32  # Django accepts the unmasked secret as a token

schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    """Django's handler closes the database connection around each request; the test
    client keeps it (the test's transaction lives on it), and so must these calls."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def dana_headers(admin) -> dict[str, str]:
    client = Client()
    client.force_login(admin)
    session = client.cookies["sessionid"].value
    return {
        "Cookie": f"sessionid={session}; csrftoken={CSRF_SECRET}",
        "X-CSRFToken": CSRF_SECRET,
    }


@schema.parametrize()
@settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_makes_the_api_answer_500(case, dana_headers):
    case.call_and_validate(headers=dana_headers, checks=[not_a_server_error])
