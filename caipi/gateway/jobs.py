"""Queued calls: submit a batch of chat requests as a ``Job``, run it through the router.

``job_submit`` stores the job and, once the transaction commits, enqueues
``caipi.gateway.tasks.run_job`` on the model's own Celery queue (``model.<name>``), so a
worker pool can be sized per model. The task runs the calls in waves through the same
relay as interactive traffic, each wave only as wide as the capacity interactive calls
leave free: per ready endpoint, GATEWAY_JOB_SLOTS_PER_ENDPOINT minus the gateway's
in-flight calls there (read from Redis, published by every web process). So a busy
endpoint gets no queued work, and a queue can never starve the chat.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction

from caipi.core.errors import ApplicationError, NotFound
from caipi.core.models import User
from caipi.gateway import relay
from caipi.gateway.catalog import catalog
from caipi.gateway.models import Job
from caipi.gateway.validation import CHAT, InvalidRequest, check_body
from caipi.governance.principal import Principal
from deploy import selectors, vllm_client
from deploy.selectors import ModelRoute

logger = logging.getLogger(__name__)

MAX_REQUESTS = 1000


@transaction.atomic
def job_submit(
    *, user: User, model: str, requests: list[dict[str, Any]], course_id: int | None = None
) -> Job:
    """Create a job of chat ``requests`` to ``model`` and enqueue it on commit.

    Raises InvalidRequest (bad or too many requests) or NotFound (unknown model).
    """
    if not requests or len(requests) > MAX_REQUESTS:
        raise InvalidRequest(f"Send 1 to {MAX_REQUESTS} requests.", param="requests")
    if selectors.model_get(name=model) is None:
        raise NotFound(f"The model '{model}' does not exist.", extra={"param": "model"})
    bodies = []
    for body in requests:
        if not isinstance(body, dict):
            raise InvalidRequest("Each request must be a chat request object.", param="requests")
        body = {**body, "model": model, "stream": False}
        check_body(CHAT, body)
        bodies.append(body)
    job = Job.objects.create(
        created_by=user,
        course_id=course_id,
        model=model,
        requests=bodies,
        results=[None] * len(bodies),
        total=len(bodies),
    )
    transaction.on_commit(lambda: job_enqueue(job_id=job.pk, model=model))
    return job


def job_enqueue(*, job_id: int, model: str) -> None:
    from caipi.gateway.tasks import run_job

    run_job.apply_async(args=[job_id], queue=f"model.{model}")


def job_capacity(model: ModelRoute, interactive: dict[int, int]) -> int:
    """Calls queued work may run at once now: free job slots over the model's endpoints."""
    slots = settings.GATEWAY_JOB_SLOTS_PER_ENDPOINT
    return sum(
        max(0, slots - interactive.get(e.id, 0)) for e in model.endpoints if e.state == "ready"
    )


def interactive_inflight() -> dict[int, int]:
    """The gateway's in-flight calls per endpoint: all web processes via Redis, else ours."""
    if not settings.REDIS_URL:
        return dict(catalog().inflight.local)
    import redis

    from caipi.gateway.inflight import inflight_totals

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2)
    try:
        return inflight_totals(client)
    finally:
        client.close()


async def _one(principal: Principal, body: dict[str, Any]) -> dict[str, Any] | None:
    """One call's result, an ``{"error": ...}`` entry, or None to try again later."""
    try:
        call = relay.prepare_call(principal, CHAT, dict(body), model_name=body["model"])
        upstream = await relay.reserve_and_open(call)
        answer = orjson.loads(await relay.complete(call, upstream))
    except ApplicationError as exc:
        return None if exc.retryable else {"error": exc.as_openai()["error"]}
    return answer if isinstance(answer, dict) else {"error": {"message": "unreadable answer"}}


async def run_wave(principal: Principal, bodies: list[dict[str, Any]]) -> list[Any]:
    """Run one wave of calls concurrently (the caller sized it by ``job_capacity``)."""
    try:
        return await asyncio.gather(*(_one(principal, body) for body in bodies))
    finally:
        await vllm_client.close_session()
