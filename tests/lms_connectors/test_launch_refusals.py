"""Every launch CAIPI promises to refuse, each with a real RS256-signed token.

Each refusal answers a 4xx page with a clear message and is logged without personal data
(no sub, name, e-mail or token in the log).
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from caipi.core.models import Membership
from tests.lms_connectors.conftest import form_fields
from tests.support.lti_platform import LTI, PEOPLE, new_key


@pytest.fixture
def refusal_log(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def _signed_launch(browser, lms, person="learner", **changes):
    """Log in for real (state, nonce), then post a token with ``changes`` to the claims."""
    auth = browser.login(person)
    body = lms.launch_claims(person=person, nonce=auth["nonce"])
    body.update(changes)
    for key in [k for k, v in body.items() if v is None]:
        del body[key]
    return browser.post_launch({"id_token": lms.sign(body), "state": auth["state"]})


def _assert_refused(response, log, *, status, code, text):
    page = response.content.decode()
    assert response.status_code == status
    assert text in page
    assert code in page
    logged = log.text
    assert f"code={code}" in logged
    for person in PEOPLE.values():
        assert person["sub"] not in logged
        assert person["email"] not in logged
        assert person["family_name"] not in logged
    assert "eyJ" not in logged  # no JWT in the log


def test_a_forged_signature_is_refused(browser, lms, refusal_log):
    auth = browser.login("learner")
    body = lms.launch_claims(person="learner", nonce=auth["nonce"])
    forged = lms.sign(body, key=new_key())  # same kid, another key
    response = browser.post_launch({"id_token": forged, "state": auth["state"]})

    _assert_refused(response, refusal_log, status=400, code="bad_signature", text="signature")
    assert not Membership.objects.exists()


def test_a_token_signed_with_an_unknown_key_id_is_refused(browser, lms, refusal_log):
    auth = browser.login("learner")
    body = lms.launch_claims(person="learner", nonce=auth["nonce"])
    response = browser.post_launch(
        {"id_token": lms.sign(body, key=new_key(), kid="nope"), "state": auth["state"]}
    )

    _assert_refused(response, refusal_log, status=400, code="bad_signature", text="key is unknown")


def test_a_token_from_an_unknown_issuer_is_refused(browser, lms, refusal_log):
    response = _signed_launch(browser, lms, iss="https://other-moodle.invalid")

    _assert_refused(
        response, refusal_log, status=400, code="unknown_platform", text="not registered"
    )


def test_a_login_from_an_unknown_issuer_is_refused(browser, refusal_log):
    response = browser.client.get(
        "/lti/login/",
        {
            "iss": "https://other-moodle.invalid",
            "login_hint": "x",
            "lti1p3_new_window": "1",
            "client_id": "c",
        },
    )

    _assert_refused(response, refusal_log, status=400, code="unknown_platform", text="login")


def test_a_token_for_an_unknown_deployment_is_refused(browser, lms, refusal_log):
    response = _signed_launch(browser, lms, **{LTI + "deployment_id": "999"})

    _assert_refused(response, refusal_log, status=400, code="unknown_deployment", text="deployment")


def test_a_token_for_another_audience_is_refused(browser, lms, refusal_log):
    response = _signed_launch(browser, lms, aud="another-tool", azp=None)

    _assert_refused(response, refusal_log, status=400, code="wrong_audience", text="audience")


def test_an_expired_token_is_refused(browser, lms, refusal_log):
    now = int(time.time())
    response = _signed_launch(browser, lms, iat=now - 3600, exp=now - 600)

    _assert_refused(response, refusal_log, status=400, code="expired", text="expired")


def test_a_token_a_little_ahead_of_our_clock_is_accepted(browser, lms):
    now = int(time.time())
    response = _signed_launch(browser, lms, iat=now + 20, exp=now + 80)

    assert response.status_code == 302


def test_a_replayed_post_is_refused_because_its_state_was_used(browser, lms, refusal_log):
    auth = browser.login("learner")
    page = httpx.get(lms.url("/mod/lti/auth.php"), params=auth).text
    _, fields = form_fields(page)
    assert browser.post_launch(fields).status_code == 302

    response = browser.post_launch(fields)

    # The first launch set the page language to the LMS's locale (German here).
    _assert_refused(
        response, refusal_log, status=400, code="reused_state", text="bereits verwendet"
    )


def test_a_replayed_nonce_is_refused_even_with_a_fresh_state(browser, lms, refusal_log):
    first = browser.login("learner")
    body = lms.launch_claims(person="learner", nonce=first["nonce"])
    assert (
        browser.post_launch({"id_token": lms.sign(body), "state": first["state"]}).status_code
        == 302
    )

    second = browser.login("learner")
    body = lms.launch_claims(person="learner", nonce=first["nonce"])
    response = browser.post_launch({"id_token": lms.sign(body), "state": second["state"]})

    # The first launch set the page language to the LMS's locale (German here).
    _assert_refused(
        response, refusal_log, status=400, code="replayed_nonce", text="bereits verwendet"
    )


def test_a_state_that_does_not_match_the_browser_is_refused(browser, lms, refusal_log):
    auth = browser.login("learner")
    body = lms.launch_claims(person="learner", nonce=auth["nonce"])
    response = browser.post_launch({"id_token": lms.sign(body), "state": "state-made-up"})

    _assert_refused(response, refusal_log, status=400, code="state_mismatch", text="state")


@pytest.mark.parametrize(
    ("missing", "text"),
    [
        ("sub", "Must have a user (sub)"),
        (LTI + "roles", "Missing Roles Claim"),
        (LTI + "resource_link", "Missing Resource Link Id"),
    ],
)
def test_a_token_missing_a_required_claim_is_refused(browser, lms, refusal_log, missing, text):
    response = _signed_launch(browser, lms, **{missing: None})

    _assert_refused(response, refusal_log, status=400, code="invalid_message", text=text)


def test_a_token_without_a_nonce_is_refused(browser, lms, refusal_log):
    response = _signed_launch(browser, lms, nonce=None)

    _assert_refused(response, refusal_log, status=400, code="invalid_token", text="nonce")


def test_a_wrong_message_type_is_refused(browser, lms, refusal_log):
    response = _signed_launch(browser, lms, **{LTI + "message_type": "LtiStartProctoring"})

    _assert_refused(response, refusal_log, status=400, code="invalid_message", text="Unrecognized")


def test_a_wrong_lti_version_is_refused(browser, lms, refusal_log):
    response = _signed_launch(browser, lms, **{LTI + "version": "1.1.0"})

    _assert_refused(response, refusal_log, status=400, code="invalid_message", text="version")


def test_a_launch_from_outside_a_course_is_refused(browser, lms, refusal_log):
    response = _signed_launch(browser, lms, **{LTI + "context": None})

    _assert_refused(response, refusal_log, status=400, code="no_context", text="inside a course")


def test_a_role_without_course_access_is_refused_with_403(browser, lms, refusal_log):
    guest = ["http://purl.imsglobal.org/vocab/lis/v2/system/person#Guest"]
    response = _signed_launch(browser, lms, **{LTI + "roles": guest})

    _assert_refused(response, refusal_log, status=403, code="no_course_role", text="role")
    assert not Membership.objects.exists()


def test_a_launch_without_an_id_token_is_refused(browser, refusal_log):
    auth = browser.login("learner")
    response = browser.post_launch({"state": auth["state"]})

    assert response.status_code == 400


def test_a_garbage_id_token_is_refused(browser, refusal_log):
    auth = browser.login("learner")
    response = browser.post_launch({"id_token": "not.a.jwt", "state": auth["state"]})

    _assert_refused(response, refusal_log, status=400, code="invalid_token", text="JWT")


def _login_get(browser, lms):
    return browser.client.get(
        "/lti/login/",
        {
            "iss": lms.issuer,
            "login_hint": "learner",
            "client_id": lms.client_id,
            "lti1p3_new_window": "1",
        },
    )


def test_a_student_of_a_pending_platform_reads_why_inside_the_lms_frame(
    browser, lms, registered, refusal_log
):
    registered.is_active = False
    registered.save()

    response = _login_get(browser, lms)

    _assert_refused(
        response, refusal_log, status=403, code="platform_pending", text="not activated"
    )
    assert response["Content-Security-Policy"] == "frame-ancestors *"


def test_a_retired_registration_cannot_launch_and_says_so(browser, lms, registered, refusal_log):
    from lms_connectors.services.platforms import platform_retire

    platform_retire(platform=registered)

    response = _login_get(browser, lms)

    _assert_refused(response, refusal_log, status=403, code="platform_retired", text="retired")


def test_a_launch_posted_after_the_platform_was_deactivated_is_explained(
    browser, lms, registered, refusal_log
):
    auth = browser.login("learner")
    page = httpx.get(lms.url("/mod/lti/auth.php"), params=auth).text
    action, fields = form_fields(page)
    registered.is_active = False
    registered.save()

    response = browser.post_launch(fields, action=action)

    _assert_refused(
        response, refusal_log, status=403, code="platform_pending", text="not activated"
    )
    assert response["Content-Security-Policy"] == "frame-ancestors *"
