"""Admin pages of governance. Every change made here lands in the audit log."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse

from caipi.core.auth import request_user
from caipi.governance import selectors, services
from caipi.governance.audit import audit_record, audit_snapshot
from caipi.governance.models import (
    ApiKey,
    AuditEntry,
    CourseSettings,
    DataSubject,
    PolicyAcceptance,
    PolicyVersion,
    QuotaLimit,
    RoleModelAccess,
    UsageRecord,
)


class AuditedAdmin(admin.ModelAdmin):
    """Writes an audit entry with before/after for each save and delete."""

    audit_exclude: tuple[str, ...] = ()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = None
        if change:
            before = audit_snapshot(type(obj).objects.get(pk=obj.pk), exclude=self.audit_exclude)
        super().save_model(request, obj, form, change)
        action = f"{obj._meta.model_name}.{'update' if change else 'create'}"
        after = audit_snapshot(obj, exclude=self.audit_exclude)
        audit_record(actor=request.user, action=action, target=obj, before=before, after=after)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        before = audit_snapshot(obj, exclude=self.audit_exclude)
        audit_record(
            actor=request.user,
            action=f"{obj._meta.model_name}.delete",
            target=obj,
            before=before,
        )
        super().delete_model(request, obj)


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    list_display = ("prefix", "user", "name", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "user__username", "name")
    readonly_fields = ("prefix", "key_hash", "created_at", "revoked_at")
    audit_exclude = ("key_hash",)
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are minted by `manage.py apikeys create` or the keys page, shown once

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        for key in queryset:
            services.apikey_revoke(key=key, actor=request_user(request))
        messages.info(request, f"{queryset.count()} key(s) revoked.")


@admin.register(RoleModelAccess)
class RoleModelAccessAdmin(AuditedAdmin):
    list_display = ("role", "model_names", "updated_at")


@admin.register(QuotaLimit)
class QuotaLimitAdmin(AuditedAdmin):
    list_display = ("label", "size", "scope", "metric", "window", "managed_by")
    list_filter = ("scope", "metric", "window", "managed_by")
    raw_id_fields = ("user", "course", "key")


@admin.register(CourseSettings)
class CourseSettingsAdmin(AuditedAdmin):
    list_display = ("course", "keep_conversations", "retention_days", "exempt_roles")


class AcceptanceInline(admin.TabularInline):
    model = PolicyAcceptance
    extra = 0
    readonly_fields = ("user", "accepted_at", "channel")
    can_delete = False


@admin.register(PolicyVersion)
class PolicyVersionAdmin(AuditedAdmin):
    list_display = ("version", "published_at", "published_by", "accepted_by")
    readonly_fields = ("published_by",)
    inlines = [AcceptanceInline]

    @admin.display(description="accepted by")
    def accepted_by(self, obj: PolicyVersion) -> int:
        return obj.acceptances.count()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.published_by = obj.published_by or request.user
        super().save_model(request, obj, form, change)


@admin.register(PolicyAcceptance)
class PolicyAcceptanceAdmin(admin.ModelAdmin):
    list_display = ("user", "policy", "accepted_at", "channel")
    list_filter = ("policy", "channel")
    search_fields = ("user__username",)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_name", "action", "target_type", "target_repr")
    list_filter = ("action", "target_type")
    search_fields = ("actor_name", "target_repr", "action")


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "course",
        "role",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "outcome",
    )
    list_filter = ("model", "outcome", "role")


@admin.register(DataSubject)
class DataSubjectAdmin(ReadOnlyAdmin):
    list_display = ("username", "display_name", "email", "site_role")
    search_fields = ("username", "display_name", "email")
    actions = ["export_data", "delete_data"]

    @admin.action(description="Export everything held about the selected users (JSON)")
    def export_data(self, request: HttpRequest, queryset: Any) -> HttpResponse:
        data = {user.username: selectors.userdata_export(user=user) for user in queryset}
        for user in queryset:
            audit_record(actor=request.user, action="userdata.export", target=f"user #{user.pk}")
        response = HttpResponse(
            json.dumps(data, cls=DjangoJSONEncoder, indent=2), content_type="application/json"
        )
        response["Content-Disposition"] = 'attachment; filename="caipi-userdata.json"'
        return response

    @admin.action(description="Delete the selected users and their data (on request)")
    def delete_data(self, request: HttpRequest, queryset: Any) -> None:
        count = 0
        for user in list(queryset):
            services.userdata_delete(user=user, actor=request_user(request))
            count += 1
        messages.info(request, f"Deleted {count} user(s) and their data.")
