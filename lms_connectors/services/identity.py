"""Pseudonymous users from LTI identities (shared by launches and roster syncs)."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.hashers import make_password
from django.utils import timezone

from caipi.core.models import User
from lms_connectors.models import LtiIdentity


def lti_username(*, issuer: str, sub: str) -> str:
    """A stable, pseudonymous username: no part of the LMS identity can be read back."""
    digest = hashlib.sha256(f"{issuer}\n{sub}".encode()).hexdigest()
    return "lti-" + digest[:24]


def lti_user_upsert(*, issuer: str, sub: str, profile: dict[str, Any], launched: bool) -> User:
    """The user behind (issuer, sub), created if new; profile fields updated when sent.

    ``profile`` holds the claims the platform chose to send (given_name, family_name,
    name, email, locale); absent claims leave stored values alone.
    """
    identity = LtiIdentity.objects.filter(issuer=issuer, sub=sub).select_related("user").first()
    if identity is None:  # a new person (an identity may also point at an existing user)
        user, _ = User.objects.get_or_create(
            username=lti_username(issuer=issuer, sub=sub),
            defaults={"password": make_password(None)},  # unusable: LTI users log in via LTI
        )
        identity, _ = LtiIdentity.objects.get_or_create(
            issuer=issuer, sub=sub, defaults={"user": user}
        )
    if launched:
        LtiIdentity.objects.filter(pk=identity.pk).update(last_launch_at=timezone.now())
    changed = _apply_profile(identity.user, profile)
    if changed:
        identity.user.save(update_fields=changed)
    return identity.user


def _apply_profile(user: User, profile: dict[str, Any]) -> list[str]:
    fields = {
        "first_name": (profile.get("given_name") or "")[:150],
        "last_name": (profile.get("family_name") or "")[:150],
        "email": (profile.get("email") or "")[:254],
        "display_name": (profile.get("name") or "")[:255],
        "locale": (profile.get("locale") or "")[:35],
    }
    changed = []
    for field, value in fields.items():
        if value and getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
    return changed
