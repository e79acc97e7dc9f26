"""DRF authentication with a personal API key: ``Authorization: Bearer caipi-…`` on ``/api/``.

The same keys as ``/v1`` (``apikeys.apikey_authenticate``: hashed lookup, cached, the
same refusals with their reasons), so a script can read its own usage and quota. A key
reads: with a key, ``/api/`` answers GET, HEAD and OPTIONS only — a leaked key must not
be able to mint more keys or change a course; changing things takes a signed-in session.

Listed first in ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``: requests without a
Bearer header fall through to the session, and an anonymous request is answered 401 with
``WWW-Authenticate: Bearer`` (DRF asks the first class for that header).
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from caipi.core.errors import NotAuthenticated, PermissionDenied
from caipi.core.models import User
from caipi.governance.apikeys import apikey_authenticate
from caipi.governance.principal import Principal

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class KeyReadsOnly(PermissionDenied):
    code = "key_reads_only"


class ApiKeyAuthentication(BaseAuthentication):
    """``request.user`` is the key's owner and ``request.auth`` the key's ``Principal``."""

    def authenticate(self, request: Request) -> tuple[User, Principal] | None:
        scheme, _, raw_key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        principal = apikey_authenticate(raw_key.strip())
        if request.method not in READ_METHODS:
            raise KeyReadsOnly(
                "An API key can only read through /api/ (GET); sign in to change things."
            )
        user = User.objects.filter(pk=principal.user_id, is_active=True).first()
        if user is None:
            raise NotAuthenticated("The account of this API key is disabled.")
        return user, principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="CAIPI"'


def request_principal(request: Any) -> Principal | None:
    """The key's principal when ``request`` was authenticated with an API key, else None."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, Principal) else None
