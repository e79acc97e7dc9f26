"""The actions governance registers with ``caipi.core.permissions``, and how they are decided."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from caipi.core.permissions import INSTRUCTORS, TEACHERS, register_course_action, register_rule

COURSE_VIEW_USAGE = register_course_action("course.view_usage", roles=TEACHERS)
COURSE_SET_BUDGET = register_course_action("course.set_budget", roles=INSTRUCTORS)
COURSE_MANAGE_SETTINGS = register_course_action("course.manage_settings", roles=INSTRUCTORS)
# The course settings that decide whose calls the admin's course budgets hold: no course
# role may change them (site admins may do every course action), so a lecturer cannot
# exempt their students from the budget the administrator set for the course.
COURSE_SET_LIMIT_EXEMPTIONS = register_course_action("course.set_limit_exemptions", roles=())

# Who owns each field of ``CourseSettings``: the lecturer's choices (history and its
# retention) and the administrator's (which course roles the course budgets skip).
COURSE_SETTING_ACTIONS: dict[str, str] = {
    "keep_conversations": COURSE_MANAGE_SETTINGS,
    "retention_days": COURSE_MANAGE_SETTINGS,
    "exempt_roles": COURSE_SET_LIMIT_EXEMPTIONS,
}


def _model_use(user: Any, target: Any, course: Any) -> bool:
    """The models the admins let the user's governing role use (``RoleModelAccess``)."""
    from caipi.governance.principal import user_may_use_model

    name = target if isinstance(target, str) else getattr(target, "name", None)
    if name is None:
        return False
    course_id = getattr(course, "pk", course) if course is not None else None
    return user_may_use_model(user, name, course_id)


def _apikey_create(user: Any, owner: Any, course: Any) -> bool:
    """Admins create keys for anyone; others for themselves, when their site role may
    (``GOVERNANCE_KEY_SELF_SERVICE_ROLES``)."""
    if user.is_site_admin:
        return True
    roles = set(getattr(settings, "GOVERNANCE_KEY_SELF_SERVICE_ROLES", ()))
    return getattr(owner, "pk", None) == user.pk and user.site_role in roles


def _apikey_revoke(user: Any, key: Any, course: Any) -> bool:
    """Owners revoke their own keys; admins any key."""
    return bool(user.is_site_admin) or getattr(key, "user_id", None) == user.pk


MODEL_USE = register_rule("model.use", _model_use)
APIKEY_CREATE = register_rule("apikey.create", _apikey_create)
APIKEY_REVOKE = register_rule("apikey.revoke", _apikey_revoke)

__all__ = [
    "APIKEY_CREATE",
    "APIKEY_REVOKE",
    "COURSE_MANAGE_SETTINGS",
    "COURSE_SETTING_ACTIONS",
    "COURSE_SET_BUDGET",
    "COURSE_SET_LIMIT_EXEMPTIONS",
    "COURSE_VIEW_USAGE",
    "MODEL_USE",
]
