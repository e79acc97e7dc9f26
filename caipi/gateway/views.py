"""HTML pages of the gateway: the course assistant (chat with the course's models)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from caipi.core.models import Course
from caipi.core.permissions import Action, require
from caipi.governance.conversations import course_keeps_conversations
from caipi.governance.models import CourseSettings
from caipi.governance.policy import policy_required
from caipi.governance.principal import user_may_use_model
from deploy.models import Model, ModelKind
from prompts import selectors as prompt_selectors
from prompts import services as prompt_services
from prompts.i18n import in_user_language


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


@login_required
@policy_required
@require_GET
@in_user_language
def prompt_run_page(request: HttpRequest, template_id: int) -> HttpResponse:
    """A published template's run form, answer and follow-ups, with the user's quota."""
    template, version = prompt_selectors.template_for_run(
        user=request.user, template_id=template_id
    )
    specs = prompt_services.specs_of(version)
    context = {
        "course": template.course,
        "template": template,
        "version": version,
        "fields": [
            {**spec.as_dict(), "kind": str(spec.kind), "default": spec.default} for spec in specs
        ],
        "keeps_history": course_keeps_conversations(course_id=template.course_id),
    }
    return render(request, "prompts/run.html", context)
