"""HTML pages of the gateway: the course assistant (chat with the course's models)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from caipi.core.models import Course
from caipi.core.permissions import Action, require
from caipi.governance.models import CourseSettings
from caipi.governance.policy import policy_required
from caipi.governance.principal import user_may_use_model
from deploy.models import Model, ModelKind


@login_required
@policy_required
@require_GET
def assistant(request: HttpRequest, course_id: int) -> HttpResponse:
    """The course assistant page: the chat models this member may use, and their quota."""
    course = get_object_or_404(Course, pk=course_id)
    require(request.user, Action.COURSE_USE_ASSISTANT, course)
    models = [
        model
        for model in Model.objects.filter(enabled=True, kind=ModelKind.CHAT).order_by("name")
        if user_may_use_model(request.user, model.name, course.pk)
    ]
    course_settings = CourseSettings.objects.filter(course=course).first()
    context = {
        "course": course,
        "models": models,
        "keeps_conversations": bool(course_settings and course_settings.keep_conversations),
    }
    return render(request, "gateway/assistant.html", context)
