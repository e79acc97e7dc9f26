"""The LTI role → course role table (context roles first, then institution roles)."""

from __future__ import annotations

import pytest

from caipi.core.models import CourseRole
from lms_connectors.roles import course_role_from_lti

M = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
I = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"  # noqa: E741
S = "http://purl.imsglobal.org/vocab/lis/v2/system/person#"
TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ([M + "Learner"], CourseRole.LEARNER),
        ([M + "Instructor"], CourseRole.INSTRUCTOR),
        ([M + "Instructor", TA], CourseRole.TEACHING_ASSISTANT),
        ([M + "Mentor"], CourseRole.TEACHING_ASSISTANT),
        ([M + "Administrator"], CourseRole.INSTRUCTOR),
        ([M + "ContentDeveloper"], CourseRole.INSTRUCTOR),
        ([M + "Learner", M + "Instructor"], CourseRole.INSTRUCTOR),
        (["Learner"], CourseRole.LEARNER),
        (["Instructor"], CourseRole.INSTRUCTOR),
        ([I + "Faculty", M + "Learner"], CourseRole.LEARNER),
        ([I + "Administrator", M + "Learner"], CourseRole.LEARNER),
        ([I + "Administrator"], CourseRole.INSTRUCTOR),
        ([I + "Instructor"], CourseRole.INSTRUCTOR),
        ([I + "Student"], CourseRole.LEARNER),
        ([S + "Administrator"], None),
        ([S + "Guest", I + "Guest"], None),
        ([], None),
    ],
)
def test_lti_roles_map_to_the_course_role(roles, expected):
    assert course_role_from_lti(roles) == expected
