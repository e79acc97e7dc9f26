"""Admin pages for models and endpoints. Writes go through deploy.services so that every
gateway process picks the change up (the routing version is bumped on commit)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from caipi.core.audit import audit
from deploy import services
from deploy.models import Deployment, Endpoint, EndpointState, Instance, Model, ScalingDecision
from deploy.specs import Spec, SpecInvalid, spec_check, spec_parse


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


class DeploymentForm(forms.ModelForm):
    """Validated as a whole spec (``deploy.specs``), so the admin sees the same messages,
    naming the same fields, as ``deploy apply`` and the API."""

    class Meta:
        model = Deployment
        fields = (
            "model",
            "enabled",
            "engine",
            "engine_args",
            "gpus_per_instance",
            "launcher",
            "target",
            "min_instances",
            "max_instances",
            "scaling",
            "idle_seconds",
            "sleep_level",
            "startup_timeout",
            "warm_windows",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        model = data.get("model")
        if model is None:
            return data
        fields = {k: v for k, v in data.items() if k in Spec.__dataclass_fields__}
        document = {"name": model.name, "served_name": model.served_name, "deployment": fields}
        try:
            spec_check(spec_parse(document))
        except SpecInvalid as exc:
            for name, messages in exc.message_dict.items():
                field = name.removeprefix("deployment.").split(".")[0].split("[")[0]
                target = field if field in self.fields else None
                for message in messages:
                    self.add_error(target, f"{name}: {message}")
        return data


class InstanceInline(admin.TabularInline):
    model = Instance
    fields = ("state", "url", "gpus", "started_at", "ready_at", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-id",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    form = DeploymentForm
    list_display = ("model", "engine", "launcher", "min_instances", "max_instances", "enabled")
    list_filter = ("engine", "launcher", "enabled")
    readonly_fields = ("start_failures", "next_start_at")
    inlines = [InstanceInline]

    def save_model(self, request: HttpRequest, obj: Deployment, form: Any, change: bool) -> None:
        before = services.snapshot(Deployment.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        action = "deployment.update" if change else "deployment.create"
        audit(
            actor=request.user,
            action=action,
            target=obj,
            before=before,
            after=services.snapshot(obj),
        )


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    """Read-only: instances are the reconciler's; a failed one shows its log tail."""

    list_display = ("id", "deployment", "state", "url", "started_at", "ready_at")
    list_filter = ("state", "launcher")
    readonly_fields = [f.name for f in Instance._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ScalingDecision)
class ScalingDecisionAdmin(admin.ModelAdmin):
    list_display = ("at", "deployment", "current", "desired", "reason")
    list_filter = ("deployment",)
    readonly_fields = ("deployment", "at", "current", "desired", "reason", "signals")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
