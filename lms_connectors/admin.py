"""Admin pages: manual registration of platforms and deployments; keys, contexts, identities."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from lms_connectors.models import (
    Deployment,
    LtiContext,
    LtiIdentity,
    LtiResourceLink,
    Platform,
    ToolKey,
)


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 1


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    """Manual registration: copy these values from Moodle's tool configuration details."""

    list_display = ("__str__", "issuer", "client_id", "method", "is_active", "setup_link")
    list_filter = ("method", "is_active")
    search_fields = ("issuer", "client_id", "name")
    inlines = [DeploymentInline]
    fieldsets = (
        (None, {"fields": ("name", "is_active", "method", "product_family")}),
        (
            "From the LMS (Moodle: Manage tools > the tool > View configuration details)",
            {
                "fields": (
                    "issuer",
                    "client_id",
                    "auth_login_url",
                    "auth_token_url",
                    "key_set_url",
                    "auth_audience",
                )
            },
        ),
    )

    @admin.display(description="Values for the LMS")
    def setup_link(self, obj: Platform) -> str:
        return format_html('<a href="{}">show</a>', reverse("lti_setup"))


@admin.register(ToolKey)
class ToolKeyAdmin(admin.ModelAdmin):
    """CAIPI's signing keys. Rotate with ``manage.py lti_keys rotate``; never edited here."""

    list_display = ("kid", "created_at", "retired_at")
    fields = ("kid", "public_pem", "created_at", "retired_at")
    readonly_fields = fields

    def has_add_permission(self, request: Any) -> bool:
        return False


@admin.register(LtiContext)
class LtiContextAdmin(admin.ModelAdmin):
    list_display = ("course", "platform", "context_id", "roster_synced_at")
    search_fields = ("context_id", "course__title", "course__label")
    raw_id_fields = ("course",)


@admin.register(LtiIdentity)
class LtiIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "issuer", "last_launch_at")
    search_fields = ("user__username", "issuer")
    raw_id_fields = ("user",)


@admin.register(LtiResourceLink)
class LtiResourceLinkAdmin(admin.ModelAdmin):
    list_display = ("__str__", "context", "target", "accepts_scores")
    search_fields = ("resource_link_id", "title")
