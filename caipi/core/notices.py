"""Banners for administrators ("2 LMS registrations wait for activation"), filled by apps.

The core cannot know what needs an admin's attention in the apps above it, so each app
registers a provider from its ``AppConfig.ready``::

    notices.register_notices("lti-pending", pending_registrations)

A provider takes the user and returns the ``Notice`` items for them (asking
``caipi.core.permissions`` itself); the context processor ``notices`` puts them on
CAIPI's admin pages and on every page a staff user sees.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """One banner: what is waiting, and where to act on it."""

    text: str
    url: str = ""
    level: str = "warning"


Provider = Callable[[Any], list[Notice]]
_PROVIDERS: dict[str, Provider] = {}


def register_notices(key: str, provider: Provider) -> None:
    """Add (or replace, by ``key``) a provider of admin notices."""
    _PROVIDERS[key] = provider


def notices_for(*, user: Any) -> list[Notice]:
    """The notices for ``user`` (none for anonymous or non-staff users), in key order.

    A provider that fails is logged and skipped: a banner must never break a page.
    """
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_staff", False):
        return []
    shown: list[Notice] = []
    for key in sorted(_PROVIDERS):
        try:
            shown += _PROVIDERS[key](user)
        except Exception:
            logger.exception("admin notice provider failed key=%s", key)
    return shown


def notices(request: Any) -> dict[str, Any]:
    """Template context processor: ``admin_notices`` for the banner."""
    return {"admin_notices": notices_for(user=getattr(request, "user", None))}
