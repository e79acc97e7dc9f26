"""HTML pages of the gateway: the course assistant (chat with the course's models, answering
from the course's lecture notes)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from caipi.core.models import Course
from caipi.core.permissions import can, require
from caipi.gateway import selectors
from caipi.gateway.permissions import COURSE_USE_ASSISTANT
from caipi.governance import selectors as governance_selectors
from caipi.governance.policy import policy_required
from prompts import selectors as prompt_selectors
from prompts import services as prompt_services
from prompts.i18n import in_user_language
from rag.permissions import COURSE_MANAGE_DOCUMENTS
from rag.selectors import documents_for


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
        "notes_count": documents_for(course=course, user=request.user).count(),
        "may_manage_notes": can(request.user, COURSE_MANAGE_DOCUMENTS, course),
        "strings": _assistant_strings(),
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
        "keeps_history": governance_selectors.course_keeps_conversations(
            course_id=template.home.pk
        ),
    }
    return render(request, "prompts/run.html", context)


def _assistant_strings() -> dict[str, str]:
    """The assistant script's words, translated here (the script has no catalog)."""
    return {
        "sources": _("Sources from the lecture notes"),
        "page": _("page %(page)s"),
        "no_notes": _(
            "Not from the course: this course has no lecture notes yet, so this answer comes "
            "from the model's general knowledge."
        ),
        "failed": _("The call failed."),
        "lost": _("The connection was lost."),
        "stopped": _("[stopped]"),
        "quota_unavailable": _("Quota unavailable."),
        "no_limits": _("No limits apply to you here."),
        "resets": _("resets %(when)s"),
        "starting": _(
            "The model is starting — you are number %(position)s in the queue, about %(eta)s s."
        ),
    }
