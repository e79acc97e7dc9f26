"""The live preview, test runs and batch runs over REST.

Test and batch runs answer ``202`` with a status row and a ``Location`` to poll; the work
runs queued (see ``prompts.registry``), so the page shows progress and never waits on a
model inside a request.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from caipi.core.jsonbody import BoundedJSONParser
from caipi.core.models import Course
from caipi.core.permissions import require
from prompts import selectors, services
from prompts.apis.outputs import BatchOutput, ProblemOutput, TestRunOutput
from prompts.apis.templates import ContentInput
from prompts.context import context_build, sample_student
from prompts.models import BatchSource
from prompts.permissions import COURSE_MANAGE_PROMPTS
from prompts.rendering import RenderRefused, render_prompts
from prompts.services.validation import content_check
from prompts.variables import TemplateInvalid, inputs_clean


class PreviewApi(APIView):
    """``POST {"content", "inputs"}``: the problems of unsaved content, and the prompts it
    renders for a sample student of the real course (the editor's live preview)."""

    class Input(serializers.Serializer):
        content = ContentInput()
        inputs = serializers.DictField(default=dict)

    @extend_schema(
        request=Input,
        responses=inline_serializer(
            "Preview",
            {
                "problems": ProblemOutput(many=True),
                "system": serializers.CharField(allow_null=True),
                "user": serializers.CharField(allow_null=True),
                "sample_student": serializers.CharField(),
            },
        ),
    )
    def post(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        require(request.user, COURSE_MANAGE_PROMPTS, course)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        student = sample_student(course)
        answer: dict[str, Any] = {
            "problems": [],
            "system": None,
            "user": None,
            "sample_student": str(student.display_name or student),
        }
        try:
            checked = content_check(
                data.validated_data["content"], actor=request.user, course=course
            )
            inputs = inputs_clean(checked.specs, data.validated_data["inputs"])
        except TemplateInvalid as exc:
            answer["problems"] = [p.as_dict() for p in exc.problems]
            return Response(answer)
        context = context_build(
            course=course, user=student, inputs=inputs, request=request, role="learner"
        )
        try:
            prompts = render_prompts(
                system_prompt=checked.fields["system_prompt"],
                user_prompt=checked.fields["user_prompt"],
                engine=checked.fields["engine"],
                specs=checked.specs,
                context=context,
            )
        except RenderRefused as exc:
            answer["problems"] = [
                {"field": "", "message": exc.message, "line": None, "column": None}
            ]
            return Response(answer)
        return Response({**answer, "system": prompts.system, "user": prompts.user})


class TestRunsApi(APIView):
    """``POST {"version_id"}``: run that version's test cases on its model (202)."""

    class Input(serializers.Serializer):
        version_id = serializers.IntegerField()

    @extend_schema(request=Input, responses={202: TestRunOutput})
    def post(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.version_of(template, data.validated_data["version_id"])
        run = services.testrun_create(actor=request.user, version=version)
        location = reverse("prompts:api_test_run", args=[run.pk])
        return Response(TestRunOutput(run).data, status=202, headers={"Location": location})


class TestRunDetailApi(APIView):
    """``GET``: a test run's progress and, case by case, its answers and checks."""

    @extend_schema(responses=TestRunOutput)
    def get(self, request: Request, run_id: int) -> Response:
        run = selectors.testrun_get(user=request.user, run_id=run_id)
        return Response(TestRunOutput(run).data)


class BatchesApi(APIView):
    """``POST`` a CSV file (``file``, multipart) or ``{"source": "roster"}``: run the
    published version (or ``version_id``) over every row or student, as queued work (202).
    ``GET``: the template's recent batches."""

    parser_classes = [MultiPartParser, FormParser, BoundedJSONParser]

    class Input(serializers.Serializer):
        # "source" also names a Field attribute; as a field it is what the API calls it.
        source = serializers.ChoiceField(  # type: ignore[assignment]
            choices=BatchSource.choices, default=BatchSource.CSV
        )
        version_id = serializers.IntegerField(required=False)
        file = serializers.FileField(required=False)

    @extend_schema(responses=BatchOutput(many=True))
    def get(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        return Response(
            {"batches": BatchOutput(selectors.batch_list(template=template), many=True).data}
        )

    @extend_schema(request=Input, responses={202: BatchOutput})
    def post(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        version_id = data.validated_data.get("version_id") or template.published_version_id
        version = services.version_of(template, version_id)
        rows = None
        if data.validated_data["source"] == BatchSource.CSV:
            upload = data.validated_data.get("file")
            if upload is None:
                raise TemplateInvalid("Choose a CSV file.", [])
            text = upload.read(services.runs.MAX_CSV_BYTES + 1).decode("utf-8-sig", "replace")
            rows = services.batch_rows_from_csv(text, services.specs_of(version))
        batch = services.batch_create(
            actor=request.user, template=template, version=version,
            source=data.validated_data["source"], rows=rows,
        )  # fmt: skip
        location = reverse("prompts:api_batch", args=[batch.pk])
        return Response(BatchOutput(batch).data, status=202, headers={"Location": location})


class BatchDetailApi(APIView):
    """``GET``: a batch's progress."""

    @extend_schema(responses=BatchOutput)
    def get(self, request: Request, batch_id: int) -> Response:
        return Response(BatchOutput(selectors.batch_get(user=request.user, batch_id=batch_id)).data)


class BatchCancelApi(APIView):
    """``POST``: stop a batch; rows not yet run are not run."""

    @extend_schema(request=None, responses=BatchOutput)
    def post(self, request: Request, batch_id: int) -> Response:
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        return Response(BatchOutput(services.batch_cancel(actor=request.user, batch=batch)).data)


def _cell(value: object) -> object:
    """A CSV cell that a spreadsheet will not run as a formula (answers are untrusted)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class BatchResultsApi(APIView):
    """``GET``: the results as CSV: the inputs, the answer or error, tokens per row."""

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request: Request, batch_id: int) -> HttpResponse:
        batch = selectors.batch_get(user=request.user, batch_id=batch_id)
        names = [spec.name for spec in services.specs_of(batch.version)]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            [
                "row",
                "label",
                *names,
                "status",
                "answer",
                "error",
                "prompt_tokens",
                "completion_tokens",
            ]
        )
        for item in batch.items.all():
            writer.writerow(
                [_cell(v) for v in (
                    item.position + 1, item.label, *(item.inputs.get(n, "") for n in names),
                    item.status, item.answer, item.error, item.prompt_tokens,
                    item.completion_tokens,
                )]
            )  # fmt: skip
        response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="batch-{batch.pk}.csv"'
        return response
