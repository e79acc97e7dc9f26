"""Reads of the gateway: jobs, the models a member may chat with, free capacity for queued work."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.shortcuts import get_object_or_404

from caipi.core.models import Course
from caipi.core.permissions import can
from caipi.core.redis import redis_configured, sync_redis
from caipi.gateway.catalog import catalog
from caipi.gateway.inflight import inflight_totals
from caipi.gateway.models import Job
from caipi.governance.permissions import MODEL_USE
from deploy import selectors as deploy_selectors
from deploy.models import Model, ModelKind
from deploy.selectors import ModelRoute


def job_get(*, job_id: int, user: Any) -> Job:
    """The job ``job_id`` if ``user`` created it; ``Http404`` otherwise (others' jobs too)."""
    return get_object_or_404(Job, pk=job_id, created_by=user)


def chat_models_for(*, user: Any, course: Course) -> list[Model]:
    """The enabled chat models ``user`` may use in ``course`` (``model.use``), by name."""
    models = deploy_selectors.model_list(enabled_only=True, kind=ModelKind.CHAT)
    return [model for model in models if can(user, MODEL_USE, model.name, course=course)]


def job_capacity(model: ModelRoute, interactive: dict[int, int]) -> int:
    """Calls queued work may run at once now: free job slots over the model's endpoints."""
    slots = settings.GATEWAY_JOB_SLOTS_PER_ENDPOINT
    return sum(
        max(0, slots - interactive.get(e.id, 0)) for e in model.endpoints if e.state == "ready"
    )


def interactive_inflight() -> dict[int, int]:
    """The gateway's in-flight calls per endpoint: all web processes via Redis, else ours."""
    if not redis_configured():
        return dict(catalog().inflight.local)
    return inflight_totals(sync_redis())
