"""Placing a published template with LTI deep linking (target ``prompt:<id>``), launching
it, and the placement surviving a course copy in the LMS. Real signed launches from the
test LMS (tests/support/lti_platform.py)."""

from __future__ import annotations

import json

import jwt
import pytest

from caipi.core.models import User
from lms_connectors.models import LtiContext
from prompts import services
from prompts.models import Template
from tests.lms_connectors.conftest import (  # noqa: F401 (fixtures)
    _fresh_cache,
    browser,
    form_fields,
    lms,
    registered,
)
from tests.prompts.conftest import content, tutor_model  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def placed_template(browser):  # noqa: F811
    """The instructor's first launch creates the course; then a published template in it."""
    browser.launch("instructor")
    course = LtiContext.objects.get().course
    instructor = User.objects.get(memberships__course=course)
    template = services.template_create(
        actor=instructor, course=course, name="Quiz me on week 3", content=content()
    )
    return services.template_publish(
        actor=instructor, template=template, version=template.versions.get()
    )


def place(browser, lms, template_id: int) -> dict:  # noqa: F811
    lms.next_message = "LtiDeepLinkingRequest"
    response = browser.launch("instructor")
    picker = browser.client.get(response["Location"])
    assert b"Quiz me on week 3" in picker.content
    answer = browser.client.post(response["Location"], {"target": f"prompt:{template_id}"})
    _action, fields = form_fields(answer.content.decode())
    claims = jwt.decode(fields["JWT"], options={"verify_signature": False})
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    return item


def test_a_placed_template_opens_straight_into_its_run_form(browser, lms, placed_template):  # noqa: F811
    item = place(browser, lms, placed_template.pk)
    assert item["custom"] == {"caipi_target": f"prompt:{placed_template.pk}"}
    lms.next_message = "LtiResourceLinkRequest"
    lms.custom = item["custom"]
    browser.client.logout()
    launched = browser.launch("learner")
    assert launched["Location"] == f"/prompts/{placed_template.pk}/"


def test_drafts_are_not_offered_for_placement(browser, lms, placed_template):  # noqa: F811
    services.template_unpublish(actor=placed_template.created_by, template=placed_template)
    lms.next_message = "LtiDeepLinkingRequest"
    response = browser.launch("instructor")
    assert b"Quiz me on week 3" not in browser.client.get(response["Location"]).content


def test_the_pin_travels_with_the_placement_into_a_copied_course(browser, lms, placed_template):  # noqa: F811
    lms.next_message = "LtiResourceLinkRequest"
    lms.custom = {"caipi_target": f"prompt:{placed_template.pk}"}
    lms.context = {"id": "course-4711-copy", "label": "ML101-WS", "title": "ML (winter)"}
    browser.client.logout()
    launched = browser.launch("learner")
    copy = Template.objects.get(copied_from=placed_template)
    assert launched["Location"] == f"/prompts/{copy.pk}/"
    assert copy.course.label == "ML101-WS" and copy.is_published
    assert copy.published_version.user_prompt == placed_template.published_version.user_prompt


def test_templates_get_the_launch_and_the_courses_activities(browser, lms, placed_template):  # noqa: F811
    lms.custom = {"week": "3"}
    browser.launch("instructor")
    preview = browser.client.post(
        f"/api/prompts/courses/{placed_template.course_id}/preview/",
        json.dumps(
            {
                "content": content(
                    user_prompt="{{ launch.resource_title }}|{{ launch.custom.week }}|"
                    "{{ course.activities }}|{{ input.topic }}"
                ),
                "inputs": {"topic": "trees"},
            }
        ),
        content_type="application/json",
    ).json()
    assert preview["problems"] == []
    assert preview["user"].startswith("Ask CAIPI|3|- Ask CAIPI|")
