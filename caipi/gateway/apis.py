"""Session-authenticated APIs of the gateway: the course chat and queued jobs.

``POST /api/chat/`` streams a chat answer through the relay, from the course's lecture
notes when it has some (see ``caipi/gateway/notes.py``).
A Django async view (not part of /v1): it needs the session, CSRF protection and the
course membership check. The body is an OpenAI chat request plus ``course_id`` and an
optional ``conversation_id`` (used as the routing affinity key, for prefix-cache reuse).
Answers are SSE bytes exactly as on /v1, plus the answer rendered as safe HTML
(``caipi`` events, see ``transcript.with_answer_html``); refusals are JSON in OpenAI's
error shape.

``POST /api/jobs/`` submits a batch of chat requests (202 + Location), ``GET
/api/jobs/<id>/`` reports its progress and, when finished, its results.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from caipi.core.auth import request_user
from caipi.core.errors import ApplicationError, NotAuthenticated
from caipi.core.models import Course
from caipi.core.permissions import require
from caipi.gateway import notes, selectors, services
from caipi.gateway.permissions import COURSE_USE_ASSISTANT
from caipi.gateway.relay import relay_chat
from caipi.gateway.transcript import transcribed, with_answer_html
from caipi.gateway.validation import InvalidRequest, parse_body
from caipi.governance import selectors as governance_selectors
from caipi.governance.policy import PolicyNotAccepted
from caipi.governance.principal import aprincipal_for_user
from caipi.governance.services import conversation_append, conversation_open

logger = logging.getLogger(__name__)


def error_response(exc: ApplicationError) -> JsonResponse:
    response = JsonResponse(exc.as_openai(), status=exc.status)
    if "retry_after" in exc.extra:
        response["Retry-After"] = str(int(exc.extra["retry_after"]))
    return response


@require_POST
async def chat_api(request: HttpRequest) -> HttpResponseBase:
    """Stream a chat answer for a course member; 401/403/400/404/429/503 as on /v1."""
    try:
        user = await request.auser()
        if not user.is_authenticated:
            raise NotAuthenticated(_("Sign in to use the course chat."))
        body = parse_body(request.body, limit=settings.GATEWAY_MAX_BODY_BYTES)
        course_id = body.pop("course_id", None)
        if not isinstance(course_id, int) or isinstance(course_id, bool):
            raise InvalidRequest(_("'course_id' must be the id of your course."), param="course_id")
        conversation = body.pop("conversation_id", None)
        keeps = await sync_to_async(_may_chat)(user, course_id)
        principal = await aprincipal_for_user(user_id=user.pk, course_id=course_id)
        affinity = f"conversation:{conversation}" if conversation else None
        turn = await notes.notes_turn(
            user=user, course_id=course_id, principal=principal, body=body
        )
        if turn.has_documents and not turn.answered:
            return _sse(notes.not_in_notes(str(body.get("model", ""))))
        chunks = await relay_chat(principal, turn.body, affinity_key=affinity)
        chunks = (
            notes.with_citations(chunks, turn) if turn.answered else notes.without_notes(chunks)
        )
        chunks = with_answer_html(chunks)  # Markdown rendered safely, as on the run page
    except ApplicationError as exc:
        return error_response(exc)
    except orjson.JSONDecodeError:
        return error_response(InvalidRequest(_("The request body is not valid JSON.")))
    kept_id = None
    if keeps:
        kept_id = await sync_to_async(conversation_open)(
            user_id=user.pk, course_id=course_id, conversation_id=conversation
        )
        chunks = _kept(chunks, conversation_id=kept_id, body=body)
    response = _sse(chunks)
    if kept_id is not None:
        response["X-Conversation-Id"] = str(kept_id)
    return response


def _sse(chunks: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _may_chat(user: Any, course_id: int) -> bool:
    """Refuse unless ``user`` may use the course's assistant and accepted the usage policy
    (one thread hop for the three reads); True when the course keeps conversations."""
    require(user, COURSE_USE_ASSISTANT, Course.objects.filter(pk=course_id).first())
    if not governance_selectors.policy_accepted(user=user):
        raise PolicyNotAccepted(_("Accept the usage policy first."))
    return governance_selectors.course_keeps_conversations(course_id=course_id)


def _kept(
    chunks: AsyncIterator[bytes], *, conversation_id: int, body: dict
) -> AsyncIterator[bytes]:
    """The stream, kept as the conversation's next turn when it ends (opted-in courses only)."""
    messages = body.get("messages") or [{}]
    last = messages[-1] if isinstance(messages[-1], dict) else {}
    question = str(last.get("content", ""))

    async def keep(answer: str) -> None:
        await sync_to_async(conversation_append)(
            conversation_id=conversation_id, question=question, answer=answer
        )

    return transcribed(chunks, keep)


class JobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField()
    status = serializers.CharField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()


class JobSubmitApi(APIView):
    """``POST /api/jobs/``: 202 with the job and its Location; the client polls it."""

    class InputSerializer(serializers.Serializer):
        model = serializers.CharField()
        requests = serializers.ListField(child=serializers.DictField(), min_length=1)
        course_id = serializers.IntegerField(required=False, allow_null=True, default=None)

    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        course_id = data.validated_data["course_id"]
        if course_id is not None:
            course = get_object_or_404(Course, pk=course_id)
            require(request.user, COURSE_USE_ASSISTANT, course)
        job = services.job_submit(user=request_user(request), **data.validated_data)
        location = reverse("gateway_job", args=[job.pk])
        return Response(JobOutput(job).data, status=202, headers={"Location": location})


class JobDetailApi(APIView):
    """``GET /api/jobs/<id>/``: progress; results once finished, until ``results_kept_until``
    (GATEWAY_JOB_RESULT_HOURS after the end). Only its creator sees it."""

    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.job_get(job_id=job_id, user=request_user(request))
        answer = dict(JobOutput(job).data)
        if job.is_finished:
            answer["results"] = job.results  # [] once past results_kept_until
            if job.finished_at is not None:
                kept = timedelta(hours=settings.GATEWAY_JOB_RESULT_HOURS)
                answer["results_kept_until"] = (job.finished_at + kept).isoformat()
        return Response(answer)
