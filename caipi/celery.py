"""CAIPI's Celery app. Without a broker configured, tasks run in-process (eager)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caipi.settings")

app = Celery("caipi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
