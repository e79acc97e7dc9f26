"""An admin's decisions on registrations: activate pending ones, retire old ones.

Each change clears the framing cache (``middleware.frame_ancestors_forget``) once the
transaction commits, so an activated LMS may frame CAIPI's pages at its next request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from lms_connectors.middleware import frame_ancestors_forget
from lms_connectors.models import Platform

logger = logging.getLogger(__name__)


@transaction.atomic
def platforms_activate(*, platforms: Iterable[Platform]) -> int:
    """Activate the given registrations (also retired ones); returns how many changed."""
    pks = [platform.pk for platform in platforms]
    changed = (
        Platform.objects.filter(pk__in=pks)
        .exclude(is_active=True, retired_at__isnull=True)
        .update(is_active=True, retired_at=None, updated_at=timezone.now())
    )
    frame_ancestors_forget()
    logger.info("LTI platforms activated count=%s", changed)
    return changed


@transaction.atomic
def platform_retire(*, platform: Platform) -> None:
    """Retire a registration: its launches are refused with an explanation; the courses it
    brought stay and move to the LMS's newer registration at their next launch."""
    Platform.objects.filter(pk=platform.pk).update(
        is_active=False, retired_at=timezone.now(), updated_at=timezone.now()
    )
    platform.refresh_from_db()
    frame_ancestors_forget()
    logger.info("LTI platform retired platform=%s", platform.pk)


@transaction.atomic
def platform_changed(*, platform: Platform) -> None:
    """Call after an admin edited or deleted a platform by hand (admin pages)."""
    frame_ancestors_forget()
