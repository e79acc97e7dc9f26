"""The audit log of administrative changes: who did what to which object, before and after."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models

logger = logging.getLogger(__name__)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    return str(value)


def audit_snapshot(instance: models.Model, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON-ready dict of a row's concrete fields (foreign keys as ids), for before/after."""
    return {
        field.attname: _jsonable(getattr(instance, field.attname))
        for field in instance._meta.concrete_fields
        if field.name not in exclude and field.attname not in exclude
    }


def audit_record(
    *,
    actor: Any,
    action: str,
    target: models.Model | str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> Any:
    """Write one ``AuditEntry`` and return it.

    ``actor``: the user who acted, or None for the system (a command, a task).
    ``action``: dotted and stable, e.g. ``"quota.update"``, ``"apikey.revoke"``.
    ``target``: the changed row (type, id and str are kept) or a free description.
    ``before``/``after``: JSON-ready dicts (see ``audit_snapshot``); None for create/delete.
    Never put secrets (keys, hashes) or prompt text in them. Call inside the write's
    transaction so the entry exists exactly when the change does.
    """
    from caipi.governance.models import AuditEntry

    if isinstance(target, models.Model):
        target_type, target_id, target_repr = target._meta.label, str(target.pk), str(target)[:255]
    else:
        target_type, target_id, target_repr = "", "", str(target)[:255]
    user = actor if getattr(actor, "pk", None) else None
    entry = AuditEntry.objects.create(
        actor=user,
        actor_name=getattr(user, "username", "") or "system",
        action=action,
        target_type=target_type,
        target_id=target_id,
        target_repr=target_repr,
        before=_jsonable(before),
        after=_jsonable(after),
    )
    logger.info("audit %s by %s on %s %s", action, entry.actor_name, target_type, target_id)
    return entry
