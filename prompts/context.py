"""Building the ``RunContext`` of a run or preview from the real course and user.

The core knows the course's title and label and the user's name, locale and role; the
rest (sections, activities and dates from the LMS, the launch's resource title and custom
parameters, retrieved passages) comes from the context providers the upper layers register
(``prompts.registry.register_context_provider``). A provider that fails is logged and
skipped: a run without, say, the section names is better than no run.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone, translation

from caipi.core.models import Course, CourseRole, Membership
from caipi.core.permissions import course_role
from prompts import registry
from prompts.models import TemplateVersion
from prompts.rendering import RunContext

logger = logging.getLogger(__name__)


def given_name(user: Any) -> str:
    """The user's given name as the LMS sent it, else the first word of their name."""
    if getattr(user, "first_name", ""):
        return str(user.first_name)
    shown = str(getattr(user, "display_name", "") or "")
    return shown.split(" ", 1)[0] if shown else ""


def context_build(
    *, course: Course, user: Any, inputs: dict[str, Any], version: TemplateVersion | None = None,
    request: Any = None, role: str | None = None,
) -> RunContext:  # fmt: skip
    """The context for ``user`` running a template in ``course`` with checked ``inputs``."""
    if role is None and getattr(user, "pk", None) is not None:
        role = course_role(user, course.pk)  # memoised on the user by the permission check
    context = RunContext(
        course={"title": course.title, "label": course.label},
        user={
            "given_name": given_name(user),
            "role": str(CourseRole(role).label) if role in CourseRole.values else "",
            "locale": getattr(user, "locale", "") or translation.get_language() or "",
        },
        now=timezone.localtime(),
        inputs=inputs,
    )
    for provider in registry.context_providers():
        try:
            extra = provider(
                course=course, user=user, request=request, inputs=inputs, version=version
            )
        except Exception:
            logger.exception("prompt context provider failed; running without its data")
            continue
        context.course.update(extra.get("course") or {})
        context.launch.update(extra.get("launch") or {})
        context.passages.extend(extra.get("passages") or [])
    return context


class SampleStudent:
    """A stand-in student for previews in a course without students yet."""

    pk = None
    first_name = ""
    display_name = "Sam Sample"
    locale = ""


def sample_student(course: Course) -> Any:
    """A real student of the course (the first by name), else ``SampleStudent``."""
    membership = (
        Membership.objects.filter(course=course, role=CourseRole.LEARNER)
        .select_related("user")
        .order_by("user__username")
        .first()
    )
    return membership.user if membership else SampleStudent()
