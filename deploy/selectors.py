"""Reads of models and endpoints, including the routing table the gateway caches."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from deploy.models import (
    LIVE_INSTANCE_STATES,
    CalendarWarmWindow,
    Deployment,
    Endpoint,
    EndpointState,
    Instance,
    Model,
)

ROUTING_VERSION_KEY = "deploy:routing_version"


@dataclass(frozen=True, slots=True)
class EndpointRoute:
    """What the relay needs of one endpoint: plain values, safe to share across tasks."""

    id: int
    base_url: str
    token: str = ""
    weight: int = 1
    state: str = "ready"
    health_path: str = "/health"
    created: float = 0.0  # unix time the endpoint was registered (start-up estimates)


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """What the relay needs of one model and its endpoints."""

    name: str
    served_name: str
    kind: str = "chat"
    default_params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    created: int = 0
    endpoints: tuple[EndpointRoute, ...] = ()
    id: int = 0
    # True when a deployment starts instances on demand (scale from zero): a call for it
    # waits in the gateway's queue even while it has no endpoint at all.
    startable: bool = False


def model_list(*, enabled_only: bool = False, kind: str | None = None) -> QuerySet[Model]:
    """All models by name (only enabled ones, or of one kind, on request)."""
    models = Model.objects.all()
    if kind is not None:
        models = models.filter(kind=kind)
    return models.filter(enabled=True) if enabled_only else models


def model_get(*, name: str) -> Model | None:
    """The model with this public name, or None."""
    return Model.objects.filter(name=name).first()


def endpoint_list(*, model: Model | None = None) -> QuerySet[Endpoint]:
    """Endpoints (of one model, or all), with their model loaded."""
    endpoints = Endpoint.objects.select_related("model")
    return endpoints.filter(model=model) if model is not None else endpoints


def _route(endpoint: Endpoint) -> EndpointRoute:
    return EndpointRoute(
        id=endpoint.id,
        base_url=endpoint.base_url,
        token=endpoint.token,
        weight=endpoint.weight,
        state=endpoint.state,
        health_path=endpoint.health_path,
        created=endpoint.created_at.timestamp(),
    )


def endpoint_routes_to_poll() -> list[EndpointRoute]:
    """Every endpoint whose health is worth polling (all but failed ones), as routes."""
    endpoints = Endpoint.objects.exclude(state=EndpointState.FAILED).order_by("id")
    return [_route(e) for e in endpoints]


def routing_table() -> dict[str, ModelRoute]:
    """Every enabled model with all its endpoints (any state), keyed by public name; a
    model is *startable* when an enabled deployment may start an instance of it.

    Three queries; the gateway calls this in the background, never on the hot path.
    """
    routes: dict[int, list[EndpointRoute]] = {}
    for e in Endpoint.objects.filter(model__enabled=True).order_by("id"):
        routes.setdefault(e.model_id, []).append(_route(e))
    startable = set(
        Deployment.objects.filter(enabled=True, max_instances__gt=0).values_list(
            "model_id", flat=True
        )
    )
    return {
        m.name: ModelRoute(
            name=m.name,
            served_name=m.served_name,
            kind=m.kind,
            default_params=dict(m.default_params or {}),
            description=m.description,
            created=int(m.created_at.timestamp()),
            endpoints=tuple(routes.get(m.id, ())),
            id=m.id,
            startable=m.id in startable,
        )
        for m in Model.objects.filter(enabled=True)
    }


def routing_version() -> int:
    """A number that changes whenever models or endpoints change (0 if never set)."""
    return int(cache.get(ROUTING_VERSION_KEY, 0))


def deployment_list() -> QuerySet[Deployment]:
    """Every deployment with its model, by model name."""
    return Deployment.objects.select_related("model").order_by("model__name")


def deployment_documents() -> dict[str, Any]:
    """All deployments as one ``deploy apply`` document (``{"models": [...]}``)."""
    from deploy.reconciler import spec_of

    return {"models": [spec_of(d).as_document() for d in deployment_list()]}


def instance_list(*, deployment: Deployment, live_only: bool = False) -> QuerySet[Instance]:
    """A deployment's instances, newest first (only live ones on request)."""
    instances = deployment.instances.select_related("endpoint").order_by("-id")
    return instances.filter(state__in=LIVE_INSTANCE_STATES) if live_only else instances


def live_instance_targets() -> list[Instance]:
    """Every live instance with a known URL (for Prometheus service discovery)."""
    return list(
        Instance.objects.filter(state__in=LIVE_INSTANCE_STATES)
        .exclude(url="")
        .select_related("deployment__model")
        .order_by("id")
    )


def calendar_window_now(*, model_id: int, now: datetime.datetime) -> CalendarWarmWindow | None:
    """The course calendar window the model is inside at ``now`` (the one ending last), or
    None."""
    windows = CalendarWarmWindow.objects.filter(
        model_id=model_id, starts_at__lte=now, ends_at__gt=now
    ).select_related("course")
    return windows.order_by("-ends_at", "id").first()


def calendar_windows_upcoming(
    *, now: datetime.datetime, model_id: int | None = None, limit: int = 20
) -> list[CalendarWarmWindow]:
    """Calendar warm windows not over yet, soonest first, with model and course."""
    windows = CalendarWarmWindow.objects.filter(ends_at__gt=now).select_related("model", "course")
    if model_id is not None:
        windows = windows.filter(model_id=model_id)
    return list(windows.order_by("starts_at", "id")[:limit])


def operations_overview(*, since: datetime.datetime) -> list[dict[str, Any]]:
    """Per deployment: live instances with their last health snapshot (state, running,
    waiting, KV cache), the calls waiting in CAIPI, decisions since ``since`` (oldest
    first, for the chart; newest ten for the list) and the five latest failures."""
    from deploy.demand import demand_waiting
    from deploy.health import health_read

    rows = []
    for deployment in deployment_list():
        live = list(instance_list(deployment=deployment, live_only=True))
        health = health_read([i.endpoint_id for i in live if i.endpoint_id])
        decisions = list(deployment.decisions.filter(at__gte=since).order_by("at", "id"))
        rows.append(
            {
                "deployment": deployment,
                "name": deployment.model.name,
                "instances": [(i, health.get(i.endpoint_id or 0)) for i in live],
                "waiting": demand_waiting(model_id=deployment.model_id),
                "chart_points": [(d.at, d.current, d.desired, d.reason) for d in decisions],
                "decisions": decisions[::-1][:10],
                "failures": list(deployment.instances.filter(state="failed").order_by("-id")[:5]),
                "warm_ups": calendar_windows_upcoming(
                    now=timezone.now(), model_id=deployment.model_id, limit=5
                ),
            }
        )
    return rows
