"""Celery tasks of deploy/: the periodic endpoint health poll.

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
