"""Writes of the gateway: queued jobs — submit a batch of chat requests, run it.

``job_submit`` stores the job and, once the transaction commits, enqueues
``caipi.gateway.tasks.run_job`` on the model's own Celery queue (``model.<name>``), so a
worker pool can be sized per model. ``job_run`` (called by that task) runs the calls in
waves through the same call lifecycle as interactive traffic, each wave only as wide as
the capacity interactive calls leave free: per ready endpoint,
GATEWAY_JOB_SLOTS_PER_ENDPOINT minus the gateway's in-flight calls there (read from Redis,
published by every web process). So a busy endpoint gets no queued work, and a queue can
never starve the chat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from caipi.core.errors import ApplicationError, NotFound, PermissionDenied
from caipi.core.models import User
from caipi.gateway import relay, selectors
from caipi.gateway.catalog import catalog
from caipi.gateway.models import Job, JobStatus
from caipi.gateway.upstream_call import call_open, call_prepare
from caipi.gateway.validation import CHAT, InvalidRequest, check_body
from caipi.governance.principal import Principal, principal_for_user, principal_may_use_model
from deploy import selectors as deploy_selectors
from deploy import vllm_client

logger = logging.getLogger(__name__)

MAX_REQUESTS = 1000
CAPACITY_WAIT_SECONDS = 0.5


class JobUnfinished(Exception):
    """Some of a job's calls could not be served now (no endpoint, no quota): try later."""


@transaction.atomic
def job_submit(
    *, user: User, model: str, requests: list[dict[str, Any]], course_id: int | None = None
) -> Job:
    """Create a job of chat ``requests`` to ``model`` and enqueue it on commit.

    Raises InvalidRequest (bad or too many requests), NotFound (unknown model) or
    PermissionDenied (a model the user may not use, in that course).
    """
    if not requests or len(requests) > MAX_REQUESTS:
        raise InvalidRequest(f"Send 1 to {MAX_REQUESTS} requests.", param="requests")
    if deploy_selectors.model_get(name=model) is None:
        raise NotFound(f"The model '{model}' does not exist.", extra={"param": "model"})
    # model.use, as /v1 asks it: refused now (403), not accepted and failed at run time.
    principal = principal_for_user(user_id=user.pk, course_id=course_id)
    if not principal_may_use_model(principal, model):
        raise PermissionDenied(f"You may not use the model '{model}'.")
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
    transaction.on_commit(lambda: _job_enqueue(job_id=job.pk, model=model))
    return job


def _job_enqueue(*, job_id: int, model: str) -> None:
    from caipi.gateway.tasks import run_job

    run_job.apply_async(args=[job_id], queue=f"model.{model}")


def job_run(*, job_id: int, retrying: bool) -> None:
    """Run every call of the job that has no result yet, and mark it succeeded.

    Claims the job first (a conditional update: a queued job, or a running one when
    ``retrying``); returns at once when another worker has it or it ended. A job whose
    model is no longer served fails. Raises ``JobUnfinished`` when some calls must be
    tried again later; answers already received are kept.
    """
    if not _claim(job_id, retrying=retrying):
        logger.info("job %s already taken or finished", job_id)
        return
    job = Job.objects.get(pk=job_id)
    catalog().reload()
    if job.model not in catalog().models:
        job_fail(job_id=job_id, error=f"The model '{job.model}' is no longer served.")
        return
    _run_pending(job)
    _finish(job, JobStatus.SUCCEEDED)


def job_fail(*, job_id: int, error: str) -> None:
    """Give up on a job: it ends as failed with ``error``; results so far are kept (for
    GATEWAY_JOB_RESULT_HOURS), its inputs are deleted."""
    Job.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED, error=error, finished_at=timezone.now(), requests=[]
    )


def jobs_purge_expired() -> int:
    """Delete what users typed and got back in jobs that no longer need it: the inputs of
    every ended job, and the results of jobs ended more than GATEWAY_JOB_RESULT_HOURS ago.
    The status rows stay (counts and times only). Returns how many jobs were emptied."""
    ended = Job.objects.filter(status__in=[JobStatus.SUCCEEDED, JobStatus.FAILED])
    inputs = ended.exclude(requests=[]).update(requests=[])
    cutoff = timezone.now() - timedelta(hours=settings.GATEWAY_JOB_RESULT_HOURS)
    results = ended.filter(finished_at__lte=cutoff).exclude(results=[]).update(results=[])
    return inputs + results


def _claim(job_id: int, retrying: bool) -> bool:
    """Conditionally mark the job running; False when another worker has it or it ended."""
    allowed = Q(status=JobStatus.QUEUED) | (Q(status=JobStatus.RUNNING) if retrying else Q())
    claimed = Job.objects.filter(Q(pk=job_id) & allowed).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


def _finish(job: Job, status: str, error: str = "") -> None:
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.requests = []  # the inputs are not needed any more
    fields = ["status", "error", "finished_at", "results", "done", "failed", "requests"]
    job.save(update_fields=fields)


def _run_pending(job: Job) -> None:
    """Run every call without a result, wave by wave, saving progress after each wave."""
    principal = principal_for_user(user_id=job.created_by_id, course_id=job.course_id)
    model = catalog().models[job.model]
    pending = [i for i, result in enumerate(job.results) if result is None]
    while pending:
        width = selectors.job_capacity(model, selectors.interactive_inflight())
        if width == 0:
            time.sleep(CAPACITY_WAIT_SECONDS)  # interactive traffic has every slot
            continue
        wave, pending = pending[:width], pending[width:]
        answers = asyncio.run(_run_wave(principal, [job.requests[i] for i in wave]))
        retry_later = [i for i, answer in zip(wave, answers, strict=True) if answer is None]
        for i, answer in zip(wave, answers, strict=True):
            job.results[i] = answer
            if answer is not None:
                job.requests[i] = None  # answered: its input is not needed any more
        job.done = sum(1 for r in job.results if r is not None)
        job.failed = sum(1 for r in job.results if r is not None and "error" in r)
        job.save(update_fields=["results", "done", "failed", "requests"])
        if retry_later:
            raise JobUnfinished(f"{len(retry_later)} calls could not be served now")


async def _run_wave(principal: Principal, bodies: list[dict[str, Any]]) -> list[Any]:
    """Run one wave of calls concurrently (sized by ``selectors.job_capacity``)."""
    try:
        return await asyncio.gather(*(_one(principal, body) for body in bodies))
    finally:
        await vllm_client.close_session()


async def _one(principal: Principal, body: dict[str, Any]) -> dict[str, Any] | None:
    """One call's result, an ``{"error": ...}`` entry, or None to try again later."""
    try:
        call = call_prepare(principal, CHAT, dict(body), model_name=body["model"])
        upstream = await call_open(call)
        answer = orjson.loads(await relay.complete(call, upstream))
    except ApplicationError as exc:
        return None if exc.retryable else {"error": exc.as_openai()["error"]}
    return answer if isinstance(answer, dict) else {"error": {"message": "unreadable answer"}}
