"""The whole launch flow against the test LMS, for a learner and an instructor."""

from __future__ import annotations

from caipi.core.models import CourseRole, Membership, User
from lms_connectors.models import LtiContext, LtiIdentity, LtiResourceLink
from lms_connectors.services.identity import lti_username


def test_a_learner_launch_signs_in_a_pseudonymous_user_and_opens_the_course(browser, lms):
    response = browser.launch("learner")

    context = LtiContext.objects.get(platform__issuer=lms.issuer, context_id="course-4711")
    assert response.status_code == 302
    assert response["Location"] == f"/courses/{context.course_id}/"
    user = User.objects.get(lti_identities__sub="moodle-user-17")
    assert user.username == lti_username(issuer=lms.issuer, sub="moodle-user-17")
    assert "moodle-user-17" not in user.username
    assert (user.first_name, user.last_name, user.email, user.locale) == (
        "Bob",
        "Student",
        "bob@uni.invalid",
        "de",
    )
    membership = Membership.objects.get(user=user, course=context.course)
    assert membership.role == CourseRole.LEARNER
    assert context.course.label == "ML101"
    assert browser.client.get(response["Location"]).status_code == 200


def test_an_instructor_launch_makes_a_lecturer_of_the_same_course(browser, lms):
    browser.launch("learner")
    browser.client.logout()
    response = browser.launch("instructor")

    assert response.status_code == 302
    assert LtiContext.objects.count() == 1
    user = User.objects.get(lti_identities__sub="moodle-user-3")
    assert Membership.objects.get(user=user).role == CourseRole.INSTRUCTOR


def test_a_launch_remembers_the_resource_link_and_its_gradebook_line_item(browser, lms):
    browser.launch("learner")

    link = LtiResourceLink.objects.get(resource_link_id="link-1")
    assert link.lineitem_url == lms.url("/ags/lineitems/55/lineitem")
    assert link.accepts_scores


def test_a_custom_target_parameter_opens_the_course_assistant(browser, lms):
    lms.custom = {"caipi_target": "assistant"}
    response = browser.launch("learner")

    course_id = LtiContext.objects.get().course_id
    assert response["Location"] == f"/courses/{course_id}/assistant/"


def test_an_unknown_target_falls_back_to_the_course_home(browser, lms):
    lms.custom = {"caipi_target": "prompt:12"}
    response = browser.launch("learner")

    assert response["Location"] == f"/courses/{LtiContext.objects.get().course_id}/"


def test_a_second_launch_updates_the_course_title_and_the_identity(browser, lms):
    browser.launch("learner")
    lms.context = {**lms.context, "title": "Machine Learning (renamed)"}
    browser.launch("learner")

    assert LtiContext.objects.get().course.title == "Machine Learning (renamed)"
    assert LtiIdentity.objects.count() == 1


def test_the_launch_page_may_be_framed_by_the_registered_lms(browser, lms):
    response = browser.launch("learner")
    page = browser.client.get(response["Location"])

    assert lms.issuer in page["Content-Security-Policy"]
    assert "X-Frame-Options" not in page
