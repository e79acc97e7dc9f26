"""Reads of users, courses and memberships."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from caipi.core.models import Course, Membership, User


def course_list_for_user(*, user: User) -> QuerySet[Course]:
    """Courses the user belongs to (all courses for site admins), by title."""
    if user.is_site_admin:
        return Course.objects.all()
    return Course.objects.filter(memberships__user=user).distinct()


def membership_get(*, user: User, course: Course) -> Membership | None:
    """The user's membership in the course, or None."""
    return Membership.objects.filter(user=user, course=course).first()


def home_overview(*, user: Any) -> dict[str, Any]:
    """What the home page shows: the visitor's courses when signed in, and whether the
    built-in LTI test platform is there to try CAIPI as a student or lecturer."""
    courses = list(course_list_for_user(user=user)) if user.is_authenticated else []
    return {"courses": courses, "dev_platform": settings.LTI_DEV_PLATFORM}
