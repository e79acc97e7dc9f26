"""Admin pages: manual registration of platforms and deployments; keys, contexts, identities."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from lms_connectors.keys import secret_encrypt
from lms_connectors.middleware import frame_ancestors_forget
from lms_connectors.models import (
    Deployment,
    LtiContext,
    LtiIdentity,
    LtiResourceLink,
    Platform,
    RegistrationInvite,
    ToolKey,
)
from lms_connectors.moodle.health import web_services_check
from lms_connectors.services import platform_retire, platforms_activate


class DeploymentInline(admin.TabularInline):
    model = Deployment
    extra = 1


def _https_by_default(field: Any, **kwargs: Any) -> Any:
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class PlatformForm(forms.ModelForm):
    """The platform, with its web service token entered in clear and stored encrypted."""

    ws_token = forms.CharField(
        label="Web service token",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Moodle: Site administration > Server > Web services > Manage tokens. "
        "Leave empty to keep the current token.",
    )

    class Meta:
        model = Platform
        formfield_callback = _https_by_default
        fields = (
            "name",
            "is_active",
            "method",
            "product_family",
            "issuer",
            "client_id",
            "auth_login_url",
            "auth_token_url",
            "key_set_url",
            "auth_audience",
            "ws_url",
        )


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    """Manual registration: copy these values from Moodle's tool configuration details."""

    form = PlatformForm

    list_display = ("__str__", "issuer", "client_id", "method", "status", "setup_link")
    list_filter = ("method", "is_active", ("retired_at", admin.EmptyFieldListFilter))
    search_fields = ("issuer", "client_id", "name")
    inlines = [DeploymentInline]
    actions = ["activate_selected", "retire_selected", "check_web_services"]
    readonly_fields = ("retired_at",)
    fieldsets = (
        (None, {"fields": ("name", "is_active", "retired_at", "method", "product_family")}),
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
        ("Moodle web services (lecture notes, course data)", {"fields": ("ws_url", "ws_token")}),
    )

    @admin.action(description="Activate selected registrations")
    def activate_selected(self, request: HttpRequest, queryset: QuerySet[Platform]) -> None:
        count = platforms_activate(platforms=queryset)
        self.message_user(request, f"{count} registration(s) activated.", messages.SUCCESS)

    @admin.action(description="Retire selected registrations")
    def retire_selected(self, request: HttpRequest, queryset: QuerySet[Platform]) -> None:
        for platform in queryset:
            platform_retire(platform=platform)
        self.message_user(request, f"{len(queryset)} registration(s) retired.", messages.SUCCESS)

    @admin.action(description="Check Moodle web services")
    def check_web_services(self, request: HttpRequest, queryset: QuerySet[Platform]) -> None:
        for platform in queryset:
            level, text = web_services_check(platform=platform)
            self.message_user(request, f"{platform}: {text}", level)

    def save_model(self, request: HttpRequest, obj: Platform, form: Any, change: bool) -> None:
        if form.cleaned_data.get("ws_token"):
            obj.ws_token_encrypted = secret_encrypt(form.cleaned_data["ws_token"].strip())
        super().save_model(request, obj, form, change)
        frame_ancestors_forget()  # an activation by hand takes effect at once

    def delete_model(self, request: HttpRequest, obj: Platform) -> None:
        super().delete_model(request, obj)
        frame_ancestors_forget()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Platform]) -> None:
        super().delete_queryset(request, queryset)
        frame_ancestors_forget()

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
    list_display = ("course", "issuer", "context_id", "platform", "roster_synced_at")
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


@admin.register(RegistrationInvite)
class RegistrationInviteAdmin(admin.ModelAdmin):
    """One-time registration URLs (generate them on /lti/setup/; only hashes are stored)."""

    list_display = ("__str__", "created_by", "expires_at", "used_at", "platform", "activate")
    readonly_fields = (
        "token_hash",
        "created_by",
        "created_at",
        "expires_at",
        "used_at",
        "platform",
    )

    def has_add_permission(self, request: Any) -> bool:
        return False
