"""HTML pages: usage with charts (site and course), CSV export, own API keys, usage policy."""

from __future__ import annotations

import csv
import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from caipi.core.auth import request_user
from caipi.core.errors import ApplicationError, Unavailable
from caipi.core.models import Course, User
from caipi.core.permissions import SITE_ADMIN, can, require
from caipi.governance import selectors, services
from caipi.governance.models import ApiKey
from caipi.governance.permissions import APIKEY_CREATE, COURSE_VIEW_USAGE
from caipi.governance.policy import policy_required
from caipi.governance.principal import principal_for_user

logger = logging.getLogger(__name__)

CSV_COLUMNS = (
    "created_at", "user_id", "course_id", "role", "model", "endpoint_id", "template_version_id",
    "prompt_tokens", "completion_tokens", "ttft_ms", "duration_ms", "outcome",
)  # fmt: skip


def _days(request: HttpRequest) -> int:
    days = request.GET.get("days", "30")
    return min(max(int(days), 1), 366) if days.isdigit() else 30


def _usage_context(records, days: int, groupings: tuple[str, ...]) -> dict:
    context = {"days": days, "calls": records.count()}
    for by in groupings:
        context[f"by_{by}"] = selectors.usage_grouped(records=records, by=by)
    by_day = selectors.usage_per_day(records=records, since=_since(days))
    context["by_day"] = by_day if context["calls"] else []
    return context


def _since(days: int) -> datetime:
    """The first moment of the period: midnight ``days - 1`` days ago, so ``days`` whole
    days (today included) are shown."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=days - 1)


@login_required
def usage_site(request: HttpRequest) -> HttpResponse:
    """Site usage for admins: per day, model, course and role."""
    require(request.user, SITE_ADMIN)
    days = _days(request)
    records = selectors.usage_records(since=_since(days))
    context = _usage_context(records, days, ("model", "course", "role"))
    return render(
        request, "governance/usage.html", context | {"scope_title": gettext("All courses")}
    )


@login_required
def usage_course(request: HttpRequest, course_id: int) -> HttpResponse:
    """One course's usage for its staff (and admins): per day, model and role."""
    course = get_object_or_404(Course, pk=course_id)
    require(request.user, COURSE_VIEW_USAGE, course)
    days = _days(request)
    courses = Course.objects.filter(pk=course.pk)
    records = selectors.usage_records(since=_since(days), courses=courses)
    context = _usage_context(records, days, ("model", "role"))
    return render(
        request, "governance/usage.html", context | {"course": course, "scope_title": str(course)}
    )


@login_required
def usage_export_csv(request: HttpRequest) -> HttpResponse:
    """Usage records as CSV: the whole site for admins, ``?course=<id>`` for its staff."""
    course_id = request.GET.get("course", "")
    courses = None
    if course_id.isdigit():
        course = get_object_or_404(Course, pk=int(course_id))
        require(request.user, COURSE_VIEW_USAGE, course)
        courses = Course.objects.filter(pk=course.pk)
    else:
        require(request.user, SITE_ADMIN)
    records = selectors.usage_records(since=_since(_days(request)), courses=courses)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="caipi-usage.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for row in records.order_by("created_at").values_list(*CSV_COLUMNS).iterator():
        writer.writerow(row)
    return response


@login_required
@policy_required
@require_http_methods(["GET", "POST"])
def keys_page(request: HttpRequest) -> HttpResponse:
    """The user's API keys: create (the key is shown once, on this answer) and revoke."""
    new_key = None
    if request.method == "POST":
        try:
            if "revoke" in request.POST:
                key = get_object_or_404(
                    ApiKey, pk=request.POST["revoke"], user=request_user(request)
                )
                services.apikey_revoke(key=key, actor=request_user(request))
                revoked = gettext("Key caipi-%(prefix)s-… revoked.") % {"prefix": key.prefix}
                messages.info(request, revoked)
            else:
                days = request.POST.get("expires_days", "")
                _, new_key = services.apikey_create(
                    user=request_user(request),
                    actor=request_user(request),
                    name=request.POST.get("name", ""),
                    expires_days=int(days) if days.isdigit() else None,
                )
        except ApplicationError as error:
            messages.error(request, str(error.message))
    user = request_user(request)
    context = {
        "keys": selectors.apikey_list(user=user),
        "new_key": new_key,
        "may_create": can(request.user, APIKEY_CREATE, request.user),
        "site_role": user.get_site_role_display(),
        **_key_limits(user),
    }
    return render(request, "governance/keys.html", context)


def _key_limits(user: User) -> dict[str, Any]:
    """The limits a call with one of ``user``'s keys draws on now (not those of a key alone)."""
    principal = principal_for_user(user_id=user.pk, course_id=None)
    try:
        return {"key_limits": selectors.quota_overview(principal=principal)}
    except Unavailable:
        return {"key_limits": None}


@login_required
@require_http_methods(["GET", "POST"])
def policy_page(request: HttpRequest) -> HttpResponse:
    """Show the current usage policy; accepting it returns to where the user was going."""
    next_url = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = "/"
    if request.method == "POST":
        services.policy_accept(user=request_user(request), channel="web")
        return redirect(next_url)
    context = {
        "policy": selectors.policy_current(),
        "accepted": selectors.policy_accepted(user=request_user(request)),
        "next": next_url,
    }
    return render(request, "governance/policy.html", context)
