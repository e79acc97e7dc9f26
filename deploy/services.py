"""Writes to models and endpoints. Every change bumps the routing version on commit, so
gateway processes reload their in-memory routing table within a second."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db import transaction

from deploy.models import Endpoint, EndpointState, Model, ModelKind
from deploy.selectors import ROUTING_VERSION_KEY

logger = logging.getLogger(__name__)


def _bump_routing_version() -> None:
    try:
        cache.incr(ROUTING_VERSION_KEY)
    except ValueError:  # not set yet (or evicted)
        cache.set(ROUTING_VERSION_KEY, 1, timeout=None)


def routing_changed() -> None:
    """Tell every gateway process to reload models and endpoints once this commits."""
    transaction.on_commit(_bump_routing_version)


@transaction.atomic
def model_create(
    *,
    name: str,
    served_name: str | None = None,
    kind: str = ModelKind.CHAT,
    default_params: dict[str, Any] | None = None,
    description: str = "",
    enabled: bool = True,
) -> Model:
    """Create a model; ``served_name`` defaults to ``name``. Raises ValidationError."""
    model = Model(
        name=name,
        served_name=served_name or name,
        kind=kind,
        default_params=default_params or {},
        description=description,
        enabled=enabled,
    )
    model.full_clean()
    model.save()
    routing_changed()
    logger.info("model %s created (served as %s, %s)", model.name, model.served_name, kind)
    return model


@transaction.atomic
def model_update(*, model: Model, **fields: Any) -> Model:
    """Change some of a model's fields (served_name, kind, default_params, enabled...)."""
    for name, value in fields.items():
        setattr(model, name, value)
    model.full_clean()
    model.save()
    routing_changed()
    return model


@transaction.atomic
def endpoint_add(
    *,
    model: Model,
    url: str,
    weight: int = 1,
    token: str = "",
    state: str = EndpointState.READY,
) -> Endpoint:
    """Register ``url`` as serving ``model``. Raises ValidationError (bad URL, duplicate)."""
    endpoint = Endpoint(model=model, url=url.rstrip("/"), weight=weight, token=token, state=state)
    endpoint.full_clean()
    endpoint.save()
    routing_changed()
    logger.info("endpoint %s added for %s at %s", endpoint.id, model.name, endpoint.url)
    return endpoint


@transaction.atomic
def endpoint_set_state(*, endpoint: Endpoint, state: str) -> Endpoint:
    """Move an endpoint to ``state`` (one of EndpointState)."""
    updated = Endpoint.objects.filter(pk=endpoint.pk).update(state=EndpointState(state))
    if updated:
        endpoint.state = state
        routing_changed()
    return endpoint


def endpoint_drain(*, endpoint: Endpoint) -> Endpoint:
    """Stop sending new calls to the endpoint; calls already running finish."""
    return endpoint_set_state(endpoint=endpoint, state=EndpointState.DRAINING)


@transaction.atomic
def endpoint_update(*, endpoint: Endpoint, **fields: Any) -> Endpoint:
    """Change an endpoint's url, weight, token or state."""
    for name, value in fields.items():
        setattr(endpoint, name, value)
    endpoint.full_clean()
    endpoint.save()
    routing_changed()
    return endpoint


@transaction.atomic
def endpoint_remove(*, endpoint: Endpoint) -> None:
    """Forget the endpoint. Calls already running on it are not interrupted."""
    logger.info("endpoint %s (%s) removed", endpoint.id, endpoint.url)
    endpoint.delete()
    routing_changed()
