"""Operational endpoints (liveness, readiness, metrics) and the home page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from caipi.core import metrics, navigation, selectors
from caipi.core.auth import request_user
from caipi.core.models import Course
from caipi.core.permissions import COURSE_VIEW, require
from caipi.core.readiness import readiness_probes


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches no outside system."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when database, cache and broker all answer, else 503; each named."""
    probes = readiness_probes()
    ready = all(probe.ok for probe in probes)
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {probe.name: probe.as_dict() for probe in probes},
    }
    return JsonResponse(body, status=200 if ready else 503)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics in the text exposition format."""
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
