"""An admin's view of registrations: pending list, bulk activation, retirement, the banner,
framing that follows activation at once, and one course per LMS course across
re-registrations. Dana is the CAIPI admin; Alice a lecturer (no access to these pages)."""

from __future__ import annotations

import pytest

from caipi.core.models import Course, User
from lms_connectors.models import LtiContext, Platform
from lms_connectors.services import platform_register_manual, platform_retire


def _register(lms, *, client_id: str, active: bool = True) -> Platform:
    return platform_register_manual(
        issuer=lms.issuer,
        client_id=client_id,
        auth_login_url=lms.url("/mod/lti/auth.php"),
        auth_token_url=lms.url("/mod/lti/token.php"),
        key_set_url=lms.url("/mod/lti/certs.php"),
        deployment_ids=[lms.deployment_id],
        activate=active,
    )


@pytest.fixture
def pending(db, lms) -> Platform:
    return _register(lms, client_id=lms.client_id, active=False)


def test_the_pending_page_lists_waiting_registrations_to_admins_only(
    client, pending, admin, lecturer
):
    assert client.get("/lti/setup/pending/").status_code == 302  # sign in first
    client.force_login(lecturer)
    assert client.get("/lti/setup/pending/").status_code == 403
    assert client.post("/lti/setup/pending/", {"platform": [pending.pk]}).status_code == 403
    pending.refresh_from_db()
    assert pending.is_pending

    client.force_login(admin)
    page = client.get("/lti/setup/pending/").content.decode()

    assert pending.client_id in page and "Activate chosen" in page


def test_bulk_activation_lets_the_lms_frame_and_launch_at_once(
    client, browser, lms, pending, admin
):
    page = client.get("/")
    assert lms.issuer not in page["Content-Security-Policy"]  # cached without the LMS now
    second = _register(lms, client_id="another-client", active=False)

    client.force_login(admin)
    response = client.post(
        "/lti/setup/pending/", {"platform": [pending.pk, second.pk], "action": "activate"}
    )

    assert b"2 registrations activated" in response.content
    assert lms.issuer in client.get("/")["Content-Security-Policy"]  # no 60 s wait
    client.logout()
    assert browser.launch("learner").status_code == 302


def test_retiring_a_pending_registration_from_the_pending_page(client, pending, admin):
    client.force_login(admin)

    client.post("/lti/setup/pending/", {"platform": [pending.pk], "action": "retire"})

    pending.refresh_from_db()
    assert pending.status == "retired"


def test_the_admin_pages_carry_a_banner_while_a_registration_waits(
    client, pending, admin, lecturer
):
    client.force_login(admin)

    for path in ("/admin/", "/lti/setup/"):
        page = client.get(path).content.decode()
        assert "1 LMS registration waits for activation." in page, path
        assert 'href="/lti/setup/pending/"' in page
    client.force_login(lecturer)
    assert "waits for activation" not in client.get("/").content.decode()


def test_the_admin_change_list_activates_in_bulk(client, pending, admin, lms):
    client.get("/")  # the framing cache now holds the list without the LMS
    client.force_login(admin)

    client.post(
        "/admin/lms_connectors/platform/",
        {"action": "activate_selected", "_selected_action": [pending.pk]},
    )

    pending.refresh_from_db()
    assert pending.is_active
    assert lms.issuer in client.get("/")["Content-Security-Policy"]


def test_a_re_registration_keeps_one_course_per_lms_course(client, browser, lms, registered):
    browser.launch("learner")
    first = LtiContext.objects.get()
    browser.client.logout()
    newer = _register(lms, client_id="moodle-client-43")
    lms.client_id = "moodle-client-43"

    assert browser.launch("learner").status_code == 302

    assert Course.objects.count() == 1
    context = LtiContext.objects.get()
    assert context.pk == first.pk and context.platform == newer


def test_a_retired_registration_no_longer_launches_but_its_courses_live_on(
    client, browser, lms, registered
):
    browser.launch("instructor")
    browser.client.logout()
    newer = _register(lms, client_id="moodle-client-43")
    platform_retire(platform=registered)

    refused = browser.client.get(
        "/lti/login/",
        {"iss": lms.issuer, "login_hint": "learner", "client_id": registered.client_id},
    )
    assert refused.status_code == 403 and b"platform_retired" in refused.content

    lms.client_id = newer.client_id
    assert browser.launch("learner").status_code == 302
    assert Course.objects.count() == 1


def test_the_setup_and_pending_pages_speak_german_to_an_admin_who_chose_german(
    client, pending, admin
):
    User.objects.filter(pk=admin.pk).update(language="de")
    client.force_login(admin)

    setup = client.get("/lti/setup/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "CAIPI in Moodle installieren" in setup and "Registrierte Plattformen" in setup
    assert "Tool-URL" in setup and "<td>ausstehend</td>" in setup  # a label, a status
    assert "Install CAIPI in Moodle" not in setup and "Tool URL" not in setup
    waiting = client.get("/lti/setup/pending/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Ausstehende LMS-Registrierungen" in waiting and "Gewählte freischalten" in waiting
    done = client.post(
        "/lti/setup/pending/",
        {"platform": [pending.pk], "action": "activate"},
        HTTP_ACCEPT_LANGUAGE="en",
    ).content.decode()
    assert "1 Registrierung freigeschaltet" in done and "activated" not in done
