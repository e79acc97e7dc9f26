"""Drop cached keys, principals, model access and limits whenever their source rows change.

Connected to ``post_save``/``post_delete`` of the models the caches are built from. This is
the one use of signals in governance, on purpose: those rows change from many places
(admin pages, LTI launches, commands, services) and a cache that depends on every writer
remembering to invalidate it would sooner or later serve a revoked key.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from caipi.governance.snapshot import governance_changed

SOURCES = (
    "core.User",
    "core.Membership",
    "core.Course",
    "governance.ApiKey",
    "governance.RoleModelAccess",
    "governance.QuotaLimit",
    "governance.CourseSettings",
)


def _changed(sender: Any, **kwargs: Any) -> None:
    governance_changed()
    # Bump again after commit: a process that reloaded between the write and the commit
    # would otherwise cache the old rows under the new version.
    transaction.on_commit(governance_changed)


def connect() -> None:
    """Wire the invalidation to the source models (called once from ``AppConfig.ready``)."""
    from django.apps import apps

    for label in SOURCES:
        model = apps.get_model(label)
        post_save.connect(_changed, sender=model, dispatch_uid=f"governance-{label}-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"governance-{label}-delete")
