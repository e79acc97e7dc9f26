"""Who may start a dynamic registration and which addresses CAIPI calls for it (issue 9.4).

An anonymous visitor must not make CAIPI fetch URLs or store platforms; Dana, the CAIPI
admin, generates one-time registration URLs on /lti/setup/; Alice (a lecturer) may not.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from lms_connectors.errors import LtiRefused
from lms_connectors.models import Platform, RegistrationInvite
from lms_connectors.services.registration_guard import address_check, registration_invite_create


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.LTI_REGISTRATION_ALLOW_PRIVATE = True
    settings.LTI_TRUSTED_ISSUERS = []
    settings.SITE_URL = "https://caipi.uni.invalid"


def _query(lms, **changes):
    return {
        "openid_configuration": lms.url("/mod/lti/openid-configuration.php"),
        "registration_token": lms.registration_token(),
        **changes,
    }


def _path(url: str) -> str:
    return url.removeprefix("https://caipi.uni.invalid")


def test_anonymous_registrations_of_an_untrusted_lms_create_no_platform(client, db, lms):
    for _ in range(20):
        response = client.get("/lti/register/", _query(lms))
        assert response.status_code == 403
        assert b"registration_not_allowed" in response.content

    assert not Platform.objects.exists()
    assert lms.registrations == []


def test_an_anonymous_registration_is_refused_before_any_request_leaves_caipi(client, db):
    # Port 9 (discard) on loopback: a fetch would answer "unreachable"; the refusal comes first.
    response = client.get(
        "/lti/register/",
        {"openid_configuration": "http://127.0.0.1:9/x", "registration_token": "t"},
    )

    assert response.status_code == 403 and b"registration_not_allowed" in response.content


def test_an_admins_one_time_url_registers_an_untrusted_lms_as_pending(client, db, lms, admin):
    url = registration_invite_create(created_by=admin)

    response = client.get(_path(url), _query(lms))

    assert response.status_code == 200, response.content
    platform = Platform.objects.get()
    assert platform.is_pending
    assert b"Pending activation" in response.content
    invite = RegistrationInvite.objects.get()
    assert invite.used_at is not None and invite.platform == platform


def test_a_one_time_url_works_once(client, db, lms, admin):
    url = registration_invite_create(created_by=admin)
    client.get(_path(url), _query(lms))

    again = client.get(_path(url), _query(lms))

    assert again.status_code == 403 and b"registration_not_invited" in again.content
    assert Platform.objects.count() == 1


def test_an_expired_one_time_url_is_refused(client, db, lms, admin):
    url = registration_invite_create(created_by=admin)
    RegistrationInvite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.get(_path(url), _query(lms))

    assert response.status_code == 403 and b"registration_not_invited" in response.content
    assert not Platform.objects.exists()


def test_an_invented_one_time_url_is_refused(client, db, lms):
    response = client.get("/lti/register/made-up-token/", _query(lms))

    assert response.status_code == 403 and b"registration_not_invited" in response.content


def test_a_failed_registration_leaves_the_one_time_url_usable(client, db, lms, admin):
    url = registration_invite_create(created_by=admin)
    failed = client.get(
        _path(url), _query(lms, registration_token=lms.registration_token(expired=True))
    )
    assert failed.status_code == 400

    response = client.get(_path(url), _query(lms))

    assert response.status_code == 200 and Platform.objects.count() == 1


def test_a_one_time_url_made_to_activate_registers_an_active_platform(client, db, lms, admin):
    url = registration_invite_create(created_by=admin, activate=True)

    client.get(_path(url), _query(lms))

    assert Platform.objects.get().is_active


def test_a_private_address_is_refused_unless_allowed(client, db, lms, admin, settings):
    settings.LTI_REGISTRATION_ALLOW_PRIVATE = False
    url = registration_invite_create(created_by=admin)

    response = client.get(_path(url), _query(lms))

    assert response.status_code == 400 and b"private_address" in response.content
    assert not Platform.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/config",
        "http://10.1.2.3/config",
        "http://192.168.0.10/config",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/config",
        "http://[::ffff:127.0.0.1]/config",
        "http://0.0.0.0/config",
        "http://localhost:8080/config",
        "file:///etc/passwd",
    ],
)
def test_special_addresses_and_schemes_are_refused(settings, url):
    settings.LTI_REGISTRATION_ALLOW_PRIVATE = False

    with pytest.raises(LtiRefused):
        address_check(url=url)


def test_a_public_address_passes_the_address_check(settings):
    settings.LTI_REGISTRATION_ALLOW_PRIVATE = False

    address_check(url="https://8.8.8.8/mod/lti/openid-configuration.php")


def test_a_registration_endpoint_on_another_origin_is_refused_and_nothing_is_posted(
    client, db, lms, admin, monkeypatch
):
    real = lms.openid_configuration
    monkeypatch.setattr(
        lms,
        "openid_configuration",
        lambda: {**real(), "registration_endpoint": "http://127.0.0.2:9/steal"},
    )
    url = registration_invite_create(created_by=admin)

    response = client.get(_path(url), _query(lms))

    assert response.status_code == 400 and b"endpoint_foreign" in response.content
    assert not Platform.objects.exists()


def test_what_a_foreign_host_answered_is_not_echoed(client, db, lms, admin):
    url = registration_invite_create(created_by=admin)

    response = client.get(_path(url), _query(lms, openid_configuration=lms.url("/no/such/page")))

    page = response.content.decode()
    assert response.status_code == 400 and "platform_unreachable" in page
    assert "404" not in page and "not found" not in page


def test_only_a_site_admin_generates_registration_urls(client, db, admin, lecturer):
    client.force_login(lecturer)
    assert client.post("/lti/setup/").status_code == 403
    assert not RegistrationInvite.objects.exists()

    client.force_login(admin)
    page = client.post("/lti/setup/", {"activate": "on"}).content.decode()

    url = re.search(r"https://caipi\.uni\.invalid/lti/register/[\w-]+/", page).group(0)
    invite = RegistrationInvite.objects.get()
    assert invite.activate and invite.created_by == admin
    assert url.rsplit("/", 2)[1] not in invite.token_hash  # only the hash is stored
