"""Celery tasks of the gateway: running queued jobs (see caipi/gateway/jobs.py)."""

from __future__ import annotations

import asyncio
import logging
import time

from celery import shared_task
from django.db.models import Q
from django.utils import timezone

from caipi.gateway import jobs
from caipi.gateway.catalog import catalog
from caipi.gateway.models import Job, JobStatus
from caipi.governance.principal import principal_for_user

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
RETRY_BASE_SECONDS = 1.0
CAPACITY_WAIT_SECONDS = 0.5


def _claim(job_id: int, retrying: bool) -> bool:
    """Conditionally mark the job running; False when another worker has it or it ended."""
    allowed = Q(status=JobStatus.QUEUED) | (Q(status=JobStatus.RUNNING) if retrying else Q())
    claimed = Job.objects.filter(Q(pk=job_id) & allowed).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


def _finish(job: Job, status: str, error: str = "") -> None:
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.save(update_fields=["status", "error", "finished_at", "results", "done", "failed"])


def _run_pending(job: Job) -> None:
    """Run every call without a result, wave by wave, saving progress after each wave."""
    principal = principal_for_user(user_id=job.created_by_id, course_id=job.course_id)
    model = catalog().models[job.model]
    pending = [i for i, result in enumerate(job.results) if result is None]
    while pending:
        width = jobs.job_capacity(model, jobs.interactive_inflight())
        if width == 0:
            time.sleep(CAPACITY_WAIT_SECONDS)  # interactive traffic has every slot
            continue
        wave, pending = pending[:width], pending[width:]
        answers = asyncio.run(jobs.run_wave(principal, [job.requests[i] for i in wave]))
        retry_later = [i for i, answer in zip(wave, answers, strict=True) if answer is None]
        for i, answer in zip(wave, answers, strict=True):
            job.results[i] = answer
        job.done = sum(1 for r in job.results if r is not None)
        job.failed = sum(1 for r in job.results if r is not None and "error" in r)
        job.save(update_fields=["results", "done", "failed"])
        if retry_later:
            raise _Transient(f"{len(retry_later)} calls could not be served now")


class _Transient(Exception):
    pass


@shared_task(bind=True, name="caipi.gateway.tasks.run_job", max_retries=MAX_RETRIES)
def run_job(self, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Run a queued job. Owns its retries: calls that found no endpoint (or no quota) are
    tried again with exponential back-off; answers already received are kept."""
    if not _claim(job_id, retrying=self.request.retries > 0):
        logger.info("job %s already taken or finished", job_id)
        return
    job = Job.objects.get(pk=job_id)
    catalog().reload()
    if job.model not in catalog().models:
        _finish(job, JobStatus.FAILED, f"The model '{job.model}' is no longer served.")
        return
    for attempt in range(MAX_RETRIES + 1):
        try:
            _run_pending(job)
            break
        except _Transient as exc:
            retries = self.request.retries + attempt
            if retries >= MAX_RETRIES:
                _finish(job, JobStatus.FAILED, str(exc))
                return
            countdown = RETRY_BASE_SECONDS * 2**retries
            if not self.request.is_eager:
                raise self.retry(exc=exc, countdown=countdown) from None
            # No broker (eager, in the web process): retry in place, briefly.
            time.sleep(min(countdown, 1.0))
    _finish(job, JobStatus.SUCCEEDED)


@shared_task(name="caipi.gateway.tasks.run_prompt_tests", ignore_result=True)
def run_prompt_tests(run_id: int) -> None:
    """Run a template version's test cases (see caipi/gateway/prompt_work.py)."""
    from caipi.gateway.prompt_work import testrun_execute

    testrun_execute(run_id=run_id)


@shared_task(name="caipi.gateway.tasks.run_prompt_batch", ignore_result=True)
def run_prompt_batch(batch_id: int) -> None:
    """Run a template over a batch of inputs (see caipi/gateway/prompt_work.py)."""
    from caipi.gateway.prompt_work import batch_execute

    batch_execute(batch_id=batch_id)
