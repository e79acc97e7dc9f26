"""Celery tasks of deploy/: the periodic endpoint health poll and reconciler tick, and the
reconciler tick a gateway asks for when calls wait for a model at zero instances.

Scheduled by beat every HEALTH_POLL_SECONDS (settings.CELERY_BEAT_SCHEDULE). Without a
broker there is no beat; the web process polls instead (caipi/gateway/background.py).
"""

from __future__ import annotations

import asyncio
import logging

from celery import shared_task

from deploy import selectors
from deploy.health import health_poll_all

logger = logging.getLogger(__name__)


@shared_task(name="deploy.tasks.poll_endpoints", ignore_result=True)
def poll_endpoints() -> int:
    """Poll every non-failed endpoint's health path and /metrics; return how many are healthy.

    Idempotent and cheap; a missed run only makes the snapshots one interval older.
    """
    endpoints = selectors.endpoint_routes_to_poll()
    if not endpoints:
        return 0
    healthy = asyncio.run(health_poll_all(endpoints))
    logger.debug("polled %s endpoints, %s healthy", len(endpoints), healthy)
    return healthy


@shared_task(name="deploy.tasks.reconcile_deployments", ignore_result=True)
def reconcile_deployments() -> int:
    """One reconciler tick for every deployment; returns how many were not held by another
    worker. Safe to run on several workers at once: each deployment is locked per tick."""
    from deploy.reconciler import reconcile_all

    reports = reconcile_all()
    return sum(1 for report in reports if not report.skipped)


@shared_task(name="deploy.tasks.reconcile_model", ignore_result=True)
def reconcile_model(model_id: int) -> int:
    """One reconciler tick for the model's deployment now, not at the next periodic tick:
    the gateway sends this when calls start waiting for a model at zero instances. Returns
    how many instances the tick started (0 also when another worker held the deployment)."""
    from deploy.models import Deployment
    from deploy.reconciler import reconcile

    deployment_id = Deployment.objects.filter(model_id=model_id).values_list("id", flat=True)
    started = 0
    for pk in deployment_id:
        started += len(reconcile(deployment_id=pk).started)
    return started
