"""Writes to models and endpoints. Every change bumps the routing version on commit, so
gateway processes reload their in-memory routing table within a second, and is audited
(``actor``: the admin who acted, or None for a command)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

from caipi.core.audit import audit, audit_snapshot
from caipi.core.models import Course
from caipi.core.redis_clock import redis_now
from deploy import vllm_client
from deploy.models import (
    CalendarWarmWindow,
    Deployment,
    Endpoint,
    EndpointState,
    Model,
    ModelKind,
)
from deploy.selectors import ROUTING_VERSION_KEY
from deploy.specs import Spec, spec_check

logger = logging.getLogger(__name__)


def _bump_routing_version() -> None:
    """Move the shared routing version. A version the cache lost (Redis restarted empty, or
    the key evicted) starts again from the Redis clock in milliseconds, above everything it
    counted before: a plain count from 1 would repeat a version a gateway process still
    holds, and that process would keep its old routing table through the change."""
    try:
        cache.incr(ROUTING_VERSION_KEY)
    except ValueError:  # not set: a new, restarted or evicting cache
        cache.add(ROUTING_VERSION_KEY, int(redis_now() * 1000), timeout=None)
        cache.incr(ROUTING_VERSION_KEY)


SECRET_FIELDS = ("token",)


def snapshot(instance: Model | Endpoint | Deployment) -> dict[str, Any]:
    """The row for the audit log, without secrets (endpoint tokens)."""
    return audit_snapshot(instance, exclude=SECRET_FIELDS)


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
    actor: Any = None,
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
    audit(actor=actor, action="model.create", target=model, after=snapshot(model))
    logger.info("model %s created (served as %s, %s)", model.name, model.served_name, kind)
    return model


@transaction.atomic
def model_update(*, model: Model, actor: Any = None, **fields: Any) -> Model:
    """Change some of a model's fields (served_name, kind, default_params, enabled...)."""
    return _update(model, "model.update", actor, fields)


def _update(instance: Any, action: str, actor: Any, fields: dict[str, Any]) -> Any:
    before = snapshot(instance)
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    routing_changed()
    audit(actor=actor, action=action, target=instance, before=before, after=snapshot(instance))
    return instance


@transaction.atomic
def endpoint_add(
    *,
    model: Model,
    url: str,
    weight: int = 1,
    token: str = "",
    state: str = EndpointState.READY,
    health_path: str = "/health",
    actor: Any = None,
) -> Endpoint:
    """Register ``url`` as serving ``model``. Raises ValidationError (bad URL, duplicate)."""
    endpoint = Endpoint(
        model=model,
        url=url.rstrip("/"),
        weight=weight,
        token=token,
        state=state,
        health_path=health_path,
    )
    endpoint.full_clean()
    endpoint.save()
    routing_changed()
    audit(actor=actor, action="endpoint.add", target=endpoint, after=snapshot(endpoint))
    logger.info("endpoint %s added for %s at %s", endpoint.id, model.name, endpoint.url)
    return endpoint


@transaction.atomic
def endpoint_set_state(*, endpoint: Endpoint, state: str, actor: Any = None) -> Endpoint:
    """Move an endpoint to ``state`` (one of EndpointState)."""
    before = {"state": endpoint.state}
    updated = Endpoint.objects.filter(pk=endpoint.pk).update(state=EndpointState(state))
    if updated:
        endpoint.state = state
        routing_changed()
        audit(
            actor=actor,
            action="endpoint.state",
            target=endpoint,
            before=before,
            after={"state": str(state)},
        )
    return endpoint


def endpoint_drain(*, endpoint: Endpoint, actor: Any = None) -> Endpoint:
    """Stop sending new calls to the endpoint; calls already running finish."""
    return endpoint_set_state(endpoint=endpoint, state=EndpointState.DRAINING, actor=actor)


@transaction.atomic
def endpoint_update(*, endpoint: Endpoint, actor: Any = None, **fields: Any) -> Endpoint:
    """Change an endpoint's url, weight, token or state."""
    return _update(endpoint, "endpoint.update", actor, fields)


@transaction.atomic
def endpoint_remove(*, endpoint: Endpoint, actor: Any = None) -> None:
    """Forget the endpoint. Calls already running on it are not interrupted."""
    logger.info("endpoint %s (%s) removed", endpoint.id, endpoint.url)
    audit(actor=actor, action="endpoint.remove", target=endpoint, before=snapshot(endpoint))
    endpoint.delete()
    routing_changed()


@transaction.atomic
def deployment_apply(*, spec: Spec, actor: Any = None, check: bool = True) -> Deployment:
    """Create or update a model and its deployment from a validated spec.

    ``check``: ask the spec's launcher first (GPUs the target has, a model path that
    exists where that can be checked); raises SpecInvalid naming the field, and changes
    nothing then. The reconciler acts on the new spec at its next tick.
    """
    if check:
        spec_check(spec)
    model = Model.objects.filter(name=spec.name).first()
    model_fields: dict[str, Any] = {
        "served_name": spec.served_name,
        "kind": spec.kind,
        "description": spec.description,
    }
    if model is None:
        model = model_create(name=spec.name, actor=actor, **model_fields)
    elif any(getattr(model, k) != v for k, v in model_fields.items()):
        model = model_update(model=model, actor=actor, **model_fields)
    deployment = Deployment.objects.filter(model=model).first()
    before = snapshot(deployment) if deployment else None
    deployment = deployment or Deployment(model=model)
    for name, value in spec.deployment_fields().items():
        setattr(deployment, name, value)
    deployment.full_clean()
    deployment.save()
    action = "deployment.update" if before else "deployment.create"
    audit(actor=actor, action=action, target=deployment, before=before, after=snapshot(deployment))
    logger.info("deployment of %s applied (%s via %s)", model.name, spec.engine, spec.launcher)
    return deployment


@transaction.atomic
def deployment_remove(*, deployment: Deployment, actor: Any = None) -> None:
    """Forget a deployment. Its instances must have been scaled to zero first (disable it
    and let the reconciler drain them); the model and hand-made endpoints stay."""
    audit(actor=actor, action="deployment.remove", target=deployment, before=snapshot(deployment))
    deployment.delete()


# -- sleep mode --------------------------------------------------------------------------------

SLEEP_LEVELS = (1, 2)


def endpoint_sleep(*, endpoint: Endpoint, level: int, actor: Any = None) -> Endpoint:
    """Put a ready endpoint's engine to sleep (vLLM's ``POST /sleep?level=N``).

    1. The endpoint turns SLEEPING first (committed), so the router stops sending it calls;
       a call arriving meanwhile waits in the gateway's queue, which wakes it again.
    2. Then the engine is told to sleep. Level 1 offloads the weights to CPU memory (fast
       wake), level 2 drops them (less memory, slower wake).
    If the engine refuses or does not answer, the endpoint is READY again and
    ``vllm_client.UpstreamError`` is raised. Assumes the caller only sleeps idle endpoints
    (vLLM aborts requests still running when it goes to sleep). Raises ValidationError for
    a level other than 1 or 2, or an endpoint that is not READY.
    """
    if level not in SLEEP_LEVELS:
        raise ValidationError({"level": f"Sleep level must be 1 or 2, not {level!r}."})
    if not endpoint_transition(
        endpoint=endpoint, from_states=(EndpointState.READY,), to=EndpointState.SLEEPING
    ):
        raise ValidationError(
            {"state": f"Only a ready endpoint can sleep (it is {endpoint.state})."}
        )
    try:
        _engine_call(
            lambda: vllm_client.sleep(
                endpoint.base_url, endpoint.token, level=level, within=settings.DEPLOY_SLEEP_TIMEOUT
            )
        )
    except vllm_client.UpstreamError:
        endpoint_transition(
            endpoint=endpoint, from_states=(EndpointState.SLEEPING,), to=EndpointState.READY
        )
        raise
    audit(actor=actor, action="endpoint.sleep", target=endpoint, after={"level": level})
    logger.info("endpoint %s (%s) sleeps at level %s", endpoint.id, endpoint.url, level)
    return endpoint


def endpoint_wake(*, endpoint: Endpoint, actor: Any = None) -> Endpoint:
    """Wake a sleeping endpoint's engine (``POST /wake_up``) and make it READY.

    vLLM answers ``/wake_up`` once the engine can serve, so the endpoint is READY when this
    returns. Raises ``vllm_client.UpstreamError`` when the engine did not wake within
    DEPLOY_WAKE_TIMEOUT (the endpoint stays SLEEPING). Waking an endpoint that is not
    sleeping (any more) only repeats the harmless ``/wake_up``.
    """
    _engine_call(
        lambda: vllm_client.wake_up(
            endpoint.base_url, endpoint.token, within=settings.DEPLOY_WAKE_TIMEOUT
        )
    )
    if endpoint_transition(
        endpoint=endpoint, from_states=(EndpointState.SLEEPING,), to=EndpointState.READY
    ):
        audit(actor=actor, action="endpoint.wake", target=endpoint)
        logger.info("endpoint %s (%s) woke up", endpoint.id, endpoint.url)
    return endpoint


def endpoint_transition(*, endpoint: Endpoint, from_states: tuple[str, ...], to: str) -> bool:
    """Move the endpoint to ``to`` only if it is still in one of ``from_states`` (a
    conditional update: two processes racing move it once). True when this call moved it;
    then the routing version is bumped. Commits on its own (autocommit) unless called
    inside a transaction."""
    with transaction.atomic():
        moved = Endpoint.objects.filter(pk=endpoint.pk, state__in=from_states).update(
            state=EndpointState(to)
        )
        if moved:
            endpoint.state = to
            routing_changed()
    return bool(moved)


def _engine_call(call: Callable[[], Awaitable[None]]) -> None:
    """Run one engine control call from synchronous code, in a loop of its own (closing
    that loop's HTTP session afterwards)."""

    async def once() -> None:
        try:
            await call()
        finally:
            await vllm_client.close_session()

    asyncio.run(once())


@dataclass(frozen=True)
class CourseWarmUp:
    """One warm window a course's calendar asks for: keep ``model`` awake from ``starts``
    to ``ends`` because of the event ``event_id`` named ``event_name``."""

    model: Model
    starts: dt.datetime
    ends: dt.datetime
    event_id: int
    event_name: str
    event_kind: str = ""


@transaction.atomic
def calendar_windows_replace(*, course: Course, warm_ups: list[CourseWarmUp]) -> int:
    """Replace the course's calendar warm windows with ``warm_ups``; return how many."""
    CalendarWarmWindow.objects.filter(course=course).delete()
    rows = [
        CalendarWarmWindow(
            model=w.model,
            course=course,
            starts_at=w.starts,
            ends_at=w.ends,
            event_id=w.event_id,
            event_name=w.event_name[:300],
            event_kind=w.event_kind[:40],
        )
        for w in warm_ups
    ]
    CalendarWarmWindow.objects.bulk_create(rows)
    return len(rows)
