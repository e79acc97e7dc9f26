"""The authorization matrix: every role x every registered action x own course / other course.

Personas: Bob (learner) and Alice (instructor) in ML101, Tess (teaching assistant) in ML101,
Charlie (learner) in HIST200 only, Erin (API user, no course), Dana (site admin, no course).
"Own course" is ML101 for everyone except Charlie, whose own course is HIST200.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from caipi.core.errors import PermissionDenied
from caipi.core.models import CourseRole, Membership, SiteRole, User
from caipi.core.permissions import (
    TEACHERS,
    can,
    register_course_action,
    registered_actions,
    require,
)

pytestmark = pytest.mark.django_db

LEARNER = {"course.view", "course.use_assistant", "template.run", "document.view"}
TEACHING = LEARNER | {
    "course.view_usage",
    "course.manage_lms_link",
    "course.place_activities",
    "course.manage_prompts",
    "template.edit",
    "course.manage_documents",
    "document.manage",
}
INSTRUCTOR = TEACHING | {"course.set_budget", "course.manage_settings"}
# The administrator's course settings (whose calls the course budgets skip): no course role.
ADMIN_ONLY = {"course.set_limit_exemptions"}
COURSE_ACTIONS = sorted(INSTRUCTOR | ADMIN_ONLY)
# Actions decided by a rule of the app that owns the data, each tested below on its own.
RULES = ["apikey.create", "apikey.revoke", "model.use", "site.admin"]

# role -> (allowed in own course, allowed in the other course, model.use, site.admin,
#          may create a key for themselves)
MATRIX = {
    "learner": (LEARNER, set(), True, False, False),
    "teaching_assistant": (TEACHING, set(), True, False, False),
    "instructor": (INSTRUCTOR, set(), True, False, False),
    "outsider": (LEARNER, set(), True, False, False),
    "api_user": (set(), set(), True, False, True),
    "admin": (INSTRUCTOR | ADMIN_ONLY, INSTRUCTOR | ADMIN_ONLY, True, True, True),
    "anonymous": (set(), set(), False, False, False),
}


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """The personas have passwords; hashing them properly takes seconds per test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class _Item:
    """A template or document of a course: anything with a ``course_id``."""

    def __init__(self, course_id: int, user_id: int | None = None) -> None:
        self.course_id = course_id
        self.user_id = user_id


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


def test_every_registered_action_is_in_the_matrix():
    assert registered_actions() == sorted(COURSE_ACTIONS + RULES)


@pytest.mark.parametrize("role", list(MATRIX))
@pytest.mark.parametrize("action", COURSE_ACTIONS)
@pytest.mark.parametrize("where", ["own", "other"])
def test_the_course_matrix(people, role, action, where):
    user, own, other = people[role]
    expected = action in MATRIX[role][0 if where == "own" else 1]
    assert can(user, action, own if where == "own" else other) is expected


@pytest.mark.parametrize("role", list(MATRIX))
def test_the_site_matrix(people, role):
    user = people[role][0]
    assert can(user, "model.use", "any-model") is MATRIX[role][2]
    assert can(user, "site.admin") is MATRIX[role][3]
    assert can(user, "apikey.create", user) is MATRIX[role][4]


@pytest.mark.parametrize("role", list(MATRIX))
def test_a_key_is_revoked_by_its_owner_or_an_admin_only(people, role, lecturer):
    user = people[role][0]
    own_key, alices_key = _Item(0, user_id=user.pk), _Item(0, user_id=lecturer.pk)
    signed_in = role != "anonymous"
    assert can(user, "apikey.revoke", own_key) is signed_in
    assert can(user, "apikey.revoke", alices_key) is (role in ("admin", "instructor"))


def test_nobody_but_an_admin_creates_a_key_for_someone_else(people):
    erin, bob = people["api_user"][0], people["learner"][0]
    assert not can(erin, "apikey.create", bob)
    assert can(people["admin"][0], "apikey.create", bob)


def test_course_actions_judge_things_of_a_course_by_their_course(people):
    alice, course, other = people["instructor"]
    assert can(alice, "course.view_usage", _Item(course.pk))
    assert not can(alice, "course.view_usage", _Item(other.pk))


def test_an_app_registers_an_action_for_the_roles_it_names(people):
    register_course_action("test.teach_only", roles=TEACHERS)
    try:
        assert can(people["teaching_assistant"][0], "test.teach_only", people["learner"][1])
        assert not can(people["learner"][0], "test.teach_only", people["learner"][1])
    finally:
        from caipi.core import permissions

        del permissions._ACTIONS["test.teach_only"]


def test_an_unknown_action_is_an_error_not_a_refusal(student):
    with pytest.raises(KeyError):
        can(student, "course.no_such_action")


def test_require_refuses_with_a_403_naming_the_action(student, course):
    with pytest.raises(PermissionDenied) as caught:
        require(student, "course.set_budget", course)
    assert caught.value.status == 403 and "course.set_budget" in caught.value.message
    require(student, "course.view", course)


def test_a_disabled_account_may_do_nothing(lecturer, course):
    lecturer.is_active = False
    assert not can(lecturer, "course.view", course)


def test_a_wrong_kind_of_target_is_refused_not_an_error(lecturer):
    assert not can(lecturer, "course.view", "not a course")
    assert not can(lecturer, "model.use", None)


def test_model_use_follows_the_models_admins_chose_per_role(student, lecturer, course):
    from caipi.governance.models import RoleModelAccess

    RoleModelAccess.objects.create(role="learner", model_names=["small"])
    assert can(student, "model.use", "small", course=course)
    assert not can(student, "model.use", "big", course=course)
    assert can(lecturer, "model.use", "big", course=course)
