"""Writes of the usage policy: publishing a version, accepting it."""

from __future__ import annotations

from django.db import transaction

from caipi.core.models import User
from caipi.governance import selectors
from caipi.governance.audit import audit_record
from caipi.governance.models import PolicyAcceptance, PolicyVersion


def policy_accept(*, user: User, channel: str = "web") -> PolicyAcceptance | None:
    """Record that ``user`` accepts the current policy (idempotent); None when there is none."""
    policy = selectors.policy_current()
    if policy is None:
        return None
    acceptance, _ = PolicyAcceptance.objects.get_or_create(
        user=user, policy=policy, defaults={"channel": channel}
    )
    return acceptance


def policy_publish(*, text: str, actor: User) -> PolicyVersion:
    """Publish a new policy version; every user is asked to accept it again."""
    with transaction.atomic():
        latest = PolicyVersion.objects.select_for_update().order_by("-version").first()
        policy = PolicyVersion.objects.create(
            version=(latest.version + 1) if latest else 1, text=text, published_by=actor
        )
        audit_record(
            actor=actor, action="policy.publish", target=policy, after={"version": policy.version}
        )
    return policy
