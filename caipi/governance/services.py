"""Writes of governance data. Each service is atomic and leaves an audit entry."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from caipi.core.errors import PermissionDenied
from caipi.core.models import SiteRole, User
from caipi.governance.apikeys import apikey_generate, apikey_hash
from caipi.governance.audit import audit_record, audit_snapshot
from caipi.governance.models import ApiKey, PolicyAcceptance, PolicyVersion

logger = logging.getLogger(__name__)

KEY_AUDIT_EXCLUDE = ("key_hash",)


def apikey_may_self_create(*, user: User) -> bool:
    """True when the user's site role may create keys for themselves (setting)."""
    roles = set(getattr(settings, "GOVERNANCE_KEY_SELF_SERVICE_ROLES", ()))
    role = SiteRole.ADMIN.value if user.is_site_admin else user.site_role
    return role in roles or user.is_site_admin


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

    Self-service (``actor`` is ``user``) is refused with ``PermissionDenied`` unless the
    user's site role is allowed to (``GOVERNANCE_KEY_SELF_SERVICE_ROLES``); admins and the
    system (``actor=None``, the command) may create keys for anyone. Creating a key accepts
    the current usage policy on the owner's behalf when the owner creates it (channel
    "api_key"): API calls have no page on which to ask.
    """
    self_service = actor is not None and not actor.is_site_admin
    if self_service and (actor.pk != user.pk or not apikey_may_self_create(user=user)):
        raise PermissionDenied("You may not create API keys; ask an administrator.")
    if expires_days is not None and expires_days < 1:
        raise PermissionDenied("An expiry must be at least one day.")
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
    """Revoke a key (idempotent). Owners may revoke their own keys, admins any key."""
    if actor is not None and not actor.is_site_admin and actor.pk != key.user_id:
        raise PermissionDenied("You may only revoke your own API keys.")
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


def policy_current() -> PolicyVersion | None:
    """The newest published usage policy, or None when the admin has published none."""
    return (
        PolicyVersion.objects.filter(published_at__lte=timezone.now()).order_by("-version").first()
    )


def policy_accept(*, user: User, channel: str = "web") -> PolicyAcceptance | None:
    """Record that ``user`` accepts the current policy (idempotent); None when there is none."""
    policy = policy_current()
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
