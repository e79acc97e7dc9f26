"""The student's run of a published template (streamed) and template usage, over the
session API. The run is an async view like the course chat (``apis.chat_api``): it needs
the session, CSRF protection, the policy check and the membership, and streams SSE.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from caipi.core.errors import ApplicationError, NotAuthenticated
from caipi.core.models import Course
from caipi.core.permissions import require
from caipi.gateway.apis import error_response
from caipi.gateway.prompt_runs import PreparedRun, rendered, run_prepare, try_prepare
from caipi.gateway.relay import relay_chat
from caipi.gateway.validation import InvalidRequest, parse_body
from caipi.governance.models import UsageRecord
from caipi.governance.permissions import COURSE_VIEW_USAGE
from caipi.governance.policy import PolicyNotAccepted
from caipi.governance.principal import aprincipal_for_user
from caipi.governance.selectors import policy_accepted
from prompts import selectors as prompt_selectors
from prompts.models import TemplateVersion

logger = logging.getLogger(__name__)


@require_POST
async def prompt_run_api(request: HttpRequest, template_id: int) -> HttpResponseBase:
    """``POST /api/prompts/templates/<id>/run/``: a student's run (see ``_streamed``)."""
    return await _streamed(request, template_id=template_id, version_id=None)


@require_POST
async def prompt_try_api(
    request: HttpRequest, template_id: int, version_id: int
) -> HttpResponseBase:
    """``POST /api/prompts/templates/<id>/versions/<vid>/try/``: the editor's streamed test
    run of any version, as a sample student of the course would get it (course staff)."""
    return await _streamed(request, template_id=template_id, version_id=version_id)


async def _streamed(
    request: HttpRequest, *, template_id: int, version_id: int | None
) -> HttpResponseBase:
    """``POST /api/prompts/templates/<id>/run/`` with ``{"inputs", "history"?,
    "follow_up"?}``: the answer as SSE (OpenAI chunks, then ``{"caipi": {"html"}}``
    events). Refusals as JSON in OpenAI's error shape: 401, 403 (policy not accepted,
    another course, lecturer-set fields), 404 (draft), 400 (inputs, with ``problems``),
    429 (quota, with when it resets), 503."""
    try:
        user = await request.auser()
        if not user.is_authenticated:
            raise NotAuthenticated(_("Sign in to run templates."))
        payload = parse_body(request.body, limit=settings.GATEWAY_MAX_BODY_BYTES)
        prepared = await sync_to_async(_prepare)(user, template_id, version_id, payload, request)
        principal = await aprincipal_for_user(
            user_id=user.pk, course_id=prepared.template.course_id
        )
        chunks = await relay_chat(
            principal,
            prepared.body,
            affinity_key=f"template:{prepared.version.pk}",
            template_version_id=prepared.version.pk,
        )
    except ApplicationError as exc:
        return error_response(exc)
    except orjson.JSONDecodeError:
        return error_response(InvalidRequest(_("The request body is not valid JSON.")))
    response = StreamingHttpResponse(
        rendered(chunks, prepared), content_type="text/event-stream; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _prepare(
    user: Any, template_id: int, version_id: int | None, payload: Any, request: HttpRequest
) -> PreparedRun:
    """Policy check and preparation in one thread hop (each hop costs time to first token)."""
    if not policy_accepted(user=user):
        raise PolicyNotAccepted(_("Accept the usage policy first."))
    if version_id is None:
        return run_prepare(user=user, template_id=template_id, payload=payload, request=request)
    return try_prepare(
        user=user, template_id=template_id, version_id=version_id, payload=payload,
        request=request,
    )  # fmt: skip


def template_usage(*, course: Course) -> list[dict[str, object]]:
    """Per template of the course: runs, students reached (from the runs) and tokens (from
    the usage records of its versions). Counts only, never texts."""
    counts = prompt_selectors.usage_by_template(course=course)
    versions = dict(
        TemplateVersion.objects.filter(template__course=course).values_list("pk", "template_id")
    )
    tokens: dict[int, dict[str, int]] = {}
    rows = (
        UsageRecord.objects.filter(template_version_id__in=list(versions))  # never NULL here
        .values("template_version_id")
        .annotate(
            calls=Count("id"),
            prompt=Coalesce(Sum("prompt_tokens"), 0),
            completion=Coalesce(Sum("completion_tokens"), 0),
        )
    )
    for row in rows:
        template_id = versions[row["template_version_id"] or 0]
        entry = tokens.setdefault(template_id, {"calls": 0, "tokens": 0})
        entry["calls"] += row["calls"]
        entry["tokens"] += row["prompt"] + row["completion"]
    ids = set(counts) | set(tokens)
    return [
        {
            "template_id": template_id,
            "runs": counts.get(template_id, {}).get("runs", 0),
            "students": counts.get(template_id, {}).get("students", 0),
            "calls": tokens.get(template_id, {}).get("calls", 0),
            "tokens": tokens.get(template_id, {}).get("tokens", 0),
        }
        for template_id in sorted(ids)
    ]


@require_GET
def prompt_usage_api(request: HttpRequest, course_id: int) -> JsonResponse:
    """``GET /api/prompts/courses/<id>/usage/``: ``template_usage`` for course staff."""
    course = get_object_or_404(Course, pk=course_id)
    try:
        require(request.user, COURSE_VIEW_USAGE, course)
    except ApplicationError as exc:
        return error_response(exc)
    return JsonResponse({"templates": template_usage(course=course)})
