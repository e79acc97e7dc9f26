"""Endpoint health and load: polled from each engine, shared through the cache.

A poll reads ``GET /health`` and ``GET /metrics`` only — never a billed or heavy request.
Snapshots go to Django's cache (Redis in production), so every web process routes on the
same view; an endpoint leaves rotation after ``UNHEALTHY_AFTER`` consecutive failed polls
and returns on the first healthy one.

Who polls: with a Celery broker, the beat-scheduled task ``deploy.tasks.poll_endpoints``;
without one (the embedded demo: no beat, eager tasks), the gateway runs the same
``poll_and_store`` as an asyncio task inside the web process (see caipi/gateway/background.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from deploy import vllm_client
from deploy.selectors import EndpointRoute

logger = logging.getLogger(__name__)

UNHEALTHY_AFTER = 2
_KEY = "deploy:health:{}"


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One endpoint's state at its last poll.

    ``failures`` counts consecutive failed polls; ``healthy`` is False once it reaches
    ``UNHEALTHY_AFTER``. ``queue_time`` is the mean seconds requests waited in the engine's
    queue since the previous poll (None when no request finished in between).
    """

    endpoint_id: int
    healthy: bool = True
    failures: int = 0
    running: float = 0.0
    waiting: float = 0.0
    kv_usage: float = 0.0
    queue_time: float | None = None
    queue_time_sum: float = 0.0
    queue_time_count: float = 0.0
    checked_at: float = 0.0


def _next_snapshot(
    endpoint_id: int,
    alive: bool,
    load: vllm_client.EngineLoad | None,
    previous: EndpointHealth | None,
) -> EndpointHealth:
    """Fold one poll's outcome into the endpoint's running snapshot."""
    now = time.time()
    if not alive:
        failures = (previous.failures if previous else 0) + 1
        base = previous or EndpointHealth(endpoint_id=endpoint_id)
        return dataclasses.replace(
            base, healthy=failures < UNHEALTHY_AFTER, failures=failures, checked_at=now
        )
    load = load or vllm_client.EngineLoad()
    queue_time = None
    if previous is not None and load.queue_time_count > previous.queue_time_count:
        finished = load.queue_time_count - previous.queue_time_count
        queue_time = (load.queue_time_sum - previous.queue_time_sum) / finished
    return EndpointHealth(
        endpoint_id=endpoint_id,
        running=load.running,
        waiting=load.waiting,
        kv_usage=load.kv_usage,
        queue_time=queue_time,
        queue_time_sum=load.queue_time_sum,
        queue_time_count=load.queue_time_count,
        checked_at=now,
    )


async def poll_endpoint(
    endpoint: EndpointRoute, previous: EndpointHealth | None, *, within: float
) -> EndpointHealth:
    """Probe one endpoint's /health and /metrics (concurrently) and return its new snapshot."""
    alive, load = await asyncio.gather(
        vllm_client.probe_health(
            endpoint.base_url, endpoint.token, within=within, path=endpoint.health_path
        ),
        vllm_client.scrape_metrics(endpoint.base_url, endpoint.token, within=within),
    )
    snapshot = _next_snapshot(endpoint.id, alive, load, previous)
    if previous is not None and previous.healthy != snapshot.healthy:
        logger.warning(
            "endpoint %s (%s) is now %s",
            endpoint.id,
            endpoint.base_url,
            "healthy" if snapshot.healthy else "out of rotation",
        )
    return snapshot


def health_read(endpoint_ids: Iterable[int]) -> dict[int, EndpointHealth]:
    """The stored snapshots of these endpoints (missing ones are simply absent)."""
    keys = {_KEY.format(i): i for i in endpoint_ids}
    found = cache.get_many(list(keys))
    return {keys[key]: EndpointHealth(**value) for key, value in found.items()}


def health_write(snapshots: Sequence[EndpointHealth]) -> None:
    """Store snapshots for every process; they expire if polling stops altogether."""
    ttl = max(30, int(settings.HEALTH_POLL_SECONDS * 10))
    cache.set_many({_KEY.format(s.endpoint_id): dataclasses.asdict(s) for s in snapshots}, ttl)


async def poll_and_store(endpoints: Sequence[EndpointRoute]) -> list[EndpointHealth]:
    """Poll all ``endpoints`` concurrently, store and return their snapshots.

    The cache is touched in a worker thread: Django's cache API is synchronous.
    """
    timeout = settings.HEALTH_TIMEOUT
    previous = await asyncio.to_thread(health_read, [e.id for e in endpoints])
    snapshots = await asyncio.gather(
        *(poll_endpoint(e, previous.get(e.id), within=timeout) for e in endpoints)
    )
    await asyncio.to_thread(health_write, snapshots)
    return list(snapshots)


async def health_poll_all(endpoints: Sequence[EndpointRoute]) -> int:
    """``poll_and_store`` in a loop of its own (a task's ``asyncio.run``): closes that
    loop's HTTP session afterwards. Returns how many endpoints are healthy."""
    try:
        snapshots = await poll_and_store(endpoints)
    finally:
        await vllm_client.close_session()
    return sum(1 for s in snapshots if s.healthy)
