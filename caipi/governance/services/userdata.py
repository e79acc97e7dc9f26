"""Writes of a user's personal data on request: deleting everything held about them."""

from __future__ import annotations

from django.db import transaction

from caipi.core.models import User
from caipi.governance.audit import audit_record
from caipi.governance.models import AuditEntry, UsageRecord


@transaction.atomic
def userdata_delete(*, user: User, actor: User | None) -> None:
    """Delete everything held about ``user``: account, keys, memberships, conversations,
    policy acceptances. Usage records stay for the accounting, without the user; audit
    entries keep the change but no longer the name.
    """
    user_id = user.pk
    AuditEntry.objects.filter(actor=user).update(actor_name="deleted user")
    UsageRecord.objects.filter(user=user).update(user=None, key_id=None)
    user.delete()
    audit_record(actor=actor, action="userdata.delete", target=f"user #{user_id}")
