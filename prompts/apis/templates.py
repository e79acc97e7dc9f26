"""Templates and versions over REST: list, create, read, save versions, publish, diff,
copy, library, import/export and the live preview. Thin views: the services and selectors
decide, ``caipi.core.permissions`` answers who may."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.text import slugify
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from caipi.core.models import Course
from caipi.core.permissions import SITE_ADMIN, can, require
from prompts import selectors, services
from prompts.apis.outputs import (
    RunnableOutput,
    TemplateOutput,
    VersionOutput,
    VersionSummaryOutput,
    runnable_data,
)
from prompts.diff import versions_diff
from prompts.models import Audience, Template
from prompts.permissions import TEMPLATE_EDIT

VERSION_FIELDS = (
    "engine", "system_prompt", "user_prompt", "variables", "model", "params", "use_notes",
    "notes_count", "starters", "tests",
)  # fmt: skip


class ContentInput(serializers.Serializer):
    """A version's content; checked in depth by the services (problems with places)."""

    engine = serializers.ChoiceField(choices=["plain", "logic"], default="plain")
    system_prompt = serializers.CharField(allow_blank=True, default="", trim_whitespace=False)
    user_prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)
    variables = serializers.ListField(child=serializers.JSONField(), default=list)
    model = serializers.CharField(allow_blank=True)
    params = serializers.DictField(default=dict)
    use_notes = serializers.BooleanField(default=False)
    notes_count = serializers.IntegerField(default=5)
    starters = serializers.ListField(child=serializers.CharField(), default=list)
    tests = serializers.ListField(child=serializers.JSONField(), default=list)


class CourseTemplatesApi(APIView):
    """``GET`` the course's templates (staff: all but archived; students: published ones);
    ``POST`` a new draft with its first version (staff)."""

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(allow_blank=True, default="")
        audience = serializers.ChoiceField(choices=Audience.choices, default=Audience.LEARNERS)
        note = serializers.CharField(max_length=500, allow_blank=True, default="")
        content = ContentInput()

    @extend_schema(responses=TemplateOutput(many=True))
    def get(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        templates = selectors.template_list_for_course(user=request.user, course=course)
        return Response({"templates": TemplateOutput(templates, many=True).data})

    @extend_schema(request=Input, responses={201: TemplateOutput})
    def post(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        template = services.template_create(actor=request.user, course=course, **fields)
        return Response(TemplateOutput(template).data, status=201)


class TemplateDetailApi(APIView):
    """``GET`` a template: staff get it with its versions, students the run form of the
    published version. ``PATCH`` name, description, audience (staff)."""

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        description = serializers.CharField(allow_blank=True, default="")
        audience = serializers.ChoiceField(choices=Audience.choices)

    @extend_schema(responses={200: TemplateOutput, 404: OpenApiResponse(description="Unknown")})
    def get(self, request: Request, template_id: int) -> Response:
        template = get_object_or_404(Template, pk=template_id)
        if template.course_id and not can(request.user, TEMPLATE_EDIT, template):
            found, version = selectors.template_for_run(user=request.user, template_id=template_id)
            return Response(RunnableOutput(runnable_data(found, version)).data)
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        versions = selectors.versions_list(template=template)
        return Response(
            {
                **TemplateOutput(template).data,
                "versions": VersionSummaryOutput(versions, many=True).data,
            }
        )

    @extend_schema(request=Input, responses=TemplateOutput)
    def patch(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        template = services.template_update(
            actor=request.user, template=template, **data.validated_data
        )
        return Response(TemplateOutput(template).data)


class VersionsApi(APIView):
    """``GET`` every version of a template; ``POST`` saves the content as a new version."""

    class Input(ContentInput):
        note = serializers.CharField(max_length=500, allow_blank=True, default="")

    @extend_schema(responses=VersionSummaryOutput(many=True))
    def get(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        versions = selectors.versions_list(template=template)
        return Response({"versions": VersionSummaryOutput(versions, many=True).data})

    @extend_schema(request=Input, responses={201: VersionOutput})
    def post(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        content = dict(data.validated_data)
        note = content.pop("note")
        version = services.version_save(
            actor=request.user, template=template, content=content, note=note
        )
        return Response(VersionOutput(version).data, status=201)


class VersionDetailApi(APIView):
    """``GET`` one version with its prompts, settings and test cases (staff)."""

    @extend_schema(responses=VersionOutput)
    def get(self, request: Request, template_id: int, version_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        return Response(VersionOutput(services.version_of(template, version_id)).data)


class PublishApi(APIView):
    """``POST {"version_id"}``: pin that version for students (publish or roll back)."""

    class Input(serializers.Serializer):
        version_id = serializers.IntegerField()

    @extend_schema(request=Input, responses=TemplateOutput)
    def post(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.version_of(template, data.validated_data["version_id"])
        template = services.template_publish(actor=request.user, template=template, version=version)
        return Response(TemplateOutput(template).data)


class UnpublishApi(APIView):
    """``POST``: take the template off the course page (its versions stay)."""

    @extend_schema(request=None, responses=TemplateOutput)
    def post(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        template = services.template_unpublish(actor=request.user, template=template)
        return Response(TemplateOutput(template).data)


class ArchiveApi(APIView):
    """``POST``: unpublish and hide the template from the course's list."""

    @extend_schema(request=None, responses=TemplateOutput)
    def post(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        template = services.template_archive(actor=request.user, template=template)
        return Response(TemplateOutput(template).data)


class DiffApi(APIView):
    """``GET ?left=<version id>&right=<version id>``: a side-by-side comparison."""

    @extend_schema(
        responses=inline_serializer(
            "VersionDiff", {"texts": serializers.DictField(), "values": serializers.DictField()}
        )
    )
    def get(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        left = services.version_of(template, request.query_params.get("left"))
        right = services.version_of(template, request.query_params.get("right"))
        return Response(versions_diff(left.content(), right.content()))


class CopyApi(APIView):
    """``POST {"course_id"}``: a draft copy in another course the caller teaches."""

    class Input(serializers.Serializer):
        course_id = serializers.IntegerField()

    @extend_schema(request=Input, responses={201: TemplateOutput})
    def post(self, request: Request, template_id: int) -> Response:
        template = get_object_or_404(Template, pk=template_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        course = get_object_or_404(Course, pk=data.validated_data["course_id"])
        copy = services.template_copy(actor=request.user, template=template, course=course)
        return Response(TemplateOutput(copy).data, status=201)


class ExportApi(APIView):
    """``GET``: the template with every version as a JSON file to download."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, template_id: int) -> HttpResponse:
        template = get_object_or_404(Template, pk=template_id)
        data = services.template_export(actor=request.user, template=template)
        response = Response(data)
        filename = f"{slugify(template.name) or 'template'}.caipi.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class ImportApi(APIView):
    """``POST`` an export (JSON body): a new draft template in the course."""

    @extend_schema(request=OpenApiTypes.OBJECT, responses={201: TemplateOutput})
    def post(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        template = services.template_import(actor=request.user, course=course, data=request.data)
        return Response(TemplateOutput(template).data, status=201)


class LibraryApi(APIView):
    """``GET`` the site library (approved templates; admins also see proposals)."""

    @extend_schema(responses=TemplateOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(
            {"templates": TemplateOutput(selectors.library_list(user=request.user), many=True).data}
        )


class LibraryProposeApi(APIView):
    """``POST``: offer a copy of a course template to the site library."""

    @extend_schema(request=None, responses={201: TemplateOutput})
    def post(self, request: Request, template_id: int) -> Response:
        template = selectors.template_for_staff(user=request.user, template_id=template_id)
        entry = services.library_propose(actor=request.user, template=template)
        return Response(TemplateOutput(entry).data, status=201)


class LibraryDecisionApi(APIView):
    """``POST {"approve": true|false}``: an admin approves or removes a library proposal."""

    class Input(serializers.Serializer):
        approve = serializers.BooleanField()

    @extend_schema(request=Input, responses=TemplateOutput)
    def post(self, request: Request, template_id: int) -> Response:
        require(request.user, SITE_ADMIN)
        template = get_object_or_404(Template, pk=template_id, course__isnull=True)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        decided = services.library_decide(
            actor=request.user, template=template, approve=data.validated_data["approve"]
        )
        return Response(TemplateOutput(decided).data if decided else {"removed": True})
