"""Names and roles sync, AGS score posting and their APIs, against the test LMS over HTTP."""

from __future__ import annotations

import pytest

from caipi.core.models import CourseRole, Membership, User
from lms_connectors import tasks
from lms_connectors.models import LtiContext, LtiResourceLink


@pytest.fixture
def lecturer_launched(browser, lms):
    """Alice launched as instructor; the LMS trusts CAIPI's published keys."""
    browser.launch("instructor")
    lms.tool_jwks = browser.client.get("/lti/jwks/").json()
    return User.objects.get(lti_identities__sub="moodle-user-3")


def test_the_roster_sync_creates_memberships_with_mapped_roles(browser, lms, lecturer_launched):
    course_id = LtiContext.objects.get().course_id
    response = browser.client.post(f"/lti/api/courses/{course_id}/roster-sync/")

    assert response.status_code == 200
    assert response.json() == {"created": 2, "updated": 0, "removed": 0}
    roles = {m.user.lti_identities.get().sub: m.role for m in Membership.objects.all()}
    assert roles == {
        "moodle-user-3": CourseRole.INSTRUCTOR,
        "moodle-user-17": CourseRole.LEARNER,
        "moodle-user-9": CourseRole.TEACHING_ASSISTANT,
    }
    assert LtiContext.objects.get().roster_synced_at is not None


def test_the_roster_sync_removes_lti_members_who_left(browser, lms, lecturer_launched):
    context = LtiContext.objects.get()
    stranger = User.objects.create(username="lti-gone")
    stranger.lti_identities.create(issuer=lms.issuer, sub="moodle-user-left")
    Membership.objects.create(user=stranger, course=context.course, role=CourseRole.LEARNER)

    tasks.roster_sync_all()

    assert not Membership.objects.filter(user=stranger).exists()


def test_a_student_cannot_sync_the_roster(browser, lms, lecturer_launched):
    browser.client.logout()
    browser.launch("learner")
    course_id = LtiContext.objects.get().course_id

    assert browser.client.post(f"/lti/api/courses/{course_id}/roster-sync/").status_code == 403


def test_the_roster_sync_fails_cleanly_when_the_lms_refuses_the_token(
    browser, lms, lecturer_launched
):
    lms.tool_jwks = {"keys": []}  # the LMS no longer trusts CAIPI's keys
    course_id = LtiContext.objects.get().course_id

    response = browser.client.post(f"/lti/api/courses/{course_id}/roster-sync/")

    assert response.status_code == 502
    assert Membership.objects.count() == 1


def test_a_lecturer_posts_a_score_to_the_lms_gradebook(browser, lms, lecturer_launched):
    browser.client.logout()
    browser.launch("learner")
    bob = User.objects.get(lti_identities__sub="moodle-user-17")
    link = LtiResourceLink.objects.get()
    browser.client.force_login(lecturer_launched)

    response = browser.client.post(
        f"/lti/api/resource-links/{link.pk}/scores/",
        {"user_id": bob.pk, "score_given": 8, "score_maximum": 10, "comment": "Well done"},
        content_type="application/json",
    )

    assert response.status_code == 201, response.content
    (score,) = lms.scores
    assert score["path"] == "/ags/lineitems/55/lineitem/scores"
    assert (score["userId"], score["scoreGiven"], score["scoreMaximum"]) == (
        "moodle-user-17",
        8,
        10,
    )
    assert score["activityProgress"] == "Completed"


def test_a_student_cannot_post_scores(browser, lms, lecturer_launched):
    browser.client.logout()
    browser.launch("learner")
    bob = User.objects.get(lti_identities__sub="moodle-user-17")
    link = LtiResourceLink.objects.get()

    response = browser.client.post(
        f"/lti/api/resource-links/{link.pk}/scores/",
        {"user_id": bob.pk, "score_given": 10, "score_maximum": 10},
        content_type="application/json",
    )

    assert response.status_code == 403
    assert lms.scores == []


def test_a_score_above_the_maximum_is_refused(browser, lms, lecturer_launched):
    link = LtiResourceLink.objects.get()
    response = browser.client.post(
        f"/lti/api/resource-links/{link.pk}/scores/",
        {"user_id": lecturer_launched.pk, "score_given": 11, "score_maximum": 10},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert lms.scores == []


def test_the_roster_page_shows_the_time_of_the_sync_just_made(browser, lms, lecturer_launched):
    course_id = LtiContext.objects.get().course_id

    page = browser.client.post(f"/lti/courses/{course_id}/").content.decode()

    synced = LtiContext.objects.get().roster_synced_at
    assert synced is not None
    assert f'<time class="roster-synced">{synced:%Y-%m-%d %H:%M:%S}' in page
