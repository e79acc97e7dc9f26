"""Admin pages for models and endpoints. Writes go through deploy.services so that every
gateway process picks the change up (the routing version is bumped on commit)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from caipi.core.audit import audit
from deploy import services
from deploy.models import Endpoint, EndpointState, Model


class EndpointForm(forms.ModelForm):
    token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Bearer token sent to the engine. Leave empty to keep the current one.",
    )

    class Meta:
        model = Endpoint
        fields = ("model", "url", "weight", "token", "state")

    def clean_token(self) -> str:
        token = self.cleaned_data.get("token") or ""
        return token or (self.instance.token if self.instance.pk else "")


class EndpointInline(admin.TabularInline):
    model = Endpoint
    form = EndpointForm
    extra = 0


def _stored(obj: Model | Endpoint) -> dict[str, Any]:
    """The row as it is in the database, before the admin's change is saved."""
    return services.snapshot(type(obj).objects.get(pk=obj.pk))


def _audit_saved(
    request: HttpRequest, obj: Model | Endpoint, kind: str, before: dict[str, Any] | None
) -> None:
    action = f"{kind}.update" if before is not None else f"{kind}.create"
    after = services.snapshot(obj)
    audit(actor=request.user, action=action, target=obj, before=before, after=after)


@admin.register(Model)
class ModelAdmin(admin.ModelAdmin):
    list_display = ("name", "served_name", "kind", "enabled")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "served_name")
    inlines = [EndpointInline]

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        before = _stored(obj) if change else None
        super().save_model(request, obj, form, change)
        _audit_saved(request, obj, "model", before)
        services.routing_changed()  # on commit: after the inline endpoints are saved too

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        audit(actor=request.user, action="model.delete", target=obj, before=services.snapshot(obj))
        super().delete_model(request, obj)
        services.routing_changed()


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ("id", "model", "url", "weight", "state", "updated_at")
    list_filter = ("state", "model")
    actions = ["drain"]

    def save_model(self, request: HttpRequest, obj: Endpoint, form: Any, change: bool) -> None:
        before = _stored(obj) if change else None
        super().save_model(request, obj, form, change)
        _audit_saved(request, obj, "endpoint", before)
        services.routing_changed()

    def delete_model(self, request: HttpRequest, obj: Endpoint) -> None:
        services.endpoint_remove(endpoint=obj, actor=request.user)

    @admin.action(description="Drain: stop sending new calls")
    def drain(self, request: HttpRequest, queryset: Any) -> None:
        for endpoint in queryset.exclude(state=EndpointState.DRAINING):
            services.endpoint_drain(endpoint=endpoint, actor=request.user)
