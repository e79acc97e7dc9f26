"""Writes of API keys: minting and revoking, each atomic and audited."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from caipi.core.errors import PermissionDenied
from caipi.core.models import User
from caipi.core.permissions import can
from caipi.governance.apikeys import apikey_generate, apikey_hash
from caipi.governance.audit import audit_record, audit_snapshot
from caipi.governance.models import ApiKey
from caipi.governance.permissions import APIKEY_CREATE, APIKEY_REVOKE
from caipi.governance.services.policy import policy_accept

KEY_AUDIT_EXCLUDE = ("key_hash",)


@transaction.atomic
def apikey_create(
    *,
    user: User,
    actor: User | None,
    name: str = "",
    expires_days: int | None = None,
    models: list[str] | None = None,
) -> tuple[ApiKey, str]:
    """Mint a key for ``user``; returns the row and the raw key (show it once, never store it).

    ``actor`` (the user acting; None for the system, e.g. the command) must be allowed
    ``apikey.create`` for ``user``: admins for anyone, others for themselves when their
    site role may (``GOVERNANCE_KEY_SELF_SERVICE_ROLES``); else ``PermissionDenied``.
    Creating a key accepts the current usage policy on the owner's behalf when the owner
    creates it (channel "api_key"): API calls have no page on which to ask.
    """
    if actor is not None and not can(actor, APIKEY_CREATE, user):
        raise PermissionDenied(gettext("You may not create API keys; ask an administrator."))
    if expires_days is not None and expires_days < 1:
        raise PermissionDenied(gettext("An expiry must be at least one day."))
    raw_key, prefix = apikey_generate()
    key = ApiKey.objects.create(
        user=user,
        name=name[:100],
        prefix=prefix,
        key_hash=apikey_hash(raw_key),
        allowed_models=sorted(set(models)) if models else None,
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    if actor is not None and actor.pk == user.pk:
        policy_accept(user=user, channel="api_key")
    audit_record(
        actor=actor,
        action="apikey.create",
        target=key,
        after=audit_snapshot(key, exclude=KEY_AUDIT_EXCLUDE),
    )
    return key, raw_key


@transaction.atomic
def apikey_revoke(*, key: ApiKey, actor: User | None) -> ApiKey:
    """Revoke a key (idempotent). ``actor`` must be allowed ``apikey.revoke`` (owner, admin)."""
    if actor is not None and not can(actor, APIKEY_REVOKE, key):
        raise PermissionDenied(gettext("You may only revoke your own API keys."))
    if key.revoked_at is None:
        before = audit_snapshot(key, exclude=KEY_AUDIT_EXCLUDE)
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="apikey.revoke",
            target=key,
            before=before,
            after=audit_snapshot(key, exclude=KEY_AUDIT_EXCLUDE),
        )
    return key
