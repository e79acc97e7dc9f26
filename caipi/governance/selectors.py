"""Reads of governance data: remaining quota, usage aggregates, policy status, course
settings, a user's data."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDay
from django.utils import timezone

from caipi.core.models import Course, User
from caipi.core.redis_clock import redis_now
from caipi.governance.limits import LIMITS, limits_applicable
from caipi.governance.models import (
    ApiKey,
    AuditEntry,
    Conversation,
    CourseSettings,
    ManagedBy,
    PolicyAcceptance,
    PolicyVersion,
    QuotaLimit,
    RoleModelAccess,
    UsageRecord,
)
from caipi.governance.principal import Principal
from caipi.governance.quota_words import limit_summary, limit_title, limit_whose
from caipi.governance.services.quotas import quota_counter, quota_used, window_bounds

logger = logging.getLogger(__name__)

GROUPINGS = {"model": "model", "course": "course__label", "role": "role", "day": "day"}


def quota_overview(*, principal: Principal) -> list[dict[str, Any]]:
    """Every limit the principal draws on, with size, used, remaining and reset time.

    Per-model limits are listed for each model that has one. ``Unavailable`` if Redis is down.
    """
    now = redis_now()  # the windows' clock, shared by every machine
    pairs = limits_applicable(LIMITS.get(), principal, None)
    counters = []
    for rule, subject in pairs:
        start, end = window_bounds(rule.window, now)
        counters.append(quota_counter(rule, subject, start, end, 0, 0))
    used = quota_used(tuple(counters))
    return [
        _limit_row(rule, subject, counter.resets_at, spent)
        for (rule, subject), counter, spent in zip(pairs, counters, used, strict=True)
    ]


def _limit_row(rule: Any, subject: str, resets_at: float, spent: int) -> dict[str, Any]:
    """One limit for the quota overview: the numbers, and words for people (``title``,
    ``summary``, ``whose``) in the active language; ``limit`` stays the admin's label."""
    remaining = max(0, rule.size - spent)
    model = subject.split("m", 1)[1] if rule.scope == "model" and "m" in subject else ""
    return {
        "limit": rule.label,
        "title": limit_title(metric=rule.metric, window=rule.window),
        "summary": limit_summary(
            metric=rule.metric, window=rule.window, remaining=remaining, size=rule.size
        ),
        "whose": limit_whose(scope=rule.scope, model=model),
        "metric": rule.metric,
        "window": rule.window,
        "size": rule.size,
        "used": spent,
        "remaining": remaining,
        "resets_at": datetime.fromtimestamp(resets_at, UTC).isoformat(timespec="seconds"),
    }


def usage_records(
    *, since: datetime, courses: QuerySet[Course] | None = None
) -> QuerySet[UsageRecord]:
    """Usage since a moment, for the given courses (None: the whole site)."""
    records = UsageRecord.objects.filter(created_at__gte=since)
    return records if courses is None else records.filter(course__in=courses)


def usage_grouped(*, records: QuerySet[UsageRecord], by: str) -> list[dict[str, Any]]:
    """Calls and tokens per model, course, role or day, largest first (days in order)."""
    field = GROUPINGS[by]
    if by == "day":
        records = records.annotate(day=TruncDay("created_at"))
    rows = (
        records.values(field)
        .annotate(
            calls=Count("id"),
            prompt=Coalesce(Sum("prompt_tokens"), 0),
            completion=Coalesce(Sum("completion_tokens"), 0),
        )
        .order_by(field if by == "day" else "-calls")
    )
    result = [
        {
            "label": _label(row[field], by),
            "calls": row["calls"],
            "prompt_tokens": row["prompt"],
            "completion_tokens": row["completion"],
            "tokens": row["prompt"] + row["completion"],
        }
        for row in rows
    ]
    return result if by == "day" else sorted(result, key=lambda row: -row["tokens"])


def usage_per_day(*, records: QuerySet[UsageRecord], since: datetime) -> list[dict[str, Any]]:
    """``usage_grouped(by="day")`` with a row for every day from ``since`` to today, days
    without calls at zero: the chart's axis is the whole period, not only its busy days."""
    found = {row["label"]: row for row in usage_grouped(records=records, by="day")}
    first, today = timezone.localtime(since).date(), timezone.localdate()
    empty = {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "tokens": 0}
    days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
    return [found.get(day.isoformat(), {"label": day.isoformat(), **empty}) for day in days]


def _label(value: Any, by: str) -> str:
    if by == "day":
        return value.date().isoformat() if value else "?"
    return str(value) if value else "(none)"


def usage_for_user(*, user: User, days: int = 30) -> dict[str, Any]:
    """The user's own usage over the last ``days``: totals, per day, per model."""
    since = timezone.now() - timedelta(days=days)
    records = UsageRecord.objects.filter(user=user, created_at__gte=since)
    per_day = usage_grouped(records=records, by="day")
    return {
        "since": since.isoformat(timespec="seconds"),
        "calls": sum(row["calls"] for row in per_day),
        "prompt_tokens": sum(row["prompt_tokens"] for row in per_day),
        "completion_tokens": sum(row["completion_tokens"] for row in per_day),
        "by_day": per_day,
        "by_model": usage_grouped(records=records, by="model"),
    }


def policy_current() -> PolicyVersion | None:
    """The newest published usage policy, or None when the admin has published none."""
    return (
        PolicyVersion.objects.filter(published_at__lte=timezone.now()).order_by("-version").first()
    )


def policy_accepted(*, user: Any) -> bool:
    """True when there is no policy or the user accepted the current version."""
    policy = policy_current()
    return policy is None or PolicyAcceptance.objects.filter(user=user, policy=policy).exists()


def apikey_list(*, user: User) -> QuerySet[ApiKey]:
    """The user's keys, newest first (revoked ones included, marked)."""
    return ApiKey.objects.filter(user=user)


def course_limits(*, course: Course) -> QuerySet[QuotaLimit]:
    """Limits set on a course, by admins (ceilings) and by its staff (budgets)."""
    return QuotaLimit.objects.filter(course=course)


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


def course_keeps_conversations(*, course_id: int) -> bool:
    """True when the course opted in to keeping conversations."""
    return CourseSettings.objects.filter(course_id=course_id, keep_conversations=True).exists()


def userdata_export(*, user: User) -> dict[str, Any]:
    """Everything CAIPI holds about ``user`` as JSON-ready data (key secrets are never held)."""
    return {
        "exported_at": _iso(timezone.now()),
        "account": _account(user),
        "memberships": list(user.memberships.values("course__label", "course__title", "role")),
        "api_keys": list(
            ApiKey.objects.filter(user=user).values(
                "prefix", "name", "created_at", "expires_at", "revoked_at", "allowed_models"
            )
        ),
        "policy_acceptances": list(
            PolicyAcceptance.objects.filter(user=user).values(
                "policy__version", "accepted_at", "channel"
            )
        ),
        "usage": list(
            UsageRecord.objects.filter(user=user).values(
                "created_at",
                "course__label",
                "model",
                "prompt_tokens",
                "completion_tokens",
                "outcome",
            )
        ),
        "conversations": _conversations(user),
        "audit_entries_as_actor": list(
            AuditEntry.objects.filter(actor=user)
            .values("at", "action", "target_repr")
            .order_by("at")
        ),
    }


def _account(user: User) -> dict[str, Any]:
    fields = ("username", "display_name", "email", "first_name", "last_name", "locale", "site_role")
    return {name: getattr(user, name) for name in fields} | {
        "date_joined": _iso(user.date_joined),
        "last_login": _iso(user.last_login),
    }


def _conversations(user: User) -> list[dict[str, Any]]:
    conversations = Conversation.objects.filter(user=user).select_related("course")
    return [
        {
            "course": conversation.course.label,
            "created_at": _iso(conversation.created_at),
            "messages": list(conversation.messages.values("role", "content", "created_at")),
        }
        for conversation in conversations.prefetch_related("messages")
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def course_settings(*, course: Course) -> CourseSettings:
    """The course's governance settings; the defaults (unsaved) when it has none yet."""
    return CourseSettings.objects.filter(course=course).first() or CourseSettings(course=course)


def models_used_in_course(*, course: Course, days: int = 14) -> set[str]:
    """The models the course's members called in the last ``days`` days."""
    since = timezone.now() - timedelta(days=days)
    records = UsageRecord.objects.filter(course=course, created_at__gte=since)
    return set(records.values_list("model", flat=True).distinct())


def role_models(*, role: str) -> list[str] | None:
    """The models a role is limited to (``RoleModelAccess``), or None when it may use all."""
    access = RoleModelAccess.objects.filter(role=role).first()
    return list(access.model_names) if access is not None else None
