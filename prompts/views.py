"""HTML pages of the prompts app for course staff: the course's templates, the editor
(with live preview, try-out, tests, versions, publishing and diff) and batch runs.

The pages are shells filled by their scripts through the REST API (``prompts.apis`` and
the gateway's run endpoints): what a page shows is exactly what the API allows.
The student's run page lives in the gateway (``caipi.gateway.views``), which checks the
usage policy first.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from caipi.core.models import Course
from caipi.core.permissions import can, require
from prompts import registry, selectors
from prompts.apis.outputs import TemplateOutput, VersionOutput, VersionSummaryOutput
from prompts.context import sample_student
from prompts.i18n import in_user_language
from prompts.models import Audience, TestRun
from prompts.permissions import COURSE_MANAGE_PROMPTS, COURSE_VIEW_USAGE
from prompts.variables import BUILTINS, InputKind


def _builtins() -> list[dict[str, Any]]:
    return [{"name": b.name, "help": str(b.help)} for b in BUILTINS.values()]


@login_required
@require_GET
@in_user_language
def course_prompts(request: HttpRequest, course_id: int) -> HttpResponse:
    """The course's templates: staff see every one with state, version and usage; students
    the published ones as cards to run."""
    course = get_object_or_404(Course, pk=course_id)
    templates = list(selectors.template_list_for_course(user=request.user, course=course))
    staff = can(request.user, COURSE_MANAGE_PROMPTS, course)
    context = {
        "course": course,
        "templates": templates,
        "staff": staff,
        "may_view_usage": can(request.user, COURSE_VIEW_USAGE, course),
        "library": list(selectors.library_list(user=request.user)) if staff else [],
        "other_courses": _teaching_elsewhere(request.user, course) if staff else [],
    }
    return render(request, "prompts/list.html", context)


def _teaching_elsewhere(user: Any, course: Course) -> list[Course]:
    from caipi.core.selectors import course_list_for_user

    return [
        other
        for other in course_list_for_user(user=user).exclude(pk=course.pk)
        if can(user, COURSE_MANAGE_PROMPTS, other)
    ]


def _editor_context(request: HttpRequest, course: Course, template: Any) -> dict[str, Any]:
    latest = template.versions.order_by("-number").first() if template else None
    latest_run = (
        TestRun.objects.filter(version=latest).order_by("-created_at", "-pk").first()
        if latest
        else None
    )
    student = sample_student(course)
    data = {
        "course_id": course.pk,
        "template": TemplateOutput(template).data if template else None,
        "version": VersionOutput(latest).data if latest else None,
        "versions": VersionSummaryOutput(selectors.versions_list(template=template), many=True).data
        if template
        else [],
        "published_version_id": template.published_version_id if template else None,
        "latest_test_run": latest_run.pk if latest_run else None,
        "models": registry.model_names(),
        "builtins": _builtins(),
        "input_kinds": [{"value": k.value, "label": k.value} for k in InputKind],
        "audiences": [{"value": v, "label": str(label)} for v, label in Audience.choices],
        "sample_student": str(getattr(student, "display_name", "") or student),
    }
    return {"course": course, "template": template, "editor_data": data}


@login_required
@require_GET
@in_user_language
def template_new(request: HttpRequest, course_id: int) -> HttpResponse:
    """The editor for a new template of the course (saved on the first save)."""
    course = get_object_or_404(Course, pk=course_id)
    require(request.user, COURSE_MANAGE_PROMPTS, course)
    return render(request, "prompts/editor.html", _editor_context(request, course, None))


@login_required
@require_GET
@in_user_language
def template_editor(request: HttpRequest, template_id: int) -> HttpResponse:
    """The editor of a course template: its newest version, versions and tests."""
    template = selectors.template_for_staff(user=request.user, template_id=template_id)
    if template.course is None:  # library entries are looked after in the admin pages
        raise Http404
    return render(
        request, "prompts/editor.html", _editor_context(request, template.course, template)
    )


@login_required
@require_GET
@in_user_language
def template_batches(request: HttpRequest, template_id: int) -> HttpResponse:
    """Batch runs of a template: start one over a CSV or the roster, follow, download."""
    template = selectors.template_for_staff(user=request.user, template_id=template_id)
    version = template.published_version or template.versions.order_by("-number").first()
    context = {
        "template": template,
        "course": template.course,
        "version": version,
        "inputs": version.variables if version else [],
        "batches": list(selectors.batch_list(template=template)),
    }
    return render(request, "prompts/batches.html", context)
