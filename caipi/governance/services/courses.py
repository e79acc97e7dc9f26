"""Writes of a course's governance: its staff's budget and its settings (history, exemptions)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from caipi.core.errors import PermissionDenied
from caipi.core.models import Course, User
from caipi.core.permissions import SITE_ADMIN, can, require
from caipi.governance import selectors
from caipi.governance.audit import audit_record, audit_snapshot
from caipi.governance.models import CourseSettings, LimitScope, ManagedBy, QuotaLimit
from caipi.governance.permissions import (
    COURSE_MANAGE_SETTINGS,
    COURSE_SET_BUDGET,
    COURSE_SETTING_ACTIONS,
)


class AboveCeiling(PermissionDenied):
    """A course budget above what the administrator allows for that course."""

    code = "above_ceiling"


@transaction.atomic
def course_budget_set(
    *, actor: User, course: Course, scope: str, metric: str, window: str, size: int
) -> QuotaLimit:
    """Set the course staff's budget for ``course`` (scope ``course`` or ``course_member``).

    Raises ``PermissionDenied`` unless ``actor`` may set the course's budget (instructors,
    admins), and ``AboveCeiling`` when ``size`` exceeds the admin's limit of that kind.
    Budgets only ever restrict: every applicable limit is enforced.
    """
    require(actor, COURSE_SET_BUDGET, course)
    if scope not in (LimitScope.COURSE, LimitScope.COURSE_MEMBER):
        raise PermissionDenied("A course budget is for the course or for each of its members.")
    ceiling = selectors.course_budget_ceiling(
        course=course, scope=scope, metric=metric, window=window
    )
    if ceiling is not None and size > ceiling and not can(actor, SITE_ADMIN):
        raise AboveCeiling(
            f"The administrator allows at most {ceiling} here.", extra={"ceiling": ceiling}
        )
    limit = QuotaLimit.objects.filter(
        course=course, scope=scope, metric=metric, window=window, managed_by=ManagedBy.COURSE
    ).first()
    before = audit_snapshot(limit) if limit else None
    if limit is None:
        limit = QuotaLimit(
            course=course, scope=scope, metric=metric, window=window, managed_by=ManagedBy.COURSE
        )
    limit.size = size
    limit.save()
    audit_record(
        actor=actor,
        action="quota.course_budget",
        target=limit,
        before=before,
        after=audit_snapshot(limit),
    )
    return limit


class AdminSetting(PermissionDenied):
    """A course setting only an administrator may change (it bounds the admin's limits)."""

    code = "admin_setting"


@transaction.atomic
def course_settings_update(*, actor: User, course: Course, **changes: Any) -> CourseSettings:
    """Change ``keep_conversations``, ``retention_days`` or ``exempt_roles`` of a course.

    Each field belongs to an action (``COURSE_SETTING_ACTIONS``): history and retention to
    the course's instructors, ``exempt_roles`` to administrators only. Raises
    ``PermissionDenied`` unless ``actor`` may manage the course's settings, and
    ``AdminSetting`` (403, naming the fields) when a change touches a field ``actor`` may
    not change; nothing is changed then. Unknown fields raise ``ValueError``.
    """
    require(actor, COURSE_MANAGE_SETTINGS, course)
    unknown = set(changes) - set(COURSE_SETTING_ACTIONS)
    if unknown:
        raise ValueError(f"not a course setting: {sorted(unknown)}")
    refused = sorted(
        name for name in changes if not can(actor, COURSE_SETTING_ACTIONS[name], course)
    )
    if refused:
        raise AdminSetting(
            f"Only an administrator may change {', '.join(refused)} of a course.",
            extra={"fields": refused},
        )
    settings_row, _ = CourseSettings.objects.select_for_update().get_or_create(course=course)
    before = audit_snapshot(settings_row)
    for name, value in changes.items():
        if value is not None:
            setattr(settings_row, name, value)
    settings_row.save()
    audit_record(
        actor=actor,
        action="course.settings",
        target=settings_row,
        before=before,
        after=audit_snapshot(settings_row),
    )
    return settings_row
