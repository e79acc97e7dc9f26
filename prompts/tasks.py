"""Periodic work of the prompts app, run by Celery beat (see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from prompts import services


@shared_task(name="prompts.tasks.batches_purge_expired", ignore_result=True)
def batches_purge_expired() -> int:
    """Delete batch results (inputs and answers) past their retention."""
    return services.batches_purge_expired()
