"""Periodic governance work, run by Celery beat (see CELERY_BEAT_SCHEDULE)."""

from __future__ import annotations

from celery import shared_task

from caipi.governance import services


@shared_task(name="caipi.governance.tasks.conversations_purge_expired", ignore_result=True)
def conversations_purge_expired() -> int:
    """Delete conversations past their course's retention (or of courses that keep none)."""
    return services.conversations_purge_expired()
