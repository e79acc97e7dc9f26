"""Dynamic registration against the test LMS over HTTP, and its refusals.

Alice is the CAIPI admin who generates registration URLs; the test LMS runs on loopback,
so the tests allow private addresses (as the lab and the demo do) except where the refusal
of private addresses is what they try.
"""

from __future__ import annotations

import logging

import pytest

from lms_connectors.models import Deployment, Platform, RegistrationMethod
from tests.lms_connectors.conftest import Browser
from tests.support.lti_platform import TOOL_CONFIGURATION, new_key


@pytest.fixture(autouse=True)
def loopback_lab(settings):
    settings.LTI_REGISTRATION_ALLOW_PRIVATE = True
    settings.LTI_TRUSTED_ISSUERS = []
    settings.SITE_URL = "https://caipi.uni.invalid"


@pytest.fixture
def trusted(settings):
    settings.LTI_TRUSTED_ISSUERS = ["127.0.0.1"]


def _register(client, lms, *, path="/lti/register/", **params):
    query = {
        "openid_configuration": lms.url("/mod/lti/openid-configuration.php"),
        "registration_token": lms.registration_token(),
        **params,
    }
    return client.get(path, query)


def test_dynamic_registration_stores_the_platform_and_closes_the_dialog(client, db, lms, trusted):
    response = _register(client, lms)

    assert response.status_code == 200
    assert b"org.imsglobal.lti.close" in response.content
    platform = Platform.objects.get(issuer=lms.issuer)
    assert platform.client_id == lms.client_id
    assert platform.method == RegistrationMethod.DYNAMIC and platform.is_active
    assert platform.product_family == "moodle"
    assert platform.key_set_url == lms.url("/mod/lti/certs.php")
    assert Deployment.objects.get(platform=platform).deployment_id == lms.deployment_id


def test_the_posted_registration_names_caipis_urls_scopes_and_messages(client, db, lms, trusted):
    _register(client, lms)

    (sent,) = lms.registrations
    assert sent["initiate_login_uri"] == "https://caipi.uni.invalid/lti/login/"
    assert sent["redirect_uris"] == ["https://caipi.uni.invalid/lti/launch/"]
    assert sent["jwks_uri"] == "https://caipi.uni.invalid/lti/jwks/"
    assert sent["token_endpoint_auth_method"] == "private_key_jwt"
    assert sent["client_name"].startswith("CAIPI (caipi.uni.invalid, 20")
    assert sent["logo_uri"] == "https://caipi.uni.invalid/static/lms_connectors/caipi.svg"
    assert "contextmembership.readonly" in sent["scope"] and "lti-ags/scope/score" in sent["scope"]
    tool = sent[TOOL_CONFIGURATION]
    assert tool["domain"] == "caipi.uni.invalid"
    assert {m["type"] for m in tool["messages"]} == {
        "LtiResourceLinkRequest",
        "LtiDeepLinkingRequest",
    }
    assert "caipi_course_start" in tool["custom_parameters"]


def test_a_dynamically_registered_platform_can_launch(client, db, lms, trusted):
    _register(client, lms)

    response = Browser(client=client, lms=lms).launch("instructor")

    assert response.status_code == 302


def test_the_result_page_shows_in_moodles_dialog_and_names_the_chooser_setting(
    client, db, lms, trusted
):
    response = _register(client, lms)

    assert response["Content-Security-Policy"] == "frame-ancestors *"
    assert "X-Frame-Options" not in response
    page = response.content.decode()
    assert "Show in activity chooser and as a preconfigured tool" in page
    assert Platform.objects.get().name in page  # the tool's name in Moodle


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (lambda lms: lms.registration_token(expired=True), "registration_token_expired"),
        (lambda lms: lms.registration_token(key=new_key()), "registration_token_foreign"),
    ],
    ids=["expired", "for-another-platform"],
)
def test_a_bad_registration_token_is_refused_and_nothing_is_stored(
    client, db, lms, trusted, caplog, token, code
):
    caplog.set_level(logging.INFO)
    response = _register(client, lms, registration_token=token(lms))

    assert response.status_code == 400
    assert code.encode() in response.content
    assert f"code={code}" in caplog.text
    assert not Platform.objects.exists()
    assert lms.registrations == []


def test_a_configuration_whose_issuer_is_another_origin_is_refused(
    client, db, lms, trusted, monkeypatch
):
    real = lms.openid_configuration
    monkeypatch.setattr(
        lms, "openid_configuration", lambda: {**real(), "issuer": "https://evil.invalid"}
    )

    response = _register(client, lms)

    assert response.status_code == 400 and b"issuer_mismatch" in response.content
    assert not Platform.objects.exists()


def test_a_configuration_url_that_does_not_answer_is_refused(client, db, trusted, settings):
    settings.LTI_TRUSTED_ISSUERS = ["127.0.0.1"]
    response = client.get(
        "/lti/register/",
        {"openid_configuration": "http://127.0.0.1:9/config", "registration_token": "x"},
    )

    assert response.status_code == 400 and b"platform_unreachable" in response.content


def test_the_registration_url_without_parameters_explains_itself(client, db):
    response = client.get("/lti/register/")

    assert response.status_code == 400
    assert b"registration URL" in response.content


def test_the_setup_page_shows_the_values_to_paste_to_admins_only(client, admin, student):
    assert client.get("/lti/setup/").status_code == 302  # to the sign-in page
    client.force_login(student)
    assert client.get("/lti/setup/").status_code == 403
    client.force_login(admin)
    page = client.get("/lti/setup/").content.decode()
    assert "/lti/login/" in page and "/lti/jwks/" in page and "/lti/register/" in page


def test_the_registration_dialog_speaks_the_lms_admins_browser_language(client, db, lms, trusted):
    query = {
        "openid_configuration": lms.url("/mod/lti/openid-configuration.php"),
        "registration_token": lms.registration_token(),
    }
    response = client.get("/lti/register/", query, HTTP_ACCEPT_LANGUAGE="de")

    page = response.content.decode()
    assert "CAIPI ist registriert" in page and "Schließen" in page
    assert "CAIPI is registered" not in page and "Launches from this LMS are accepted" not in page
