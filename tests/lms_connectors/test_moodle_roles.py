"""Launch and names-and-roles give the same CAIPI role, with the exact claims Moodle 5.0 sends.

Moodle 5.0 (mod/lti/locallib.php ``lti_get_ims_role``) computes a launch's roles on the
activity (``mod/lti:manage``) and converts them to LIS v2 URIs, sorted; names-and-roles
(``memberships.php``) computes them on the course (``moodle/course:manageactivities``) and
sends the short names. So a non-editing teacher launches as Instructor and is listed as
Learner, and a site admin who is not enrolled launches as Instructor + Administrator and
is not listed at all.
"""

from __future__ import annotations

import pytest

from caipi.core.models import CourseRole, Membership
from lms_connectors.models import LtiContext
from lms_connectors.services import roster_sync
from tests.support.lti_platform import LTI

V2 = "http://purl.imsglobal.org/vocab/lis/v2/"
# What Moodle 5.0 puts in a launch's roles claim.
LAUNCH_ROLES = {
    "editing teacher": [V2 + "membership#Instructor"],
    "non-editing teacher": [V2 + "membership#Instructor"],
    "student": [V2 + "membership#Learner"],
    "site admin": [
        V2 + "institution/person#Administrator",
        V2 + "membership#Instructor",
        V2 + "system/person#Administrator",
    ],
}
# What Moodle 5.0's names-and-roles service lists for the same people (the admin: absent).
NRPS_ROLES = {
    "editing teacher": ["Instructor"],
    "non-editing teacher": ["Learner"],
    "student": ["Learner"],
}
SUBS = {"editing teacher": "3", "non-editing teacher": "4", "student": "5", "site admin": "2"}


def _moodle_launch(browser, lms, who: str):
    auth = browser.login("learner")
    body = lms.launch_claims(person="learner", nonce=auth["nonce"])
    body.update({"sub": SUBS[who], LTI + "roles": LAUNCH_ROLES[who]})
    response = browser.post_launch({"id_token": lms.sign(body), "state": auth["state"]})
    assert response.status_code == 302, response.content
    browser.client.logout()


@pytest.fixture
def moodle_roster(lms, monkeypatch):
    members = [
        {"status": "Active", "user_id": SUBS[who], "roles": roles}
        for who, roles in NRPS_ROLES.items()
    ]
    monkeypatch.setattr(lms, "members", lambda: members)
    return members


def _role(who: str) -> str | None:
    membership = Membership.objects.filter(user__lti_identities__sub=SUBS[who]).first()
    return membership.role if membership else None


def _sync(browser, lms):
    lms.tool_jwks = browser.client.get("/lti/jwks/").json()
    roster_sync(context=LtiContext.objects.get())


@pytest.mark.parametrize(
    ("who", "role"),
    [
        ("editing teacher", CourseRole.INSTRUCTOR),
        ("non-editing teacher", CourseRole.INSTRUCTOR),
        ("student", CourseRole.LEARNER),
        ("site admin", CourseRole.INSTRUCTOR),
    ],
)
def test_a_moodle_role_is_the_same_caipi_role_at_launch_and_after_a_roster_sync(
    browser, lms, moodle_roster, who, role
):
    _moodle_launch(browser, lms, who)
    assert _role(who) == role

    _sync(browser, lms)

    assert _role(who) == role


def test_a_non_editing_teacher_who_never_launched_gets_the_rosters_role_until_they_do(
    browser, lms, moodle_roster
):
    _moodle_launch(browser, lms, "editing teacher")
    _sync(browser, lms)
    assert _role("non-editing teacher") == CourseRole.LEARNER

    _moodle_launch(browser, lms, "non-editing teacher")
    _sync(browser, lms)

    assert _role("non-editing teacher") == CourseRole.INSTRUCTOR


def test_a_launched_member_who_left_the_course_is_removed_and_their_launch_role_forgotten(
    browser, lms, moodle_roster
):
    _moodle_launch(browser, lms, "non-editing teacher")
    moodle_roster[:] = [m for m in moodle_roster if m["user_id"] != SUBS["non-editing teacher"]]
    _sync(browser, lms)
    assert _role("non-editing teacher") is None

    moodle_roster.append(
        {"status": "Active", "user_id": SUBS["non-editing teacher"], "roles": ["Learner"]}
    )
    _sync(browser, lms)

    assert _role("non-editing teacher") == CourseRole.LEARNER  # re-enrolled as the roster says
