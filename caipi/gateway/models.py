"""Queued work: a batch of chat calls run by a Celery task, tracked by a status row."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class JobStatus(models.TextChoices):
    """Where a job is; ``succeeded`` even when single calls failed (see ``failed``)."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class Job(models.Model):
    """A batch of chat requests to one model, run in the background with progress.

    ``requests`` holds the OpenAI chat bodies while they are still to be run (each is
    emptied once answered, all once the job ends); ``results`` one entry per request once
    it ran (the answer, or ``{"error": ...}``), kept for GATEWAY_JOB_RESULT_HOURS after the
    job ends, then deleted by ``jobs_purge_expired``; ``done``/``total`` is the progress.
    """

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="gateway_jobs"
    )
    course_id = models.BigIntegerField(null=True, blank=True)
    model = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    requests = models.JSONField(default=list)
    results = models.JSONField(default=list)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.model}, {self.done}/{self.total}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
