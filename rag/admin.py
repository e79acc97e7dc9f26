"""Admin pages of the rag app: documents (read-mostly), jobs and their files."""

from __future__ import annotations

from django.contrib import admin

from rag.models import CourseIndex, Document, IngestionFile, IngestionJob, QuestionDay


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "course",
        "kind",
        "origin",
        "week",
        "visible",
        "chunk_count",
        "citations",
    )
    list_filter = ("kind", "origin", "visible")
    search_fields = ("title", "filename", "course__label")
    readonly_fields = ("content_hash", "chunk_count", "embedding_model", "citations", "source_key")


class IngestionFileInline(admin.TabularInline):
    model = IngestionFile
    fields = ("name", "status", "error", "document")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(IngestionJob)
class IngestionJobAdmin(admin.ModelAdmin):
    list_display = ("pk", "course", "source", "status", "progress", "created_at")
    list_filter = ("status", "source")
    inlines = [IngestionFileInline]


@admin.register(CourseIndex)
class CourseIndexAdmin(admin.ModelAdmin):
    list_display = ("course", "embedding_model", "version", "context_tokens", "updated_at")
    fields = ("course", "embedding_model", "version", "context_tokens")
    readonly_fields = ("course", "embedding_model", "version")


@admin.register(QuestionDay)
class QuestionDayAdmin(admin.ModelAdmin):
    list_display = ("course", "day", "asked", "unanswered")
