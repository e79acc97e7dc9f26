"""Celery tasks of the gateway: running queued jobs (see ``services.job_run``) and
refreshing the warm-ups read from the courses' Moodle calendars."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task

from caipi.gateway import services

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
RETRY_BASE_SECONDS = 1.0


@shared_task(bind=True, name="caipi.gateway.tasks.run_job", max_retries=MAX_RETRIES)
def run_job(self: Any, job_id: int) -> None:
    """Run a queued job. Owns its retries: calls that found no endpoint (or no quota) are
    tried again with exponential back-off; answers already received are kept."""
    for attempt in range(MAX_RETRIES + 1):
        retries = self.request.retries + attempt
        try:
            services.job_run(job_id=job_id, retrying=retries > 0)
            return
        except services.JobUnfinished as exc:
            if retries >= MAX_RETRIES:
                services.job_fail(job_id=job_id, error=str(exc))
                return
            countdown = RETRY_BASE_SECONDS * 2**retries
            if not self.request.is_eager:
                raise self.retry(exc=exc, countdown=countdown) from None
            # No broker (eager, in the web process): retry in place, briefly.
            time.sleep(min(countdown, 1.0))


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


@shared_task(name="caipi.gateway.tasks.jobs_purge_expired", ignore_result=True)
def jobs_purge_expired() -> int:
    """Delete the inputs of ended jobs and results past GATEWAY_JOB_RESULT_HOURS."""
    return services.jobs_purge_expired()


@shared_task(name="caipi.gateway.tasks.refresh_calendar_warmups", ignore_result=True)
def refresh_calendar_warmups() -> int:
    """Re-read every linked course's Moodle calendar into warm windows (beat, every
    DEPLOY_WARMUP_REFRESH_SECONDS); returns how many windows are stored. Idempotent."""
    from caipi.gateway.calendar_warmups import calendar_warmups_refresh_all

    report = calendar_warmups_refresh_all()
    logger.info(
        "calendar warm-ups: %s windows for %s courses (failed: %s)",
        report.windows,
        report.courses,
        ", ".join(report.failed) or "none",
    )
    return report.windows
