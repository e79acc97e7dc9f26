"""HTML pages of the gateway: the course assistant (chat with the course's models)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from caipi.core.models import Course
from caipi.core.permissions import require
from caipi.gateway import selectors
from caipi.gateway.permissions import COURSE_USE_ASSISTANT
from caipi.governance import selectors as governance_selectors
from caipi.governance.policy import policy_required


@login_required
@policy_required
@require_GET
def assistant(request: HttpRequest, course_id: int) -> HttpResponse:
    """The course assistant page: the chat models this member may use, and their quota."""
    course = get_object_or_404(Course, pk=course_id)
    require(request.user, COURSE_USE_ASSISTANT, course)
    context = {
        "course": course,
        "models": selectors.chat_models_for(user=request.user, course=course),
        "keeps_conversations": governance_selectors.course_keeps_conversations(course_id=course.pk),
    }
    return render(request, "gateway/assistant.html", context)
