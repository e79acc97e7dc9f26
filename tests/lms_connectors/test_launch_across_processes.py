"""An LTI launch started on one CAIPI process is finished and continued on another.

Behind a load balancer the browser's next request can reach any web process (or machine):
the login state, the nonce and the launch data live in the shared cache (Redis), the
session in PostgreSQL. Here the lecturer's login reaches process A, the LMS's form post
with the signed token reaches process B, and the deep-linking picker is opened and
answered on A again. The test LMS signs real tokens (tests/support/lti_platform.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from lms_connectors.models import Platform
from tests.lms_connectors.conftest import form_fields
from tests.support import lti_platform
from tests.support.caipi_servers import CaipiProcess, server_env, two_caipis
from tests.support.lti_platform import LTI

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture
def a_and_b(
    transactional_db, registered: Platform, redis_url: str, settings
) -> Iterator[tuple[CaipiProcess, CaipiProcess]]:
    from django.db import connection

    database = urlsplit(os.environ["DATABASE_URL"])
    database = database._replace(path="/" + connection.settings_dict["NAME"])
    env = server_env(
        database_url=database.geturl(),
        redis_url=redis_url,
        extra={"SECRET_KEY": settings.SECRET_KEY},
    )
    with two_caipis(env) as servers:
        yield servers


def _login_on(
    server: CaipiProcess, browser: httpx.Client, lms: lti_platform.TestPlatform
) -> dict[str, str]:
    """The OIDC login initiation on ``server``; returns the auth request sent to the LMS."""
    params = {
        "iss": lms.issuer,
        "login_hint": "instructor",
        "target_link_uri": f"{server.url}/lti/launch/",
        "lti_message_hint": "hint-1",
        "client_id": lms.client_id,
        "lti_deployment_id": lms.deployment_id,
    }
    redirect = browser.get(
        f"{server.url}/lti/login/?" + urlencode({**params, "lti1p3_new_window": 1})
    )
    assert redirect.status_code == 302, redirect.text
    return {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["Location"]).query).items()}


def test_a_launch_begun_on_a_is_validated_on_b_and_its_picker_answered_on_a(a_and_b, lms):
    a, b = a_and_b
    lms.next_message = "LtiDeepLinkingRequest"
    with httpx.Client(timeout=30) as browser:
        auth = _login_on(a, browser, lms)
        _, fields = form_fields(httpx.get(lms.url("/mod/lti/auth.php"), params=auth).text)

        launched = browser.post(f"{b.url}/lti/launch/", data=fields)
        assert launched.status_code == 302, launched.text

        picker_url = a.url + launched.headers["Location"]
        picker = browser.get(picker_url)
        assert picker.status_code == 200 and "Course assistant" in picker.text
        token = unescape(re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', picker.text)[1])
        answer = browser.post(
            picker_url,
            data={"target": "assistant", "csrfmiddlewaretoken": token},
            headers={"Referer": picker_url},
        )

    action, returned = form_fields(answer.text)
    assert action == lms.url("/mod/lti/contentitem_return.php")
    claims = jwt.decode(returned["JWT"], options={"verify_signature": False})
    assert claims[LTI + "message_type"] == "LtiDeepLinkingResponse"
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["custom"] == {"caipi_target": "assistant"}


def test_a_launch_state_used_on_a_cannot_be_replayed_on_b(a_and_b, lms):
    a, b = a_and_b
    with httpx.Client(timeout=30) as browser:
        auth = _login_on(a, browser, lms)
        _, fields = form_fields(httpx.get(lms.url("/mod/lti/auth.php"), params=auth).text)
        assert browser.post(f"{a.url}/lti/launch/", data=fields).status_code == 302

        replayed = browser.post(f"{b.url}/lti/launch/", data=fields)

    assert replayed.status_code in (400, 403)
    # Refused as a used state; in German, the language the first launch set from the LMS.
    assert "reused_state" in replayed.text and "bereits verwendet" in replayed.text
