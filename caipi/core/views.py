"""Operational endpoints (liveness, readiness, metrics) and the home page."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.i18n import set_language
from prometheus_client import CONTENT_TYPE_LATEST

from caipi.core import metrics, navigation, selectors
from caipi.core.auth import request_user
from caipi.core.errors import API_PREFIX, api_error_response
from caipi.core.i18n import spoken
from caipi.core.models import Course, User
from caipi.core.permissions import COURSE_VIEW, require
from caipi.core.readiness import readiness_probes
from caipi.core.scrape import scrape_allowed


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches no outside system."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when database, cache and broker all answer, else 503.

    Each check is named with its detail only for the scrape network or token
    (``core.scrape``); anyone else learns the status alone.
    """
    probes = readiness_probes()
    ready = all(probe.ok for probe in probes)
    body: dict[str, object] = {"status": "ok" if ready else "unavailable"}
    if scrape_allowed(request):
        body["checks"] = {probe.name: probe.as_dict() for probe in probes}
    return JsonResponse(body, status=200 if ready else 503)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics in the text exposition format, for the scrape network or token."""
    if not scrape_allowed(request):
        return HttpResponse(
            "Metrics are for the monitoring network (CAIPI_SCRAPE_NETWORKS) or its token.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The landing page: what this CAIPI serves and where to go next."""
    return render(request, "core/home.html", selectors.home_overview(user=request.user))


@login_required
@require_GET
def course_home(request: HttpRequest, course_id: int) -> HttpResponse:
    """A course's home page, for its members (and site admins): the sections the apps
    registered (caipi.core.navigation) that this visitor may open."""
    course = get_object_or_404(Course, pk=course_id)
    require(request.user, COURSE_VIEW, course)
    context = {
        "course": course,
        "membership": selectors.membership_get(user=request_user(request), course=course),
        "sections": navigation.course_sections(user=request_user(request), course=course),
    }
    return render(request, "core/course_home.html", context)


@require_GET
def signin(request: HttpRequest) -> HttpResponse:
    """Where a page that needs a signed-in user sends a visitor without a session
    (``LOGIN_URL``): students and lecturers come from their LMS, so the page tells them to
    open CAIPI again from their course; staff with a password sign in on the admin login."""
    next_url = request.GET.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    context = {"next": next_url, "admin_login": reverse("login")}
    return render(request, "core/signin.html", context)


@require_http_methods(["GET", "POST"])
def signout(request: HttpRequest) -> HttpResponse:
    """Sign out: GET asks to confirm (a link cannot sign anyone out), POST signs out and
    says how to come back."""
    if request.method == "POST":
        logout(request)
        return redirect("signed_out")
    if not request.user.is_authenticated:
        return redirect("signed_out")
    return render(request, "core/signout.html")


@require_GET
def signed_out(request: HttpRequest) -> HttpResponse:
    """The page after signing out."""
    return render(request, "core/signed_out.html")


@require_POST
def language_choose(request: HttpRequest) -> HttpResponse:
    """The language switch: Django's ``set_language`` (checks the language and the ``next``
    address, sets the language cookie, goes back), and for a signed-in user the choice is
    remembered on the user, ahead of the LMS's language, on every device."""
    response = set_language(request)
    language = spoken(request.POST.get("language"))
    if language is not None and request.user.is_authenticated:
        User.objects.filter(pk=request.user.pk).update(language=language)
    return response


def locked_out(
    request: HttpRequest, original_response: object, credentials: object
) -> HttpResponse:
    """django-axes' answer to a sign-in while locked out (``AXES_LOCKOUT_CALLABLE``): 429 with
    a page that says why and for how long (JSON in the one error shape under ``/api/``)."""
    cooloff = settings.AXES_COOLOFF_TIME
    minutes = int(cooloff.total_seconds() // 60) if cooloff else 0
    if request.path.startswith(API_PREFIX):
        return api_error_response(
            429, f"Too many failed sign-ins; try again in {minutes} minutes.", "locked_out"
        )
    context = {"failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_minutes": minutes}
    return render(request, "core/locked_out.html", context, status=429)
