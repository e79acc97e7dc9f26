"""REST API of the rag app: one thin view per operation, session-authenticated.

Permissions come from ``caipi.core.permissions`` (inside services and selectors); the core
exception handler turns refusals into OpenAI-shaped errors with the right status.
Uploads answer 202 with the ingestion job; the page polls the job for its progress.
"""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from caipi.core.errors import ApplicationError, PayloadTooLarge
from caipi.core.models import Course
from rag import retrieval, selectors, services
from rag.models import Document, IngestionJob
from rag.sources import source_for


class DocumentOutput(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = [
            "id",
            "title",
            "filename",
            "kind",
            "origin",
            "url",
            "section",
            "week",
            "visible",
            "available_from",
            "available_until",
            "pages",
            "chunk_count",
            "citations",
            "updated_at",
        ]


class JobOutput(serializers.ModelSerializer):
    class FileOutput(serializers.Serializer):
        name = serializers.CharField()
        status = serializers.CharField()
        error = serializers.CharField()
        document_id = serializers.IntegerField(allow_null=True)

    files = FileOutput(many=True)

    class Meta:
        model = IngestionJob
        fields = [
            "id",
            "status",
            "progress",
            "current",
            "error",
            "files",
            "created_at",
            "finished_at",
        ]


class DocumentListUploadApi(APIView):
    """GET: the course's documents (students: visible ones). POST: upload files (staff), 202."""

    parser_classes = [MultiPartParser]

    def get(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        documents = selectors.documents_for(course=course, user=request.user)
        return Response({"documents": DocumentOutput(documents, many=True).data})

    def post(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        uploads = request.FILES.getlist("files")
        if not uploads:
            raise ApplicationError(_("Choose at least one file to upload."))
        limit = settings.RAG_MAX_UPLOAD_BYTES
        for upload in uploads:
            if upload.size > limit:
                raise PayloadTooLarge(
                    _("“%(name)s” is larger than %(limit)d MB.")
                    % {"name": upload.name, "limit": limit // (1024 * 1024)}
                )
        job = services.documents_upload(
            course=course,
            files=[services.Upload(name=u.name, data=u.read()) for u in uploads],
            actor=request.user,
        )
        location = reverse("rag:api_job", args=[job.pk])
        return Response(JobOutput(job).data, status=202, headers={"Location": location})


class DocumentDetailApi(APIView):
    """DELETE: remove a document and its passages (staff of its course)."""

    def delete(self, request: Request, document_id: int) -> Response:
        document = selectors.document_get(document_id=document_id, user=request.user)
        services.document_delete(document=document, actor=request.user)
        return Response(status=204)


class JobDetailApi(APIView):
    """GET: an ingestion job's progress and per-file outcomes (staff of its course)."""

    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.job_get(job_id=job_id, user=request.user)
        return Response(JobOutput(job).data)


class SyncApi(APIView):
    """POST: sync the course's documents from its LMS (staff), 202 with the job."""

    class Input(serializers.Serializer):
        lms = serializers.ChoiceField(choices=["moodle"], default="moodle")

    def post(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        if source_for(data.validated_data["lms"], course) is None:
            raise ApplicationError(_("No LMS connection is set up for this course."))
        job = services.documents_sync(
            course=course, source=data.validated_data["lms"], actor=request.user
        )
        location = reverse("rag:api_job", args=[job.pk])
        return Response(JobOutput(job).data, status=202, headers={"Location": location})


class SearchApi(APIView):
    """POST: the passages of the course's notes that answer a question, for this user."""

    class Input(serializers.Serializer):
        query = serializers.CharField(max_length=2000)
        k = serializers.IntegerField(min_value=1, max_value=20, default=5)
        document_ids = serializers.ListField(
            child=serializers.IntegerField(), required=False, allow_null=True, default=None
        )
        section = serializers.CharField(max_length=300, required=False, allow_blank=True)
        week = serializers.IntegerField(min_value=0, max_value=99, required=False, allow_null=True)

    def post(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = retrieval.passages_search(
            course=course,
            user=request.user,
            query=values["query"],
            k=values["k"],
            filters=retrieval.Filters(
                document_ids=values["document_ids"],
                section=values.get("section") or None,
                week=values.get("week"),
            ),
        )
        return Response(
            {
                "query": result.query,
                "answered": result.answered,
                "passages": [p.as_dict() for p in result.passages],
            }
        )


class PassageApi(APIView):
    """GET: one passage with its document, heading, page and link (if the user may read it)."""

    def get(self, request: Request, chunk_id: int) -> Response:
        chunk = selectors.chunk_get(chunk_id=chunk_id, user=request.user)
        document = chunk.document
        return Response(
            {
                "chunk_id": chunk.pk,
                "document_id": document.pk,
                "document": document.title,
                "heading": chunk.heading,
                "page": chunk.page,
                "page_end": chunk.page_end,
                "url": document.url,
                "text": chunk.text,
                "page_url": reverse("rag:passage", args=[chunk.pk]),
            }
        )


class StatsApi(APIView):
    """GET: the course's document and question counts (staff)."""

    def get(self, request: Request, course_id: int) -> Response:
        course = get_object_or_404(Course, pk=course_id)
        stats = selectors.course_stats(course=course, user=request.user)
        return Response(
            {
                "documents": stats.documents,
                "chunks": stats.chunks,
                "embedding_model": stats.embedding_model,
                "questions_30d": stats.asked_30d,
                "unanswered_30d": stats.unanswered_30d,
                "most_cited": [
                    {"id": d.pk, "title": d.title, "citations": d.citations}
                    for d in stats.most_cited
                ],
                "unanswered_questions": stats.unanswered_texts,
            }
        )
