"""The one answer to "may this user do this action to this course, template, document or model?".

Every view and API asks ``can`` (a bool) or ``require`` (raises ``PermissionDenied``).
Course actions follow the user's role in the target's course (table ``COURSE_ROLE_ACTIONS``);
site admins may do everything; a user without a membership in the course may do nothing
there. Templates and documents are judged by the course they belong to (their
``course_id``). ``model.use`` asks the model policy registered by the governance app
(admins choose which models each role may use); with none registered every signed-in user
may use every model. The core stays free of app imports: apps register, the core asks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from caipi.core.errors import PermissionDenied
from caipi.core.models import Course, CourseRole, Membership

logger = logging.getLogger(__name__)


class Action(StrEnum):
    COURSE_VIEW = "course.view"
    COURSE_USE_ASSISTANT = "course.use_assistant"
    COURSE_MANAGE_PROMPTS = "course.manage_prompts"
    COURSE_MANAGE_DOCUMENTS = "course.manage_documents"
    COURSE_SET_BUDGET = "course.set_budget"
    COURSE_VIEW_USAGE = "course.view_usage"
    COURSE_MANAGE_SETTINGS = "course.manage_settings"
    TEMPLATE_RUN = "template.run"
    TEMPLATE_EDIT = "template.edit"
    DOCUMENT_VIEW = "document.view"
    DOCUMENT_MANAGE = "document.manage"
    MODEL_USE = "model.use"
    SITE_ADMIN = "site.admin"


_LEARNER = frozenset(
    {Action.COURSE_VIEW, Action.COURSE_USE_ASSISTANT, Action.TEMPLATE_RUN, Action.DOCUMENT_VIEW}
)
_TEACHING = _LEARNER | {
    Action.COURSE_MANAGE_PROMPTS,
    Action.COURSE_MANAGE_DOCUMENTS,
    Action.COURSE_VIEW_USAGE,
    Action.TEMPLATE_EDIT,
    Action.DOCUMENT_MANAGE,
}
COURSE_ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    CourseRole.LEARNER: _LEARNER,
    CourseRole.TEACHING_ASSISTANT: frozenset(_TEACHING),
    CourseRole.INSTRUCTOR: frozenset(
        _TEACHING | {Action.COURSE_SET_BUDGET, Action.COURSE_MANAGE_SETTINGS}
    ),
}
SITE_ACTIONS = frozenset({Action.MODEL_USE, Action.SITE_ADMIN})

ModelPolicy = Callable[[Any, str, int | None], bool]
_model_policy: ModelPolicy | None = None


def register_model_policy(policy: ModelPolicy | None) -> None:
    """Install ``policy(user, model_name, course_id) -> bool`` as the answer to ``model.use``."""
    global _model_policy
    _model_policy = policy


def course_role(user: Any, course_id: int) -> str | None:
    """The user's role in the course, memoised on the user object (one query per request)."""
    memo: dict[int, str] | None = getattr(user, "_caipi_course_roles", None)
    if memo is None:
        memo = dict(Membership.objects.filter(user=user).values_list("course_id", "role"))
        user._caipi_course_roles = memo
    return memo.get(course_id)


def _course_id(target: Any) -> int | None:
    if isinstance(target, Course):
        return target.pk
    return getattr(target, "course_id", None)


def _model_name(target: Any) -> str | None:
    return target if isinstance(target, str) else getattr(target, "name", None)


def can(user: Any, action: Action | str, target: Any = None, *, course: Any = None) -> bool:
    """True when ``user`` may do ``action`` to ``target``.

    ``target``: a Course (``course.*``), an object with ``course_id`` (``template.*``,
    ``document.*``), a model name or object with ``name`` (``model.use``, with ``course``
    the course the call is made in, if any), nothing (``site.admin``). Anonymous or inactive
    users may do nothing; a mismatched target is refused, not an error.
    """
    action = Action(action)
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if action == Action.SITE_ADMIN:
        return user.is_site_admin
    if action == Action.MODEL_USE:
        name = _model_name(target)
        if name is None:
            return False
        course_id = _course_id(course) if course is not None else None
        return _model_policy(user, name, course_id) if _model_policy else True
    course_id = _course_id(target)
    if course_id is None:
        return False
    if user.is_site_admin:
        return True
    role = course_role(user, course_id)
    return role is not None and action in COURSE_ROLE_ACTIONS.get(role, frozenset())


def require(user: Any, action: Action | str, target: Any = None, *, course: Any = None) -> None:
    """Raise ``PermissionDenied`` (403) unless ``can(...)``; the message names the action."""
    if not can(user, action, target, course=course):
        logger.info("refused %s to user %s", Action(action).value, getattr(user, "pk", None))
        raise PermissionDenied(f"You may not do this ({Action(action).value}).")
