"""The one answer to "may this user do this action here?" — for every view, API and task.

Ask ``can(user, action, target)`` (a bool) or ``require(...)`` (raises ``PermissionDenied``,
a 403). Nothing else in CAIPI decides by looking at roles itself.

Actions are registered, not listed here: the core knows only its own (``course.view``,
``site.admin``); each app registers the actions of its pages and APIs in its own
``permissions.py`` (imported by its ``AppConfig.ready``), so the core names no action of an
app — nor of an app that does not exist yet. Two kinds:

* a **course action** (``register_course_action``) names the course roles that may do it;
  its target is a ``Course`` or anything with a ``course_id`` (a template, a document).
  A user with no membership in that course may do nothing there; site admins may do
  every course action everywhere.
* a **rule** (``register_rule``) is decided by a function ``rule(user, target, course)``
  of the app that owns the data (e.g. ``model.use``: the models governance lets each
  role use; ``apikey.revoke``: the key's owner or an admin).

Anonymous and inactive users may do nothing. An action nobody registered is a programming
error (``KeyError``), not a refusal.

One deliberate exception: the raw ``/v1`` API has no user row on its hot path, so it judges
the API key's in-memory principal with ``governance.principal.principal_may_use_model`` —
the function the ``model.use`` rule itself ends in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from caipi.core.errors import PermissionDenied
from caipi.core.models import Course, CourseRole, Membership

logger = logging.getLogger(__name__)

Rule = Callable[[Any, Any, Any], bool]

# Who a course action is for, by course role.
MEMBERS = frozenset({CourseRole.LEARNER, CourseRole.TEACHING_ASSISTANT, CourseRole.INSTRUCTOR})
TEACHERS = frozenset({CourseRole.TEACHING_ASSISTANT, CourseRole.INSTRUCTOR})
INSTRUCTORS = frozenset({CourseRole.INSTRUCTOR})


@dataclass(frozen=True)
class _Registered:
    """How one action is decided: by course roles, or by an app's rule."""

    roles: frozenset[str] = frozenset()
    rule: Rule | None = None


_ACTIONS: dict[str, _Registered] = {}


def register_course_action(action: str, *, roles: Iterable[str]) -> str:
    """Register ``action`` as allowed to these course roles in the target's course.

    Returns ``action``, so an app can write ``COURSE_VIEW_USAGE = register_course_action(...)``.
    Registering the same action again replaces it (module reloads in tests).
    """
    _ACTIONS[action] = _Registered(roles=frozenset(str(role) for role in roles))
    return action


def register_rule(action: str, rule: Rule) -> str:
    """Register ``action`` as decided by ``rule(user, target, course) -> bool``.

    The rule only sees signed-in, active users. Returns ``action``.
    """
    _ACTIONS[action] = _Registered(rule=rule)
    return action


def registered_actions() -> list[str]:
    """Every registered action, sorted (the authorization matrix test walks them all)."""
    return sorted(_ACTIONS)


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


def can(user: Any, action: str, target: Any = None, *, course: Any = None) -> bool:
    """True when ``user`` may do ``action`` to ``target``.

    ``target``: a Course or an object with ``course_id`` for course actions; whatever the
    rule expects for a rule (``course``: the course the act happens in, if any). A target
    of the wrong kind is refused, not an error. Raises ``KeyError`` for an unknown action.
    """
    registered = _ACTIONS[action]
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if registered.rule is not None:
        return registered.rule(user, target, course)
    course_id = _course_id(target)
    if course_id is None:
        return False
    if user.is_site_admin:
        return True
    return course_role(user, course_id) in registered.roles


def require(user: Any, action: str, target: Any = None, *, course: Any = None) -> None:
    """Raise ``PermissionDenied`` (403) unless ``can(...)``; the message names the action."""
    if not can(user, action, target, course=course):
        logger.info("refused %s to user %s", action, getattr(user, "pk", None))
        raise PermissionDenied(_("You may not do this (%(action)s).") % {"action": action})


COURSE_VIEW = register_course_action("course.view", roles=MEMBERS)
SITE_ADMIN = register_rule("site.admin", lambda user, target, course: bool(user.is_site_admin))
