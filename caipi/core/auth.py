"""The signed-in user of a request, typed: for views behind an authentication check."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from caipi.core.errors import NotAuthenticated
from caipi.core.models import User


def request_user(request: Any) -> User:
    """``request.user`` as a ``User``; ``NotAuthenticated`` (401) for an anonymous visitor.

    For Django and DRF views that already required a signed-in user (``login_required``,
    ``IsAuthenticated``): it only narrows the type, the check itself never fails there.
    """
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated(_("Sign in first."))
    return user
