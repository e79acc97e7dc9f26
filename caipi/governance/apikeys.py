"""API keys: minting, the hashed lookup, and the cached check on the ``/v1`` hot path.

A key reads ``caipi-<prefix>-<secret>``: ``prefix`` (8 lowercase letters and digits) is
stored in clear and shown in lists and logs; only ``HMAC-SHA256(pepper, key)`` is stored,
so a database dump does not reveal usable keys. The pepper is ``GOVERNANCE_KEY_PEPPER``,
or derived from ``SECRET_KEY`` when unset (rotating SECRET_KEY then invalidates all keys).

``apikey_authenticate`` holds checked keys in an in-process TTL cache keyed by the hash,
invalidated by the governance version (see ``snapshot``), so a warm check costs a few
microseconds and a revocation is honoured by every process within
CAIPI_SHARED_STATE_POLL_SECONDS (1 s) plus a Redis round trip; ``KEY_TTL`` bounds it while
Redis is unreachable.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
import time
from dataclasses import dataclass, replace
from datetime import datetime

from asgiref.sync import sync_to_async
from django.conf import settings

from caipi.core.errors import NotAuthenticated
from caipi.core.models import SiteRole
from caipi.governance.principal import (
    MODEL_ACCESS,
    Principal,
    held_course_roles,
    role_models_for,
)
from caipi.governance.snapshot import VERSION, TTLCache

logger = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^caipi-([a-z0-9]{8})-([A-Za-z0-9]{32,64})$")
KEY_TTL = 30.0
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class _CachedKey:
    """What the hot path needs to know about one key hash."""

    principal: Principal | None  # None: no such key
    expires_ts: float | None
    revoked: bool
    user_active: bool


_KEYS: TTLCache[str, _CachedKey] = TTLCache(ttl=KEY_TTL)
_UNKNOWN = _CachedKey(principal=None, expires_ts=None, revoked=False, user_active=False)


def _pepper() -> bytes:
    configured = getattr(settings, "GOVERNANCE_KEY_PEPPER", None)
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"caipi-api-key-pepper", hashlib.sha256).digest()


def apikey_hash(raw_key: str) -> str:
    """The keyed hash stored for ``raw_key`` (hex)."""
    return hmac.new(_pepper(), raw_key.encode(), hashlib.sha256).hexdigest()


def apikey_generate() -> tuple[str, str]:
    """A fresh ``(raw_key, prefix)``; the raw key is shown once and never stored."""
    prefix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(40))
    return f"caipi-{prefix}-{secret}", prefix


def _load(key_hash: str) -> _CachedKey:
    from caipi.governance.models import ApiKey

    key = ApiKey.objects.select_related("user").filter(key_hash=key_hash).first()
    if key is None or not hmac.compare_digest(key.key_hash, key_hash):
        return _UNKNOWN
    user = key.user
    site_role = SiteRole.ADMIN.value if user.is_site_admin else user.site_role
    principal = Principal(
        user_id=user.pk,
        key_id=key.pk,
        username=user.username,
        site_role=site_role,
        allowed_models=frozenset(key.allowed_models) if key.allowed_models else None,
        course_id=None,
        held_roles=held_course_roles(user.pk),
    )
    role_models = role_models_for(principal.roles, MODEL_ACCESS.get())
    return _CachedKey(
        principal=replace(principal, role_models=role_models),
        expires_ts=key.expires_at.timestamp() if key.expires_at else None,
        revoked=key.revoked_at is not None,
        user_active=user.is_active,
    )


def _hash_or_refuse(raw_key: str) -> str:
    if not raw_key:
        raise NotAuthenticated(
            "Missing API key: send 'Authorization: Bearer caipi-...'.", extra={"reason": "missing"}
        )
    if not KEY_PATTERN.match(raw_key):
        raise NotAuthenticated("Malformed API key.", extra={"reason": "malformed"})
    return apikey_hash(raw_key)


def _check(entry: _CachedKey) -> Principal:
    if entry.principal is None:
        raise NotAuthenticated("Invalid API key.", extra={"reason": "invalid"})
    if entry.revoked:
        raise NotAuthenticated("This API key has been revoked.", extra={"reason": "revoked"})
    if entry.expires_ts is not None and entry.expires_ts <= time.time():
        expired = (
            datetime.fromtimestamp(entry.expires_ts).astimezone().isoformat(timespec="seconds")
        )
        raise NotAuthenticated(f"This API key expired on {expired}.", extra={"reason": "expired"})
    if not entry.user_active:
        raise NotAuthenticated(
            "The account of this API key is disabled.", extra={"reason": "disabled"}
        )
    return entry.principal


def apikey_authenticate(raw_key: str) -> Principal:
    """The principal of a valid key; ``NotAuthenticated`` (401) if missing, malformed,
    unknown, revoked, expired or of a disabled account — each with its own message and
    ``reason``. Queries the database only on a cache miss.
    """
    key_hash = _hash_or_refuse(raw_key)
    version = VERSION.current()
    entry = _KEYS.get(key_hash, version)
    if entry is None:
        entry = _load(key_hash)
        _KEYS.put(key_hash, version, entry)
    return _check(entry)


async def aapikey_authenticate(raw_key: str) -> Principal:
    """Async twin of ``apikey_authenticate``: pure memory when warm, one thread hop when cold."""
    key_hash = _hash_or_refuse(raw_key)
    version = await VERSION.acurrent()
    entry = _KEYS.get(key_hash, version)
    if entry is None:
        entry = await sync_to_async(_load)(key_hash)
        _KEYS.put(key_hash, version, entry)
    return _check(entry)


def apikey_cache_clear() -> None:
    """Drop this process's cached keys (tests)."""
    _KEYS.clear()
