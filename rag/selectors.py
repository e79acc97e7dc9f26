"""Reads of the rag app: documents a user may see, job progress, usage statistics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from caipi.core.errors import NotFound
from caipi.core.models import Course
from caipi.core.permissions import can, require
from rag.models import (
    Chunk,
    CourseIndex,
    Document,
    IngestionJob,
    QuestionDay,
    UnansweredQuestion,
    student_visible,
)
from rag.permissions import COURSE_MANAGE_DOCUMENTS, DOCUMENT_MANAGE, DOCUMENT_VIEW


def documents_for(*, course: Course, user: Any) -> QuerySet[Document]:
    """The course's documents this user may see: all for staff, visible ones for students."""
    require(user, DOCUMENT_VIEW, course)
    documents = Document.objects.filter(course=course)
    if not can(user, DOCUMENT_MANAGE, course):
        documents = documents.filter(student_visible())
    return documents


def document_get(*, document_id: int, user: Any) -> Document:
    """A document the user may see; NotFound otherwise (hidden ones are not revealed)."""
    document = Document.objects.filter(pk=document_id).select_related("course").first()
    if document is None or not can(user, DOCUMENT_VIEW, document):
        raise NotFound(_("No such document."))
    if not can(user, DOCUMENT_MANAGE, document) and not document.is_visible_to_students():
        raise NotFound(_("No such document."))
    return document


def chunk_get(*, chunk_id: int, user: Any) -> Chunk:
    """A passage the user may read (its document visible to them); NotFound otherwise."""
    chunk = Chunk.objects.filter(pk=chunk_id).select_related("document__course").first()
    if chunk is None:
        raise NotFound(_("No such passage."))
    document_get(document_id=chunk.document_id, user=user)
    return chunk


def chunk_neighbours(*, chunk: Chunk) -> tuple[Chunk | None, Chunk | None]:
    """The passages just before and after ``chunk`` in its document."""
    siblings = Chunk.objects.filter(document_id=chunk.document_id)
    before = siblings.filter(ordinal=chunk.ordinal - 1).first()
    after = siblings.filter(ordinal=chunk.ordinal + 1).first()
    return before, after


def job_get(*, job_id: int, user: Any) -> IngestionJob:
    """An ingestion job of a course the user manages documents in; NotFound otherwise."""
    job = IngestionJob.objects.filter(pk=job_id).select_related("course").first()
    if job is None or not can(user, COURSE_MANAGE_DOCUMENTS, job.course):
        raise NotFound(_("No such ingestion job."))
    return job


@dataclass(frozen=True)
class CourseStats:
    """What lecturers see: documents and passages, the most cited documents, and how many
    questions found nothing (texts only where the course keeps history)."""

    documents: int
    chunks: int
    embedding_model: str
    index_version: int
    asked_30d: int
    unanswered_30d: int
    most_cited: list[Document]
    unanswered_texts: list[str]


def course_stats(*, course: Course, user: Any) -> CourseStats:
    require(user, COURSE_MANAGE_DOCUMENTS, course)
    index = CourseIndex.objects.filter(course=course).first()
    since = timezone.localdate() - timedelta(days=30)
    days = QuestionDay.objects.filter(course=course, day__gte=since).aggregate(
        asked=Sum("asked"), unanswered=Sum("unanswered")
    )
    documents = Document.objects.filter(course=course)
    return CourseStats(
        documents=documents.count(),
        chunks=Chunk.objects.filter(course_id=course.pk).count(),
        embedding_model=index.embedding_model if index else "",
        index_version=index.version if index else 0,
        asked_30d=days["asked"] or 0,
        unanswered_30d=days["unanswered"] or 0,
        most_cited=list(documents.filter(citations__gt=0).order_by("-citations")[:10]),
        unanswered_texts=list(
            UnansweredQuestion.objects.filter(
                course=course, expires_at__gt=timezone.now()
            ).values_list("text", flat=True)[:20]
        ),
    )


def course_find(*, ref: str) -> Course | None:
    """A course by id or by label (command line)."""
    if ref.isdigit():
        return Course.objects.filter(pk=int(ref)).first()
    return Course.objects.filter(label=ref).first()
