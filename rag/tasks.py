"""Celery tasks of the rag app: running ingestion jobs.

With a broker, ``ingestion_run`` goes to the workers. Without one (the demo, embedded
defaults) it runs in one background thread of this process instead of inside the
request, so the upload answers at once and the page can show progress.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from celery import shared_task
from django.conf import settings
from django.db import close_old_connections, connections

from rag import jobs, services

logger = logging.getLogger(__name__)

_local = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-ingest")


@shared_task(name="rag.tasks.ingestion_run", ignore_result=True)
def ingestion_run(job_id: int) -> None:
    """Run one ingestion job (its files' errors are recorded, not raised)."""
    jobs.ingestion_job_run(job_id=job_id)


@shared_task(name="rag.tasks.ingestion_reclaim", ignore_result=True)
def ingestion_reclaim() -> list[int]:
    """Re-queue ingestion jobs whose worker died (see rag.jobs), on the workers."""
    return jobs.ingestion_jobs_reclaim(enqueue=lambda job_id: ingestion_enqueue(job_id=job_id))


@shared_task(name="rag.tasks.unanswered_purge_expired", ignore_result=True)
def unanswered_purge_expired() -> int:
    """Delete kept unanswered questions past their course's retention."""
    return services.unanswered_purge_expired()


def _run_here(job_id: int) -> None:
    close_old_connections()
    try:
        jobs.ingestion_job_run(job_id=job_id)
    except Exception:
        logger.exception("ingestion job %s failed", job_id)
    finally:
        connections.close_all()


def _run_here_after_reclaim(job_id: int) -> None:
    """No workers, no periodic tasks: jobs this process (or an earlier one) left running
    when it died are re-queued before the next job runs, then run after it."""
    close_old_connections()
    try:
        requeued = jobs.ingestion_jobs_reclaim()
    except Exception:
        logger.exception("could not reclaim stale ingestion jobs")
        requeued = []
    _run_here(job_id)
    for stale in requeued:
        _run_here(stale)


def ingestion_enqueue(*, job_id: int) -> Future[None] | None:
    """Start the job: on the workers, or (no broker) in this process's ingestion thread."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return _local.submit(_run_here_after_reclaim, job_id)
    ingestion_run.apply_async(args=[job_id])
    return None


def ingestion_idle(timeout: float | None = None) -> None:
    """Wait until this process's ingestion thread has finished the jobs it was given."""
    _local.submit(lambda: None).result(timeout=timeout)
