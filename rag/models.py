"""Lecture notes as knowledge: documents, their passages, ingestion jobs and usage counts.

The passages' vectors live in Chroma (one collection per course, see ``vectorstore.py``);
their text, headings and pages live here too, so the lexical index, citations and
permission checks never depend on the vector store.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caipi.core.models import Course


class DocumentKind(models.TextChoices):
    """The file formats CAIPI reads."""

    PDF = "pdf", "PDF"
    DOCX = "docx", "Word (DOCX)"
    PPTX = "pptx", "PowerPoint (PPTX)"
    HTML = "html", "HTML"
    MARKDOWN = "markdown", "Markdown"
    TEXT = "text", _("Plain text")


class DocumentOrigin(models.TextChoices):
    """Where a document came from."""

    UPLOAD = "upload", _("Uploaded")
    MOODLE = "moodle", _("Synced from Moodle")
    PATH = "path", _("Command line")


class CourseIndex(models.Model):
    """A course's search index: which embedding model made its vectors, and its version.

    ``version`` grows whenever the course's passages change; in-process lexical indexes
    are keyed by it. ``context_tokens`` is the course's passage budget in the assistant's
    prompt (unset: the site default). A different ``embedding_model`` than the configured
    one means the vectors must be rebuilt (``rag reindex``) before dense search can use them.
    """

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="rag_index")
    embedding_model = models.CharField(max_length=200, blank=True)
    version = models.PositiveIntegerField(default=0)
    context_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Tokens of passages the assistant may put into the model's context for this "
        "course (fit it to the course's model). Empty: CAIPI_RAG_CONTEXT_TOKENS.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"index of {self.course} ({self.embedding_model or 'empty'}, v{self.version})"


def student_visible(now: datetime | None = None) -> Q:
    """Documents a student may retrieve now: visible in Moodle and inside availability dates."""
    now = now or timezone.now()
    return (
        Q(visible=True)
        & (Q(available_from__isnull=True) | Q(available_from__lte=now))
        & (Q(available_until__isnull=True) | Q(available_until__gt=now))
    )


class Document(models.Model):
    """One lecture-note document of a course (a file, a Moodle page or book chapter).

    ``source_key`` identifies it at its origin (an uploaded file's name, a Moodle
    activity and file) so a new version replaces the old one; ``content_hash`` (SHA-256
    of the bytes) tells whether it changed at all. ``visible`` and the availability dates
    mirror Moodle: students retrieve only what they may see there, staff see everything.
    """

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="rag_documents")
    title = models.CharField(max_length=300)
    filename = models.CharField(max_length=300)
    kind = models.CharField(max_length=20, choices=DocumentKind.choices)
    origin = models.CharField(
        max_length=20, choices=DocumentOrigin.choices, default=DocumentOrigin.UPLOAD
    )
    source_key = models.CharField(max_length=500)
    url = models.URLField(max_length=1000, blank=True, help_text="Link back to the LMS.")
    section = models.CharField(max_length=300, blank=True)
    week = models.PositiveSmallIntegerField(null=True, blank=True)
    visible = models.BooleanField(default=True)
    available_from = models.DateTimeField(null=True, blank=True)
    available_until = models.DateTimeField(null=True, blank=True)
    source_modified = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=200, blank=True)
    citations = models.PositiveIntegerField(default=0, help_text="Times the assistant cited it.")
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["week", "section", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["course", "source_key"], name="rag_document_unique_source"
            )
        ]

    def __str__(self) -> str:
        return self.title

    def is_visible_to_students(self, now: datetime | None = None) -> bool:
        return visible_to_students(
            self.visible, self.available_from, self.available_until, now or timezone.now()
        )


def visible_to_students(
    visible: bool, available_from: datetime | None, available_until: datetime | None, now: datetime
) -> bool:
    """``student_visible`` in Python, for a document's fields read as values."""
    return (
        visible
        and (available_from is None or available_from <= now)
        and (available_until is None or now < available_until)
    )


class Chunk(models.Model):
    """One passage of a document: the unit that is embedded, retrieved and cited.

    ``heading`` is the path of headings above it (``"Week 1 > Three kinds"``); ``page`` and
    ``page_end`` the pages (or slides) it spans, when the format has pages.
    """

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    course_id = models.BigIntegerField(db_index=True)
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    heading = models.CharField(max_length=500, blank=True)
    page = models.PositiveIntegerField(null=True, blank=True)
    page_end = models.PositiveIntegerField(null=True, blank=True)
    tokens = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["document_id", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="rag_chunk_unique_ordinal")
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"


class JobStatus(models.TextChoices):
    """Where an ingestion job is; ``succeeded`` even when single files failed."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Finished")
    FAILED = "failed", _("Failed")


class JobSource(models.TextChoices):
    """What an ingestion job reads: uploaded files, or a course's LMS (Moodle) content."""

    UPLOAD = "upload", _("Upload")
    SYNC = "sync", _("LMS sync")


class IngestionJob(models.Model):
    """Queued ingestion of uploaded files or of a sync, with progress (0..1) for the page.

    The worker running a job holds its ``claim`` and writes ``heartbeat_at`` every few
    seconds; a running job whose heartbeat stopped (its worker died) is put back in the
    queue, or failed after ``attempts`` reached the limit (``rag.jobs``).
    """

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="rag_jobs")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    source = models.CharField(max_length=20, choices=JobSource.choices, default=JobSource.UPLOAD)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    current = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    source_name = models.CharField(max_length=100, blank=True, help_text="Sync: the source.")
    claim = models.CharField(max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="rag_job_heartbeat")]

    def __str__(self) -> str:
        return f"ingestion {self.pk} ({self.course_id}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class FileStatus(models.TextChoices):
    """What happened to one file of an ingestion job."""

    QUEUED = "queued", _("Queued")
    INDEXED = "indexed", _("Indexed")
    UNCHANGED = "unchanged", _("Unchanged")
    EXPANDED = "expanded", _("Archive unpacked")
    REMOVED = "removed", _("Removed")
    FAILED = "failed", _("Failed")


class IngestionFile(models.Model):
    """One file of a job: its bytes until processed, then its outcome or the reason it failed."""

    job = models.ForeignKey(IngestionJob, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=500)
    data = models.BinaryField(null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=20, choices=FileStatus.choices, default=FileStatus.QUEUED)
    error = models.TextField(blank=True)
    document = models.ForeignKey(Document, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class QuestionDay(models.Model):
    """Per course and day: questions the assistant searched the notes for, and how many
    found nothing. Counts only; question texts are kept (``UnansweredQuestion``) only in
    courses that keep conversation history."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="rag_days")
    day = models.DateField()
    asked = models.PositiveIntegerField(default=0)
    unanswered = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["course", "day"], name="rag_questionday_unique")
        ]

    def __str__(self) -> str:
        return f"{self.course_id} {self.day}: {self.unanswered}/{self.asked} unanswered"


class UnansweredQuestion(models.Model):
    """A question the notes could not answer, kept only where the course keeps history,
    and only until the course's retention period ends (``expires_at``)."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="rag_unanswered")
    text = models.TextField()
    asked_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(help_text="Deleted after this (the course's retention).")

    class Meta:
        ordering = ["-asked_at"]

    def __str__(self) -> str:
        return self.text[:60]
