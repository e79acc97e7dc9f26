"""Admin pages of the prompts app: templates with their versions (read-only: versions are
immutable), the site library's approvals, test runs, batches and the site settings."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from prompts.models import (
    BatchRun,
    LibraryState,
    PromptSettings,
    Template,
    TemplateVersion,
    TestRun,
)


class VersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ("number", "author", "created_at", "note", "model", "engine")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "course", "state", "published_version", "library_state", "updated_at")
    list_filter = ("state", "library_state", "audience")
    search_fields = ("name", "course__title", "course__label")
    readonly_fields = ("published_version", "copied_from", "created_by", "created_at", "updated_at")
    inlines = [VersionInline]
    actions = ["approve_for_library"]

    @admin.action(description="Approve for the site library")
    def approve_for_library(self, request: HttpRequest, queryset: Any) -> None:
        queryset.filter(course__isnull=True).update(library_state=LibraryState.APPROVED)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    list_display = ("template", "number", "author", "created_at", "model")
    search_fields = ("template__name",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(TestRun)
class TestRunAdmin(admin.ModelAdmin):
    list_display = ("version", "status", "done", "total", "passed", "created_at")
    list_filter = ("status",)


@admin.register(BatchRun)
class BatchRunAdmin(admin.ModelAdmin):
    list_display = ("template", "source", "status", "done", "total", "failed", "created_at")
    list_filter = ("status", "source")
    exclude = ()


@admin.register(PromptSettings)
class PromptSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "require_green_tests", "judge_model")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not PromptSettings.objects.exists()
