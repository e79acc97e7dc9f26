"""The authorization matrix: every role x every action x own course / other course.

Personas: Bob (learner) and Alice (instructor) in ML101, Tess (teaching assistant) in ML101,
Charlie (learner) in HIST200 only, Erin (API user, no course), Dana (site admin, no course).
"Own course" is ML101 for everyone except Charlie, whose own course is HIST200.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from caipi.core.errors import PermissionDenied
from caipi.core.models import CourseRole, Membership, SiteRole, User
from caipi.core.permissions import Action, can, require

pytestmark = pytest.mark.django_db

A = Action
LEARNER = {A.COURSE_VIEW, A.COURSE_USE_ASSISTANT, A.TEMPLATE_RUN, A.DOCUMENT_VIEW}
TEACHING = LEARNER | {
    A.COURSE_MANAGE_PROMPTS,
    A.COURSE_MANAGE_DOCUMENTS,
    A.COURSE_VIEW_USAGE,
    A.TEMPLATE_EDIT,
    A.DOCUMENT_MANAGE,
}
INSTRUCTOR = TEACHING | {A.COURSE_SET_BUDGET, A.COURSE_MANAGE_SETTINGS}
COURSE_ACTIONS = [
    action for action in Action if action.value.split(".")[0] in ("course", "template", "document")
]

# role -> (allowed in own course, allowed in the other course, model.use, site.admin)
MATRIX = {
    "learner": (LEARNER, set(), True, False),
    "teaching_assistant": (TEACHING, set(), True, False),
    "instructor": (INSTRUCTOR, set(), True, False),
    "outsider": (LEARNER, set(), True, False),
    "api_user": (set(), set(), True, False),
    "admin": (set(COURSE_ACTIONS), set(COURSE_ACTIONS), True, True),
    "anonymous": (set(), set(), False, False),
}


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """The personas have passwords; hashing them properly takes seconds per test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class _Item:
    """A template or document: anything with a ``course_id``."""

    def __init__(self, course_id: int) -> None:
        self.course_id = course_id


@pytest.fixture
def people(lecturer, student, outsider, admin, course, other_course):
    tess = User.objects.create_user(username="tess")
    Membership.objects.create(user=tess, course=course, role=CourseRole.TEACHING_ASSISTANT)
    erin = User.objects.create_user(username="erin", site_role=SiteRole.API_USER)
    return {
        "learner": (student, course, other_course),
        "teaching_assistant": (tess, course, other_course),
        "instructor": (lecturer, course, other_course),
        "outsider": (outsider, other_course, course),
        "api_user": (erin, course, other_course),
        "admin": (admin, course, other_course),
        "anonymous": (AnonymousUser(), course, other_course),
    }


def _target(action: Action, course):
    return course if action.value.startswith("course.") else _Item(course.pk)


@pytest.mark.parametrize("role", list(MATRIX))
@pytest.mark.parametrize("action", COURSE_ACTIONS)
@pytest.mark.parametrize("where", ["own", "other"])
def test_the_course_matrix(people, role, action, where):
    user, own, other = people[role]
    expected = action in MATRIX[role][0 if where == "own" else 1]
    assert can(user, action, _target(action, own if where == "own" else other)) is expected


@pytest.mark.parametrize("role", list(MATRIX))
def test_the_site_matrix(people, role):
    user = people[role][0]
    assert can(user, A.MODEL_USE, "any-model") is MATRIX[role][2]
    assert can(user, A.SITE_ADMIN) is MATRIX[role][3]


def test_every_action_is_covered_by_the_matrix():
    assert set(COURSE_ACTIONS) | {A.MODEL_USE, A.SITE_ADMIN} == set(Action)


def test_require_refuses_with_a_403_naming_the_action(student, course):
    with pytest.raises(PermissionDenied) as caught:
        require(student, A.COURSE_SET_BUDGET, course)
    assert caught.value.status == 403 and "course.set_budget" in caught.value.message
    require(student, A.COURSE_VIEW, course)


def test_a_disabled_account_may_do_nothing(lecturer, course):
    lecturer.is_active = False
    assert not can(lecturer, A.COURSE_VIEW, course)


def test_a_wrong_kind_of_target_is_refused_not_an_error(lecturer):
    assert not can(lecturer, A.COURSE_VIEW, "not a course")
    assert not can(lecturer, A.MODEL_USE, None)


def test_model_use_follows_the_models_admins_chose_per_role(student, lecturer, course):
    from caipi.governance.models import RoleModelAccess

    RoleModelAccess.objects.create(role="learner", model_names=["small"])
    assert can(student, A.MODEL_USE, "small", course=course)
    assert not can(student, A.MODEL_USE, "big", course=course)
    assert can(lecturer, A.MODEL_USE, "big", course=course)
