"""Celery tasks of deploy/: the periodic endpoint health poll.

Scheduled by beat every HEALTH_POLL_SECONDS (settings.CELERY_BEAT_SCHEDULE). Without a
broker there is no beat; the web process polls instead (caipi/gateway/background.py).
"""

from __future__ import annotations

import asyncio
import logging

from celery import shared_task

from deploy import vllm_client
from deploy.health import poll_and_store
from deploy.models import EndpointState
from deploy.selectors import EndpointRoute, endpoint_list

logger = logging.getLogger(__name__)


async def _poll(endpoints: list[EndpointRoute]) -> int:
    try:
        snapshots = await poll_and_store(endpoints)
    finally:
        await vllm_client.close_session()
    return sum(1 for s in snapshots if s.healthy)


@shared_task(name="deploy.tasks.poll_endpoints", ignore_result=True)
def poll_endpoints() -> int:
    """Poll every non-failed endpoint's /health and /metrics; return how many are healthy.

    Idempotent and cheap; a missed run only makes the snapshots one interval older.
    """
    endpoints = [
        EndpointRoute(id=e.id, base_url=e.base_url, token=e.token, weight=e.weight, state=e.state)
        for e in endpoint_list().exclude(state=EndpointState.FAILED)
    ]
    if not endpoints:
        return 0
    healthy = asyncio.run(_poll(endpoints))
    logger.debug("polled %s endpoints, %s healthy", len(endpoints), healthy)
    return healthy
