"""The built-in development platform: off means 404; on, real launches over real HTTP."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from caipi.core.models import CourseRole, Membership
from lms_connectors.devplatform import signing
from lms_connectors.models import LtiContext
from tests.lms_connectors.conftest import form_fields


def test_the_development_platform_answers_404_when_off(client, db, settings):
    settings.LTI_DEV_PLATFORM = False

    for path in ("/lti/dev/", "/lti/dev/start/student/", "/lti/dev/jwks/", "/lti/dev/auth/"):
        assert client.get(path).status_code == 404


@pytest.fixture
def dev(live_server, settings, tmp_path):
    settings.LTI_DEV_PLATFORM = True
    settings.SITE_URL = live_server.url
    settings.DATA_DIR = tmp_path
    with httpx.Client(base_url=live_server.url, timeout=20) as http:
        yield http


def _open_as(http: httpx.Client, persona: str, query: str = "") -> httpx.Response:
    """Press a button on the dev platform page and follow what a browser would."""
    login = http.get(f"/lti/dev/start/{persona}/{query}", follow_redirects=True)
    assert "lti1p3_new_window" in login.text  # pylti1p3's cookie check page
    checked = http.get(
        urlsplit(str(login.url)).path
        + "?"
        + urlsplit(str(login.url)).query
        + "&"
        + urlencode({"lti1p3_new_window": 1})
    )
    auth = http.get(checked.headers["Location"])
    action, fields = form_fields(auth.text)
    return http.post(action, data=fields)


def test_open_as_student_performs_a_real_signed_launch_into_the_demo_course(dev):
    landed = _open_as(dev, "student")

    assert landed.status_code == 302
    course_id = LtiContext.objects.get(context_id=signing.CONTEXT["id"]).course_id
    assert landed.headers["Location"] == f"/courses/{course_id}/"
    page = dev.get(landed.headers["Location"])
    assert page.status_code == 200 and "Introduction to Machine Learning" in page.text
    assert Membership.objects.get().role == CourseRole.LEARNER


def test_open_as_lecturer_places_an_activity_and_syncs_the_roster(dev):
    landed = _open_as(dev, "lecturer", "?message=deeplink")
    picker = dev.get(landed.headers["Location"])
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', picker.text).group(1)
    answer = dev.post(
        landed.headers["Location"],
        data={"csrfmiddlewaretoken": token, "target": "assistant"},
        headers={"Referer": str(picker.url)},
    )
    action, fields = form_fields(answer.text)
    placed = dev.post(action, data=fields, follow_redirects=True)
    assert "Course assistant" in unescape(placed.text)

    course_id = LtiContext.objects.get().course_id
    synced = dev.post(
        f"/lti/api/courses/{course_id}/roster-sync/",
        headers={"X-CSRFToken": dev.cookies["csrftoken"], "Referer": dev.base_url.__str__()},
    )
    assert synced.status_code == 200, synced.text
    assert Membership.objects.filter(course_id=course_id).count() == 3


@pytest.fixture
def seeded(db):
    """The demo's course and people (caipi.demo seeds them like this)."""
    from caipi.core.models import Course, User

    course = Course.objects.create(label="ML101", title="Introduction to Machine Learning")
    people = {}
    for username, first, role in (
        ("ada", "Ada", CourseRole.INSTRUCTOR), ("grace", "Grace", CourseRole.TEACHING_ASSISTANT),
        ("bob", "Bob", CourseRole.LEARNER), ("carol", "Carol", CourseRole.LEARNER),
    ):  # fmt: skip
        people[username] = User.objects.create(
            username=username, first_name=first, last_name="Demo", display_name=f"{first} Demo"
        )
        Membership.objects.create(user=people[username], course=course, role=role)
    return course, people


def test_the_test_lms_launches_as_the_seeded_people_not_as_new_users(dev, seeded):
    from caipi.core.models import User
    from lms_connectors.devplatform.services import devplatform_setup

    course, people = seeded
    devplatform_setup(course=course)
    users_before = User.objects.count()

    for persona, expected in (("student", "bob"), ("lecturer", "ada"), ("student2", "carol")):
        landed = _open_as(dev, persona)
        assert landed.headers["Location"] == f"/courses/{course.pk}/"
        page = dev.get(landed.headers["Location"]).text
        assert f"{people[expected].display_name}</span>" in page  # the top bar's "who"
        dev.cookies.clear()

    assert User.objects.count() == users_before
    assert not User.objects.filter(username__startswith="lti-").exists()
    assert Membership.objects.filter(course=course).count() == 4
    people["ada"].refresh_from_db()
    assert people["ada"].first_name == "Ada"  # the launch did not rename her


def test_the_roster_sync_of_the_test_lms_adds_no_second_copy_of_anyone(dev, seeded):
    from lms_connectors.devplatform.services import devplatform_setup

    course, _ = seeded
    devplatform_setup(course=course)
    _open_as(dev, "lecturer")
    synced = dev.post(
        f"/lti/api/courses/{course.pk}/roster-sync/",
        headers={"X-CSRFToken": dev.cookies["csrftoken"], "Referer": str(dev.base_url)},
    )
    assert synced.status_code == 200, synced.text
    assert Membership.objects.filter(course=course).count() == 4
