"""Writes of governance data. Each service is atomic and leaves an audit entry."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from caipi.core.errors import PermissionDenied
from caipi.core.models import Course, SiteRole, User
from caipi.core.permissions import Action, require
from caipi.governance.apikeys import apikey_generate, apikey_hash
from caipi.governance.audit import audit_record, audit_snapshot
from caipi.governance.models import (
    ApiKey,
    AuditEntry,
    Conversation,
    CourseSettings,
    LimitScope,
    ManagedBy,
    PolicyAcceptance,
    PolicyVersion,
    QuotaLimit,
    UsageRecord,
)

logger = logging.getLogger(__name__)

KEY_AUDIT_EXCLUDE = ("key_hash",)


def apikey_may_self_create(*, user: User) -> bool:
    """True when the user's site role may create keys for themselves (setting)."""
    roles = set(getattr(settings, "GOVERNANCE_KEY_SELF_SERVICE_ROLES", ()))
    role = SiteRole.ADMIN.value if user.is_site_admin else user.site_role
    return role in roles or user.is_site_admin


@transaction.atomic
def apikey_create(
    *,
    user: User,
    actor: User | None,
    name: str = "",
    expires_days: int | None = None,
    models: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Mint a key for ``user``; returns the row and the raw key (show it once, never store it).

    Self-service (``actor`` is ``user``) is refused with ``PermissionDenied`` unless the
    user's site role is allowed to (``GOVERNANCE_KEY_SELF_SERVICE_ROLES``); admins and the
    system (``actor=None``, the command) may create keys for anyone. Creating a key accepts
    the current usage policy on the owner's behalf when the owner creates it (channel
    "api_key"): API calls have no page on which to ask.
    """
    self_service = actor is not None and not actor.is_site_admin
    if self_service and (actor.pk != user.pk or not apikey_may_self_create(user=user)):
        raise PermissionDenied("You may not create API keys; ask an administrator.")
    if expires_days is not None and expires_days < 1:
        raise PermissionDenied("An expiry must be at least one day.")
    raw_key, prefix = apikey_generate()
    key = ApiKey.objects.create(
        user=user,
        name=name[:100],
        prefix=prefix,
        key_hash=apikey_hash(raw_key),
        allowed_models=sorted(set(models)) if models else None,
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    if actor is not None and actor.pk == user.pk:
        policy_accept(user=user, channel="api_key")
    audit_record(
        actor=actor,
        action="apikey.create",
        target=key,
        after=audit_snapshot(key, exclude=KEY_AUDIT_EXCLUDE),
    )
    return key, raw_key


@transaction.atomic
def apikey_revoke(*, key: ApiKey, actor: User | None) -> ApiKey:
    """Revoke a key (idempotent). Owners may revoke their own keys, admins any key."""
    if actor is not None and not actor.is_site_admin and actor.pk != key.user_id:
        raise PermissionDenied("You may only revoke your own API keys.")
    if key.revoked_at is None:
        before = audit_snapshot(key, exclude=KEY_AUDIT_EXCLUDE)
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="apikey.revoke",
            target=key,
            before=before,
            after=audit_snapshot(key, exclude=KEY_AUDIT_EXCLUDE),
        )
    return key


def policy_current() -> PolicyVersion | None:
    """The newest published usage policy, or None when the admin has published none."""
    return (
        PolicyVersion.objects.filter(published_at__lte=timezone.now()).order_by("-version").first()
    )


def policy_accept(*, user: User, channel: str = "web") -> PolicyAcceptance | None:
    """Record that ``user`` accepts the current policy (idempotent); None when there is none."""
    policy = policy_current()
    if policy is None:
        return None
    acceptance, _ = PolicyAcceptance.objects.get_or_create(
        user=user, policy=policy, defaults={"channel": channel}
    )
    return acceptance


def policy_publish(*, text: str, actor: User) -> PolicyVersion:
    """Publish a new policy version; every user is asked to accept it again."""
    with transaction.atomic():
        latest = PolicyVersion.objects.select_for_update().order_by("-version").first()
        policy = PolicyVersion.objects.create(
            version=(latest.version + 1) if latest else 1, text=text, published_by=actor
        )
        audit_record(
            actor=actor, action="policy.publish", target=policy, after={"version": policy.version}
        )
    return policy


class AboveCeiling(PermissionDenied):
    """A course budget above what the administrator allows for that course."""

    code = "above_ceiling"


def course_budget_ceiling(*, course: Course, scope: str, metric: str, window: str) -> int | None:
    """The smallest admin limit for this course (or every course) of this kind; None if none."""
    sizes = QuotaLimit.objects.filter(
        Q(course=course) | Q(course__isnull=True),
        scope=scope,
        metric=metric,
        window=window,
        managed_by=ManagedBy.ADMIN,
    ).values_list("size", flat=True)
    return min(sizes, default=None)


@transaction.atomic
def course_budget_set(
    *, actor: User, course: Course, scope: str, metric: str, window: str, size: int
) -> QuotaLimit:
    """Set the course staff's budget for ``course`` (scope ``course`` or ``course_member``).

    Raises ``PermissionDenied`` unless ``actor`` may set the course's budget (instructors,
    admins), and ``AboveCeiling`` when ``size`` exceeds the admin's limit of that kind.
    Budgets only ever restrict: every applicable limit is enforced.
    """
    require(actor, Action.COURSE_SET_BUDGET, course)
    if scope not in (LimitScope.COURSE, LimitScope.COURSE_MEMBER):
        raise PermissionDenied("A course budget is for the course or for each of its members.")
    ceiling = course_budget_ceiling(course=course, scope=scope, metric=metric, window=window)
    if ceiling is not None and size > ceiling and not actor.is_site_admin:
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


@transaction.atomic
def course_settings_update(*, actor: User, course: Course, **changes: Any) -> CourseSettings:
    """Change ``keep_conversations``, ``retention_days`` or ``exempt_roles`` of a course.

    Raises ``PermissionDenied`` unless ``actor`` may manage the course's settings.
    """
    require(actor, Action.COURSE_MANAGE_SETTINGS, course)
    allowed = {"keep_conversations", "retention_days", "exempt_roles"}
    settings_row, _ = CourseSettings.objects.select_for_update().get_or_create(course=course)
    before = audit_snapshot(settings_row)
    for name, value in changes.items():
        if name in allowed and value is not None:
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


def conversations_purge_expired(*, now: datetime | None = None) -> int:
    """Delete kept conversations older than their course's retention; returns how many."""
    now = now or timezone.now()
    deleted = 0
    keep = dict(
        CourseSettings.objects.filter(keep_conversations=True).values_list(
            "course_id", "retention_days"
        )
    )
    for course_id, days in keep.items():
        stale = Conversation.objects.filter(
            course_id=course_id, updated_at__lt=now - timedelta(days=days)
        )
        deleted += stale.delete()[1].get("governance.Conversation", 0)
    # A course that turned history off keeps nothing.
    rest = Conversation.objects.exclude(course_id__in=list(keep))
    deleted += rest.delete()[1].get("governance.Conversation", 0)
    logger.info("purged %d expired conversations", deleted)
    return deleted


@transaction.atomic
def userdata_delete(*, user: User, actor: User | None) -> None:
    """Delete everything held about ``user``: account, keys, memberships, conversations,
    policy acceptances. Usage records stay for the accounting, without the user; audit
    entries keep the change but no longer the name.
    """
    user_id = user.pk
    AuditEntry.objects.filter(actor=user).update(actor_name="deleted user")
    UsageRecord.objects.filter(user=user).update(user=None, key_id=None)
    user.delete()
    audit_record(actor=actor, action="userdata.delete", target=f"user #{user_id}")
