"""Principals: which models a caller may use (key allow-list ∩ role access), and course access."""

from __future__ import annotations

import pytest

from caipi.core.errors import PermissionDenied
from caipi.governance.apikeys import apikey_authenticate
from caipi.governance.models import RoleModelAccess
from caipi.governance.principal import Principal, principal_for_user, principal_may_use_model
from caipi.governance.services import apikey_create

pytestmark = pytest.mark.django_db


def _principal(**fields) -> Principal:
    base = dict(
        user_id=1,
        key_id=None,
        username="x",
        site_role="member",
        allowed_models=None,
        course_id=None,
    )
    return Principal(**(base | fields))


@pytest.mark.parametrize(
    ("allowed", "role_models", "model", "expected"),
    [
        (None, None, "big", True),
        (frozenset({"small"}), None, "big", False),
        (frozenset({"small"}), None, "small", True),
        (None, frozenset({"small"}), "big", False),
        (frozenset({"big"}), frozenset({"small"}), "big", False),
        (frozenset({"big", "small"}), frozenset({"small"}), "small", True),
    ],
)
def test_a_model_must_pass_both_the_key_and_the_roles(allowed, role_models, model, expected):
    principal = _principal(allowed_models=allowed, role_models=role_models)
    assert principal_may_use_model(principal, model) is expected


def test_a_key_is_refused_a_model_outside_its_allow_list(admin, student):
    _, raw = apikey_create(user=student, actor=admin, models=["small"])
    principal = apikey_authenticate(raw)
    assert principal_may_use_model(principal, "small")
    assert not principal_may_use_model(principal, "big")


def test_admins_choose_which_models_each_role_may_use(student, course):
    assert principal_may_use_model(
        principal_for_user(user_id=student.pk, course_id=course.pk), "big"
    )
    RoleModelAccess.objects.create(role="learner", model_names=["small"])
    in_course = principal_for_user(user_id=student.pk, course_id=course.pk)
    assert not principal_may_use_model(in_course, "big")
    assert principal_may_use_model(in_course, "small")
    # Outside a course the site role (member) governs, and it is unrestricted.
    assert principal_may_use_model(principal_for_user(user_id=student.pk), "big")


def test_a_user_of_another_course_gets_no_principal_there(outsider, course):
    with pytest.raises(PermissionDenied):
        principal_for_user(user_id=outsider.pk, course_id=course.pk)


def test_a_site_admin_acts_in_any_course_with_the_admin_role(admin, course):
    principal = principal_for_user(user_id=admin.pk, course_id=course.pk)
    assert principal.roles == ("admin",)


def test_a_warm_principal_costs_no_query(student, course, django_assert_num_queries):
    principal_for_user(user_id=student.pk, course_id=course.pk)
    with django_assert_num_queries(0):
        principal_for_user(user_id=student.pk, course_id=course.pk)
